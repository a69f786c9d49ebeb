//! HMAC-SHA256 tags under the installation secret, and constant-time comparison.
//!
//! Used for our Message-IDs (a forged reference cannot thread into a ticket) and for the
//! personal tracking links (`/t/{ID}/{token}`, token = HMAC of ticket and customer address).

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::model::{EmailAddress, TrackingId};

/// The first `bytes` bytes of HMAC-SHA256(secret, parts joined by `\0`), as lower-case hex.
pub fn hmac_hex(secret: &[u8], parts: &[&str], bytes: usize) -> String {
    // HMAC accepts keys of any length, so this cannot fail; an empty tag never verifies.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        return String::new();
    };
    for (index, part) in parts.iter().enumerate() {
        if index > 0 {
            mac.update(b"\0");
        }
        mac.update(part.as_bytes());
    }
    mac.finalize()
        .into_bytes()
        .iter()
        .take(bytes)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Compares two byte strings in time independent of where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The token of a customer's personal tracking link.
pub fn tracking_token(secret: &[u8], ticket: &TrackingId, customer: &EmailAddress) -> String {
    hmac_hex(
        secret,
        &["tracking-link", ticket.as_str(), customer.as_str()],
        16,
    )
}

/// True when `token` is the tracking token for this ticket and customer.
pub fn verify_tracking_token(
    secret: &[u8],
    ticket: &TrackingId,
    customer: &EmailAddress,
    token: &str,
) -> bool {
    let expected = tracking_token(secret, ticket, customer);
    !expected.is_empty() && constant_time_eq(expected.as_bytes(), token.as_bytes())
}

/// `{base_url}/t/{ID}/{token}`.
pub fn tracking_link(
    base_url: &str,
    secret: &[u8],
    ticket: &TrackingId,
    customer: &EmailAddress,
) -> String {
    format!(
        "{}/t/{ticket}/{}",
        base_url.trim_end_matches('/'),
        tracking_token(secret, ticket, customer)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracking_tokens_bind_ticket_and_customer() {
        let secret = b"0123456789abcdef0123456789abcdef";
        let id = TrackingId::parse("AZA-DMP-AJ8S").expect("id");
        let other = TrackingId::parse("AZA-DMP-AJ8T").expect("id");
        let olena = EmailAddress::parse("Olena@Example.org").expect("address");
        let eve = EmailAddress::parse("eve@example.org").expect("address");
        let token = tracking_token(secret, &id, &olena);
        assert_eq!(token.len(), 32);
        assert!(verify_tracking_token(secret, &id, &olena, &token));
        assert!(!verify_tracking_token(secret, &other, &olena, &token));
        assert!(!verify_tracking_token(secret, &id, &eve, &token));
        assert!(!verify_tracking_token(
            b"another secret",
            &id,
            &olena,
            &token
        ));
        assert!(!verify_tracking_token(secret, &id, &olena, ""));
        assert_eq!(
            tracking_link("http://127.0.0.1:8080/", secret, &id, &olena),
            format!("http://127.0.0.1:8080/t/AZA-DMP-AJ8S/{token}")
        );
    }
}
