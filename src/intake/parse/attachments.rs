//! Attachments of an inbound mail: every attachment part mail-parser lists except the text
//! and HTML parts shown as the body, with a safe base name, a lower-case MIME type and the
//! bytes exactly as the sender attached them.

use std::collections::HashSet;

use mail_parser::decoders::base64::base64_decode;
use mail_parser::decoders::quoted_printable::quoted_printable_decode;
use mail_parser::{Encoding, Message, MessagePart, MimeHeaders, PartType};

use crate::model::InboundAttachment;

use super::{collapse_whitespace, lower_content_type};

/// Longest attachment file name kept, in characters.
const MAX_ATTACHMENT_NAME_CHARS: usize = 200;

/// Every attachment part except the text and HTML parts used as the body.
pub(super) fn attachments(message: &Message<'_>) -> Vec<InboundAttachment> {
    let body_ids: HashSet<u32> = message
        .text_body
        .iter()
        .chain(message.html_body.iter())
        .copied()
        .collect();
    // mail-parser also lists inline images among the body parts (as JMAP does); only the
    // text and HTML parts shown as the body are left out here.
    message
        .attachments
        .iter()
        .filter_map(|&id| Some((id, message.parts.get(id as usize)?)))
        .filter(|(id, part)| {
            let is_text = matches!(part.body, PartType::Text(_) | PartType::Html(_));
            !(is_text && body_ids.contains(id))
        })
        .map(|(_, part)| part)
        .enumerate()
        .map(|(index, part)| {
            let content_type = lower_content_type(part).unwrap_or_else(|| default_type(part));
            let name = part
                .attachment_name()
                .and_then(sanitise_file_name)
                .unwrap_or_else(|| generated_name(index + 1, &content_type));
            InboundAttachment {
                name,
                content: attachment_bytes(message, part),
                content_type,
            }
        })
        .collect()
}

/// The type to record for a part without a usable Content-Type header.
fn default_type(part: &MessagePart<'_>) -> String {
    match part.body {
        PartType::Message(_) => "message/rfc822",
        PartType::Text(_) => "text/plain",
        PartType::Html(_) => "text/html",
        _ => "application/octet-stream",
    }
    .to_string()
}

/// The decoded bytes of an attachment as the sender attached them.
///
/// mail-parser hands text parts over already converted to UTF-8 (from the declared charset,
/// or lossily when none was declared), which would corrupt a windows-1251 `.txt` or `.csv`
/// file; so for text parts and returned messages the transfer encoding is undone here on
/// the raw bytes instead. When that fails the library's version is kept.
fn attachment_bytes(message: &Message<'_>, part: &MessagePart<'_>) -> Vec<u8> {
    let is_text_or_message = matches!(
        part.body,
        PartType::Text(_) | PartType::Html(_) | PartType::Message(_)
    );
    if is_text_or_message {
        let raw_body = message
            .raw_message
            .get(part.offset_body as usize..part.offset_end as usize);
        let original = raw_body.and_then(|bytes| match part.encoding {
            Encoding::None => Some(bytes.to_vec()),
            Encoding::Base64 => base64_decode(bytes),
            Encoding::QuotedPrintable => quoted_printable_decode(bytes),
        });
        if let Some(original) = original.filter(|bytes| !bytes.is_empty()) {
            return original;
        }
        if let PartType::Message(returned) = &part.body {
            return returned.raw_message.to_vec();
        }
    }
    part.contents().to_vec()
}

/// Reduces a sender-supplied file name to a safe base name, or `None` when nothing usable
/// is left.
fn sanitise_file_name(name: &str) -> Option<String> {
    let base = name
        .rsplit(['/', '\\'])
        .find(|segment| !segment.trim().is_empty())?;
    let cleaned = collapse_whitespace(base);
    let cleaned = cleaned.trim_matches(|c: char| c.is_whitespace() || c == '.');
    if cleaned.is_empty() {
        return None;
    }
    if cleaned.chars().count() <= MAX_ATTACHMENT_NAME_CHARS {
        return Some(cleaned.to_string());
    }
    // Too long: cut the stem and keep a short extension so the type stays recognisable.
    let extension = cleaned
        .rsplit_once('.')
        .map(|(_, ext)| ext)
        .filter(|ext| !ext.is_empty() && ext.chars().count() <= 16);
    let keep = match extension {
        Some(ext) => MAX_ATTACHMENT_NAME_CHARS - ext.chars().count() - 1,
        None => MAX_ATTACHMENT_NAME_CHARS,
    };
    let stem: String = cleaned.chars().take(keep).collect();
    Some(match extension {
        Some(ext) => format!("{stem}.{ext}"),
        None => stem,
    })
}

/// `attachment-N.ext` for a part that carries no file name.
fn generated_name(number: usize, content_type: &str) -> String {
    let extension = match content_type {
        "text/plain" | "message/delivery-status" | "text/rfc822-headers" => "txt",
        "text/html" => "html",
        "text/calendar" => "ics",
        "message/rfc822" => "eml",
        "image/png" => "png",
        "image/jpeg" | "image/jpg" => "jpg",
        "image/gif" => "gif",
        "application/pdf" => "pdf",
        _ => "bin",
    };
    format!("attachment-{number}.{extension}")
}
