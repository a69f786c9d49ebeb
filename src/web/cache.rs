//! Rendered ticket pages, kept for repeat views: an LRU of at most [`MAX_PAGES`] pages and
//! [`MAX_BYTES`] bytes, keyed by ticket and language.
//!
//! Invariants: the cache is consulted only after the link's token was checked (every request
//! pays for the check); an entry is used only while its version matches the ticket as read
//! for this request (its whole row, plus the newest thread entry) — so any change to the
//! ticket or its thread shows at once — and only before the first moment a relative time on
//! the page ("5 minutes ago") would read differently.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use axum::body::Bytes;

use crate::config::Language;
use crate::model::Ticket;

/// Pages kept at most.
pub const MAX_PAGES: usize = 512;
/// Bytes of HTML kept at most.
pub const MAX_BYTES: usize = 8 << 20;

/// A page's version: the ticket row as read and the newest entry of its thread.
pub fn version(ticket: &Ticket, last_message_row: Option<i64>) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    format!("{ticket:?}").hash(&mut hasher);
    last_message_row.hash(&mut hasher);
    hasher.finish()
}

struct Entry {
    version: u64,
    expires_ms: i64,
    html: Bytes,
    used: u64,
}

#[derive(Default)]
struct Inner {
    entries: HashMap<(String, &'static str), Entry>,
    bytes: usize,
    clock: u64,
}

/// The cache with its hit and miss counters.
pub struct PageCache {
    inner: Mutex<Inner>,
    max_pages: usize,
    max_bytes: usize,
    hits: AtomicU64,
    misses: AtomicU64,
}

/// Counters for `/metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Pages served from the cache.
    pub hits: u64,
    /// Pages rendered because none was cached (or it was stale).
    pub misses: u64,
    /// Pages held now.
    pub pages: usize,
    /// Bytes held now.
    pub bytes: usize,
}

impl Default for PageCache {
    fn default() -> PageCache {
        PageCache::new(MAX_PAGES, MAX_BYTES)
    }
}

impl PageCache {
    /// An empty cache of at most `max_pages` pages and `max_bytes` bytes.
    pub fn new(max_pages: usize, max_bytes: usize) -> PageCache {
        PageCache {
            inner: Mutex::new(Inner::default()),
            max_pages,
            max_bytes,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // Nothing here can leave the map half-changed: a panic elsewhere keeps it usable.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The cached page of `ticket` in `lang`, if it is of `version` and still current at
    /// `now_ms`; counts a hit or a miss.
    pub fn get(&self, ticket: &str, lang: Language, version: u64, now_ms: i64) -> Option<Bytes> {
        let mut inner = self.lock();
        inner.clock += 1;
        let clock = inner.clock;
        let found = inner
            .entries
            .get_mut(&(ticket.to_string(), lang.as_str()))
            .filter(|e| e.version == version && now_ms < e.expires_ms)
            .map(|e| {
                e.used = clock;
                e.html.clone()
            });
        drop(inner);
        let counter = if found.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    /// Keeps a freshly rendered page until `expires_ms`, evicting the least recently used
    /// pages to stay within the limits. A page larger than the whole budget is not kept.
    pub fn put(&self, ticket: &str, lang: Language, version: u64, expires_ms: i64, html: Bytes) {
        if html.len() > self.max_bytes || self.max_pages == 0 {
            return;
        }
        let mut inner = self.lock();
        inner.clock += 1;
        let used = inner.clock;
        let size = html.len();
        if let Some(old) = inner.entries.insert(
            (ticket.to_string(), lang.as_str()),
            Entry {
                version,
                expires_ms,
                html,
                used,
            },
        ) {
            inner.bytes -= old.html.len();
        }
        inner.bytes += size;
        while inner.entries.len() > self.max_pages || inner.bytes > self.max_bytes {
            let Some(oldest) = inner
                .entries
                .iter()
                .min_by_key(|(_, e)| e.used)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            if let Some(gone) = inner.entries.remove(&oldest) {
                inner.bytes -= gone.html.len();
            }
        }
    }

    /// Hits, misses and what is held.
    pub fn stats(&self) -> CacheStats {
        let inner = self.lock();
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            pages: inner.entries.len(),
            bytes: inner.bytes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(text: &str) -> Bytes {
        Bytes::from(text.to_string())
    }

    #[test]
    fn a_page_is_served_only_at_its_version_and_before_it_expires() {
        let cache = PageCache::new(4, 1024);
        cache.put("AAA-AAA-AAAA", Language::En, 1, 1_000, page("v1"));
        assert_eq!(
            cache.get("AAA-AAA-AAAA", Language::En, 1, 999),
            Some(page("v1"))
        );
        assert_eq!(cache.get("AAA-AAA-AAAA", Language::En, 2, 999), None);
        assert_eq!(cache.get("AAA-AAA-AAAA", Language::En, 1, 1_000), None);
        assert_eq!(cache.get("AAA-AAA-AAAA", Language::Uk, 1, 999), None);
        let stats = cache.stats();
        assert_eq!((stats.hits, stats.misses, stats.pages), (1, 3, 1));
    }

    #[test]
    fn the_least_recently_used_page_goes_first_and_bytes_are_bounded() {
        let cache = PageCache::new(2, 10);
        cache.put("A", Language::En, 1, i64::MAX, page("aaaa"));
        cache.put("B", Language::En, 1, i64::MAX, page("bbbb"));
        assert!(cache.get("A", Language::En, 1, 0).is_some());
        cache.put("C", Language::En, 1, i64::MAX, page("cccc"));
        assert!(
            cache.get("B", Language::En, 1, 0).is_none(),
            "B was least recent"
        );
        assert!(cache.get("A", Language::En, 1, 0).is_some());
        cache.put("D", Language::En, 1, i64::MAX, page("dddddddd"));
        let stats = cache.stats();
        assert!(stats.bytes <= 10 && stats.pages <= 2, "{stats:?}");
        cache.put(
            "E",
            Language::En,
            1,
            i64::MAX,
            page("way more than ten bytes"),
        );
        assert!(cache.get("E", Language::En, 1, 0).is_none());
    }
}
