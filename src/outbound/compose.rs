//! Turns a rendered outbox row into a MIME message with postdesk's headers: From/Reply-To the
//! support address, our Message-ID, threading headers, `X-Postdesk-Ticket`, and the
//! loop-prevention headers on automatic mails.

use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::Mailbox as LettreMailbox;
use lettre::message::{Attachment, MultiPart, SinglePart};
use lettre::Message;

use crate::outbound::render::{one_line, Rendered};

/// Who we are when sending.
#[derive(Debug, Clone)]
pub struct Identity {
    /// The support address.
    pub address: String,
    /// The support team's display name.
    pub name: String,
}

/// The per-mail facts composing needs.
#[derive(Debug, Clone)]
pub struct Envelope<'a> {
    /// Recipient address.
    pub to_email: &'a str,
    /// Recipient display name (may be empty).
    pub to_name: &'a str,
    /// Our Message-ID for the mail, without brackets.
    pub message_id: &'a str,
    /// The Message-ID it answers, without brackets (may be empty).
    pub in_reply_to: &'a str,
    /// The ticket's tracking ID, when there is a ticket.
    pub tracking_id: Option<&'a str>,
    /// Whether the mail is automatic (`Auto-Submitted: auto-replied`).
    pub automatic: bool,
}

fn mailbox(address: &str, name: &str) -> anyhow::Result<LettreMailbox> {
    let address = address
        .parse()
        .map_err(|e| anyhow::anyhow!("invalid address {address:?}: {e}"))?;
    let name = one_line(name);
    Ok(LettreMailbox::new(
        (!name.is_empty()).then_some(name),
        address,
    ))
}

fn raw(name: &'static str, value: &str) -> HeaderValue {
    HeaderValue::new(HeaderName::new_from_ascii_str(name), one_line(value))
}

/// A file to send along (an agent's attachment relayed to the customer).
#[derive(Debug, Clone)]
pub struct OutgoingAttachment {
    /// File name.
    pub name: String,
    /// MIME type.
    pub content_type: String,
    /// Content.
    pub content: Vec<u8>,
}

