//! Failed-lookup limiting per client, and finding the client behind trusted proxies.
//!
//! Invariants: time is passed in (milliseconds), so lockout and expiry are tested without
//! sleeping. An IPv6 client is counted by its /64 prefix, because one host usually holds a
//! whole /64. The table is pruned of expired entries whenever it grows past
//! [`PRUNE_ABOVE`], so a flood of addresses cannot grow it without bound for long.
//! `X-Forwarded-For` is believed only when the connection comes from a trusted proxy.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Mutex;

/// Prune expired entries when the table holds more clients than this.
const PRUNE_ABOVE: usize = 4096;

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    /// Failures older than `window_start + lock` no longer count.
    window_start: i64,
    locked_until: Option<i64>,
}

/// Counts failed lookups per client and locks a client out after too many.
#[derive(Debug)]
pub struct LookupLimiter {
    max_failures: u32,
    lock_ms: i64,
    entries: Mutex<HashMap<IpAddr, Entry>>,
}

/// The key a client is counted under: the address, or its /64 for IPv6.
fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

impl LookupLimiter {
    /// `max_failures` failed lookups within `lock_ms` lock a client out for `lock_ms`.
    pub fn new(max_failures: u32, lock_ms: i64) -> LookupLimiter {
        LookupLimiter {
            max_failures: max_failures.max(1),
            lock_ms: lock_ms.max(1),
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, Entry>> {
        // A panic while holding the lock leaves only counters behind: keep using them.
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `Some(milliseconds left)` while the client is locked out.
    pub fn locked(&self, ip: IpAddr, now: i64) -> Option<i64> {
        let entries = self.entries();
        let until = entries.get(&client_key(ip))?.locked_until?;
        (until > now).then_some(until - now)
    }

    /// Records a failed lookup; returns true when this failure locked the client out.
    pub fn record_failure(&self, ip: IpAddr, now: i64) -> bool {
        let mut entries = self.entries();
        if entries.len() > PRUNE_ABOVE {
            let lock_ms = self.lock_ms;
            entries.retain(|_, e| {
                e.locked_until.is_some_and(|u| u > now) || e.window_start + lock_ms > now
            });
        }
        let entry = entries.entry(client_key(ip)).or_insert(Entry {
            failures: 0,
            window_start: now,
            locked_until: None,
        });
        let expired_lock = entry.locked_until.is_some_and(|u| u <= now);
        if expired_lock
            || (entry.locked_until.is_none() && entry.window_start + self.lock_ms <= now)
        {
            *entry = Entry {
                failures: 0,
                window_start: now,
                locked_until: None,
            };
        }
        entry.failures += 1;
        if entry.failures >= self.max_failures && entry.locked_until.is_none() {
            entry.locked_until = Some(now + self.lock_ms);
            return true;
        }
        false
    }

    /// How many clients are tracked (for tests and metrics).
    pub fn tracked_clients(&self) -> usize {
        self.entries().len()
    }
}

/// An IP address or CIDR range, as `[web] trusted_proxies` lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpRange {
    network: IpAddr,
    prefix: u8,
}

impl IpRange {
    /// Parses `10.0.0.0/8`, `::1` or `192.0.2.7`; `None` for anything else.
    pub fn parse(text: &str) -> Option<IpRange> {
        let (address, prefix) = match text.trim().split_once('/') {
            Some((a, p)) => (a, Some(p.parse::<u8>().ok()?)),
            None => (text.trim(), None),
        };
        let network: IpAddr = address.parse().ok()?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        (prefix <= max).then_some(IpRange { network, prefix })
    }

    /// True when `ip` lies in the range.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.network, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// The client's address: the peer, or — when the peer is a trusted proxy — the right-most
/// `X-Forwarded-For` entry that is not itself a trusted proxy.
pub fn client_ip(peer: IpAddr, forwarded_for: &[&str], trusted: &[IpRange]) -> IpAddr {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|r| r.contains(ip));
    if !is_trusted(peer) {
        return peer;
    }
    let mut client = peer;
    for hop in forwarded_for.iter().rev().flat_map(|h| h.rsplit(',')) {
        let Ok(ip) = hop.trim().parse::<IpAddr>() else {
            // An unreadable hop was written by someone we do not trust: stop at the last
            // address a trusted proxy vouched for.
            return client;
        };
        client = ip;
        if !is_trusted(ip) {
            return ip;
        }
    }
    client
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: i64 = 60_000;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("ip")
    }

    #[test]
    fn five_failures_lock_for_an_hour_then_the_count_starts_over() {
        let limiter = LookupLimiter::new(5, 60 * MINUTE);
        let client = ip("203.0.113.9");
        for n in 0..4 {
            assert!(!limiter.record_failure(client, n * MINUTE));
            assert_eq!(limiter.locked(client, n * MINUTE), None);
        }
        assert!(limiter.record_failure(client, 4 * MINUTE));
        assert_eq!(limiter.locked(client, 4 * MINUTE), Some(60 * MINUTE));
        assert_eq!(limiter.locked(client, 63 * MINUTE), Some(MINUTE));
        assert_eq!(limiter.locked(ip("203.0.113.10"), 5 * MINUTE), None);
        assert_eq!(limiter.locked(client, 64 * MINUTE), None);
        assert!(!limiter.record_failure(client, 65 * MINUTE));
        assert_eq!(limiter.locked(client, 65 * MINUTE), None);
    }

    #[test]
    fn old_failures_stop_counting() {
        let limiter = LookupLimiter::new(2, 60 * MINUTE);
        let client = ip("198.51.100.1");
        assert!(!limiter.record_failure(client, 0));
        assert!(!limiter.record_failure(client, 61 * MINUTE));
        assert!(limiter.record_failure(client, 62 * MINUTE));
    }

    #[test]
    fn ipv6_clients_count_by_their_64() {
        let limiter = LookupLimiter::new(2, MINUTE);
        assert!(!limiter.record_failure(ip("2001:db8:1:2::1"), 0));
        assert!(limiter.record_failure(ip("2001:db8:1:2:ffff::9"), 0));
        assert!(limiter.locked(ip("2001:db8:1:2::77"), 1).is_some());
        assert!(limiter.locked(ip("2001:db8:1:3::1"), 1).is_none());
    }

    #[test]
    fn expired_entries_are_pruned() {
        let limiter = LookupLimiter::new(5, MINUTE);
        for n in 0..=PRUNE_ABOVE as u32 {
            limiter.record_failure(IpAddr::from(n.to_be_bytes()), 0);
        }
        limiter.record_failure(ip("192.0.2.1"), 2 * MINUTE);
        assert_eq!(limiter.tracked_clients(), 1);
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let trusted: Vec<IpRange> = ["127.0.0.1", "10.0.0.0/8"]
            .iter()
            .map(|r| IpRange::parse(r).expect("range"))
            .collect();
        let xff = ["198.51.100.7, 10.1.2.3"];
        assert_eq!(
            client_ip(ip("127.0.0.1"), &xff, &trusted),
            ip("198.51.100.7")
        );
        assert_eq!(
            client_ip(ip("203.0.113.5"), &xff, &trusted),
            ip("203.0.113.5")
        );
        // A client that sends its own X-Forwarded-For cannot pick its address.
        let spoofed = ["1.2.3.4, 198.51.100.7"];
        assert_eq!(
            client_ip(ip("127.0.0.1"), &spoofed, &trusted),
            ip("198.51.100.7")
        );
        assert_eq!(client_ip(ip("127.0.0.1"), &[], &trusted), ip("127.0.0.1"));
        assert_eq!(
            client_ip(ip("127.0.0.1"), &["junk"], &trusted),
            ip("127.0.0.1")
        );
        assert!(IpRange::parse("10.0.0.0/33").is_none());
        assert!(IpRange::parse("::ffff:0:0/96").is_some());
        assert!(IpRange::parse("0.0.0.0/0")
            .expect("all")
            .contains(ip("8.8.8.8")));
    }
}
