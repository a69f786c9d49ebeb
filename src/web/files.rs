//! Attachment downloads: `GET /t/{ID}/{token}/files/{sha256}`.
//!
//! Invariants: the same link check as the ticket page (and the same failure counting); only
//! attachments of that ticket's customer and agent messages; always
//! `application/octet-stream` with `Content-Disposition: attachment`, so a mail's HTML or
//! SVG attachment is never rendered by the browser under our origin.

use std::net::IpAddr;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use tracing::warn;

use super::handlers::{blocking, internal_error, not_found_text, ClientIp, Params};
use super::text::visible_controls;
use super::WebState;
use crate::config::Language;

/// `GET /t/{ID}/{token}/files/{sha256}`: an attachment of a customer or agent message.
pub async fn file(
    State(state): State<WebState>,
    ClientIp(ip): ClientIp,
    Path((id, token, sha256)): Path<(String, String, String)>,
    Query(params): Query<Params>,
) -> Response {
    let lang = state.language(&params);
    blocking(move || download(&state, ip, &id, &token, &sha256, lang)).await
}

fn download(
    state: &WebState,
    ip: IpAddr,
    id: &str,
    token: &str,
    sha256: &str,
    lang: Language,
) -> Response {
    let ticket = match state.check_link(ip, id, token) {
        Ok(ticket) => ticket,
        Err(refusal) => return state.refusal(lang, refusal),
    };
    let is_hash = sha256.len() == 64
        && sha256
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    let attachment = match is_hash
        .then(|| {
            state
                .shared
                .db
                .with(|s| s.customer_visible_attachment(&ticket.tracking_id, sha256))
        })
        .transpose()
    {
        Ok(Some(Some(attachment))) => attachment,
        Ok(_) => return not_found_text(),
        Err(e) => return internal_error(e),
    };
    let bytes = match state.shared.blobs.get(&attachment.sha256) {
        Ok(bytes) => bytes,
        Err(e) => {
            warn!(ticket = %ticket.tracking_id, sha256, error = %e, "Attachment file missing");
            return not_found_text();
        }
    };
    let disposition = HeaderValue::from_str(&content_disposition(&attachment.name))
        .unwrap_or(HeaderValue::from_static("attachment"));
    let headers = [
        (
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        ),
        (header::CONTENT_DISPOSITION, disposition),
        (
            header::CACHE_CONTROL,
            HeaderValue::from_static("private, no-store"),
        ),
    ];
    (StatusCode::OK, headers, bytes).into_response()
}

/// `attachment; filename="ascii"; filename*=UTF-8''percent-encoded` (RFC 6266): always a
/// download, never shown inline, whatever type the mail claimed.
pub fn content_disposition(name: &str) -> String {
    let name = visible_controls(name).replace(['/', '\\'], "_");
    let ascii: String = name
        .chars()
        .map(|c| match c {
            ' ' | '!' | '#'..='+' | '-'..='[' | ']'..='~' if c != '%' && c != ';' => c,
            _ => '_',
        })
        .collect();
    let mut encoded = String::with_capacity(name.len() * 3);
    for byte in name.bytes() {
        if byte.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&byte) {
            encoded.push(byte as char);
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_cannot_break_the_header_or_hide_their_extension() {
        assert_eq!(
            content_disposition("report 2026.pdf"),
            "attachment; filename=\"report 2026.pdf\"; filename*=UTF-8''report%202026.pdf"
        );
        assert_eq!(
            content_disposition("a\"; filename=evil.html"),
            "attachment; filename=\"a__ filename=evil.html\"; filename*=UTF-8''a%22%3B%20filename%3Devil.html"
        );
        assert_eq!(
            content_disposition("../звіт\u{202E}fdp.exe"),
            "attachment; filename=\".._____[U+202E]fdp.exe\"; \
             filename*=UTF-8''.._%D0%B7%D0%B2%D1%96%D1%82%5BU+202E%5Dfdp.exe"
        );
    }
}