/// Builds the message. Names and subjects pass through lettre's RFC 2047 encoder after
/// control characters are removed, so nothing from a mail can add a header.
pub fn compose(
    identity: &Identity,
    envelope: &Envelope<'_>,
    rendered: &Rendered,
    attachments: &[OutgoingAttachment],
) -> anyhow::Result<Message> {
    let from = mailbox(&identity.address, &identity.name)?;
    let mut builder = Message::builder()
        .from(from.clone())
        .reply_to(from)
        .to(mailbox(envelope.to_email, envelope.to_name)?)
        .subject(one_line(&rendered.subject))
        .message_id(Some(format!("<{}>", one_line(envelope.message_id))));
    let in_reply_to = one_line(envelope.in_reply_to);
    if !in_reply_to.is_empty() && !in_reply_to.contains(['<', '>', ' ']) {
        builder = builder
            .in_reply_to(format!("<{in_reply_to}>"))
            .references(format!("<{in_reply_to}>"));
    }
    if let Some(tracking) = envelope.tracking_id {
        builder = builder.raw_header(raw("X-Postdesk-Ticket", tracking));
    }
    if envelope.automatic {
        builder = builder
            .raw_header(raw("Auto-Submitted", "auto-replied"))
            .raw_header(raw("X-Auto-Response-Suppress", "All"));
    }
    if attachments.is_empty() {
        return builder
            .header(ContentType::TEXT_PLAIN)
            .body(rendered.body.clone())
            .map_err(|e| anyhow::anyhow!("composing the mail: {e}"));
    }
    let mut parts = MultiPart::mixed().singlepart(SinglePart::plain(rendered.body.clone()));
    for file in attachments {
        let content_type = ContentType::parse(&file.content_type).unwrap_or_else(|_| {
            ContentType::parse("application/octet-stream").unwrap_or(ContentType::TEXT_PLAIN)
        });
        parts = parts.singlepart(
            Attachment::new(one_line(&file.name)).body(file.content.clone(), content_type),
        );
    }
    builder
        .multipart(parts)
        .map_err(|e| anyhow::anyhow!("composing the mail: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn formatted(automatic: bool, name: &str, subject: &str) -> String {
        let identity = Identity {
            address: "support@example.com".into(),
            name: "Example Support".into(),
        };
        let envelope = Envelope {
            to_email: "olena@example.com",
            to_name: name,
            message_id: "pd.AZA-DMP-AJ8S.abc.def@example.com",
            in_reply_to: "CAF123@mail.gmail.com",
            tracking_id: Some("AZA-DMP-AJ8S"),
            automatic,
        };
        let rendered = Rendered {
            subject: subject.into(),
            body: "Привіт\n".into(),
        };
        let message = compose(&identity, &envelope, &rendered, &[]).expect("compose");
        String::from_utf8(message.formatted()).expect("utf-8")
    }

    fn header_block(text: &str) -> &str {
        text.split("\r\n\r\n").next().unwrap_or("")
    }

    #[test]
    fn threading_and_identity_headers() {
        let text = formatted(true, "Olena", "[#AZA-DMP-AJ8S] Ticket received: x");
        let headers = header_block(&text);
        for expected in [
            "From: \"Example Support\" <support@example.com>",
            "Reply-To: \"Example Support\" <support@example.com>",
            "Message-ID: <pd.AZA-DMP-AJ8S.abc.def@example.com>",
            "In-Reply-To: <CAF123@mail.gmail.com>",
            "References: <CAF123@mail.gmail.com>",
            "X-Postdesk-Ticket: AZA-DMP-AJ8S",
            "Auto-Submitted: auto-replied",
            "X-Auto-Response-Suppress: All",
            "Date: ",
        ] {
            assert!(
                headers.contains(expected),
                "missing {expected:?} in\n{headers}"
            );
        }
    }

    #[test]
    fn attachments_make_a_multipart_mail() {
        let identity = Identity {
            address: "support@example.com".into(),
            name: "Support".into(),
        };
        let envelope = Envelope {
            to_email: "olena@example.com",
            to_name: "",
            message_id: "pd.x@example.com",
            in_reply_to: "",
            tracking_id: None,
            automatic: false,
        };
        let rendered = Rendered {
            subject: "s".into(),
            body: "see attached\n".into(),
        };
        let file = OutgoingAttachment {
            name: "manual\r\n.pdf".into(),
            content_type: "application/pdf".into(),
            content: b"%PDF-1.4".to_vec(),
        };
        let text = String::from_utf8(
            compose(&identity, &envelope, &rendered, &[file])
                .expect("compose")
                .formatted(),
        )
        .expect("utf-8");
        assert!(text.contains("multipart/mixed"), "{text}");
        assert!(text.contains("application/pdf"), "{text}");
        assert!(text.contains("filename=\"manual .pdf\""), "{text}");
        assert!(text.contains("see attached"));
    }

    #[test]
    fn auto_submitted_only_on_automatic_mails() {
        let text = formatted(false, "Olena", "[#AZA-DMP-AJ8S] New reply to: x");
        assert!(!header_block(&text).contains("Auto-Submitted"));
        assert!(!header_block(&text).contains("X-Auto-Response-Suppress"));
    }

    #[test]
    fn hostile_subjects_and_names_stay_inside_their_header() {
        let text = formatted(
            false,
            "Eve\", <x@evil.example>\r\nBcc: victim@example.org",
            "Hi\r\nBcc: victim@example.org",
        );
        let headers = header_block(&text);
        assert!(
            !headers
                .lines()
                .any(|l| l.to_ascii_lowercase().starts_with("bcc:")),
            "{headers}"
        );
        let to_lines = headers.lines().filter(|l| l.starts_with("To:")).count();
        assert_eq!(to_lines, 1, "{headers}");
        assert!(headers.contains("<olena@example.com>"), "{headers}");
    }
}
