//! Our own Message-IDs: `pd.<TRACKING>.<nonce>.<tag>@<domain>`, where `tag` is an HMAC of
//! the tracking ID and nonce under the installation's secret.
//!
//! A reply's `In-Reply-To`/`References` threads into a ticket only if the tag verifies, so a
//! forged reference cannot write into somebody else's ticket (as osTicket and FreeScout do).

use crate::model::TrackingId;
use crate::signing::{constant_time_eq, hmac_hex};

const PREFIX: &str = "pd.";
const NONCE_ALPHABET: [char; 32] = [
    'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'm', 'n', 'p', 'q', 'r', 's', 't', 'u',
    'v', 'w', 'x', 'y', 'z', '2', '3', '4', '5', '6', '7', '8', '9',
];

/// What a Message-ID turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verified {
    /// One of ours, for this ticket.
    Ours(TrackingId),
    /// Shaped like ours but the tag does not verify: ignore it.
    Forged,
    /// Somebody else's.
    Foreign,
}

fn tag(secret: &[u8], tracking: &str, nonce: &str) -> String {
    hmac_hex(secret, &[tracking, nonce], 10)
}

/// A fresh Message-ID (without angle brackets) for a mail about `ticket` (or none).
pub fn generate(ticket: Option<&TrackingId>, domain: &str, secret: &[u8]) -> String {
    let tracking = ticket.map(TrackingId::as_str).unwrap_or("none");
    let nonce = nanoid::nanoid!(16, &NONCE_ALPHABET);
    let tag = tag(secret, tracking, &nonce);
    format!("{PREFIX}{tracking}.{nonce}.{tag}@{domain}")
}

/// Checks whether `message_id` is one of ours and for which ticket.
pub fn verify(message_id: &str, secret: &[u8]) -> Verified {
    let id = message_id
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>');
    let Some(rest) = id.strip_prefix(PREFIX) else {
        return Verified::Foreign;
    };
    let Some((local, _domain)) = rest.rsplit_once('@') else {
        return Verified::Foreign;
    };
    let parts: Vec<&str> = local.split('.').collect();
    let [tracking, nonce, given] = parts.as_slice() else {
        return Verified::Foreign;
    };
    let expected = tag(secret, tracking, nonce);
    if expected.is_empty()
        || !constant_time_eq(expected.as_bytes(), given.to_ascii_lowercase().as_bytes())
    {
        return Verified::Forged;
    }
    // A verified ID without a ticket (e.g. the "message too large" reply) threads nowhere.
    match TrackingId::parse(tracking) {
        Some(id) => Verified::Ours(id),
        None => Verified::Foreign,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_id_verifies_and_a_tampered_one_does_not() {
        let secret = b"0123456789abcdef";
        let ticket = TrackingId::parse("AZA-DMP-AJ8S").expect("id");
        let id = generate(Some(&ticket), "support.example.com", secret);
        assert!(id.starts_with("pd.AZA-DMP-AJ8S."), "{id}");
        assert!(id.ends_with("@support.example.com"));
        assert_eq!(verify(&id, secret), Verified::Ours(ticket.clone()));
        assert_eq!(verify(&format!("<{id}>"), secret), Verified::Ours(ticket));
        let other = id.replacen("AZA-DMP-AJ8S", "AZA-DMP-AJ8T", 1);
        assert_eq!(verify(&other, secret), Verified::Forged);
        assert_eq!(verify(&id, b"another secret"), Verified::Forged);
        assert_eq!(verify("CAF1234@mail.gmail.com", secret), Verified::Foreign);
        assert_eq!(verify("pd.nonsense", secret), Verified::Foreign);
    }

    #[test]
    fn ids_without_a_ticket_thread_nowhere() {
        let id = generate(None, "example.com", b"k");
        assert_eq!(verify(&id, b"k"), Verified::Foreign);
    }
}
