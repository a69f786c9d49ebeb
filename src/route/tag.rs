//! Finding the `[#XXX-XXX-XXXX]` tracking tag in a subject.
//!
//! The tag may sit anywhere in a subject of any length, in any case, with spaces inside the
//! brackets (Hotmail inserts them: `[# AZA-DMP-AJ8S ]`). Only a complete, valid ID counts:
//! look-alikes with a wrong length or letters outside the alphabet never match.

use crate::model::TrackingId;

/// The first valid tracking tag in `subject`, if any.
pub fn find_subject_tag(subject: &str) -> Option<TrackingId> {
    let mut rest = subject;
    while let Some(open) = rest.find('[') {
        let after_open = &rest[open + 1..];
        if let Some(id) = tag_at(after_open) {
            return Some(id);
        }
        rest = after_open;
    }
    None
}

/// Reads `# ID ]` at the start of `text` (the part after a `[`).
fn tag_at(text: &str) -> Option<TrackingId> {
    let text = text.trim_start().strip_prefix('#')?;
    let close = text.find(']')?;
    let inside = &text[..close];
    // An ID is 12 characters; allow generous room for inserted spaces, but never scan far.
    if inside.len() > 40 {
        return None;
    }
    TrackingId::parse(inside)
}

/// `[#ID]`, the tag as written into our subjects.
pub fn format_subject_tag(id: &TrackingId) -> String {
    format!("[#{id}]")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_found_in_any_case_with_spaces_anywhere_in_long_subjects() {
        let long_tail = "x".repeat(200);
        let long = format!("Re: Re: AW: Відп: [#AZA-DMP-AJ8S] {long_tail}");
        let long_front = format!("{long_tail} [#AZA-DMP-AJ8S]");
        let table = [
            "[#AZA-DMP-AJ8S]",
            "[#aza-dmp-aj8s]",
            "[# AZA-DMP-AJ8S ]",
            "[ #AZA - DMP - AJ8S ]",
            "Re: [#AZA-DMP-AJ8S] Printer on fire",
            "Printer [not a tag] [#AZA-DMP-AJ8S]",
            "[[#AZA-DMP-AJ8S]]",
            long.as_str(),
            long_front.as_str(),
        ];
        for subject in table {
            assert_eq!(
                find_subject_tag(subject).as_ref().map(TrackingId::as_str),
                Some("AZA-DMP-AJ8S"),
                "{subject}"
            );
        }
    }

    #[test]
    fn look_alikes_do_not_match() {
        let table = [
            "",
            "AZA-DMP-AJ8S",
            "[AZA-DMP-AJ8S]",
            "(#AZA-DMP-AJ8S)",
            "#AZA-DMP-AJ8S",
            "[#AZA-DMP-AJ8]",
            "[#AZA-DMP-AJ8SS]",
            "[#AZADMPAJ8S]",
            "[#AZA-DMP-AJ0S]",
            "[#OZA-DMP-AJ8S]",
            "[#CZA-DMP-AJ8S]",
            "[#AZA-DMP-AJ8S",
            "[#AZA_DMP_AJ8S]",
            "[#AZA-DMP-AJ8S-AJ8S]",
            "[#ticket 42]",
            "[#",
            "[",
            "[#Ж]",
        ];
        for subject in table {
            assert_eq!(find_subject_tag(subject), None, "{subject}");
        }
    }

    #[test]
    fn generated_ids_use_the_alphabet_and_shape_and_round_trip_through_a_tag() {
        for _ in 0..2000 {
            let id = TrackingId::generate();
            let text = id.as_str();
            assert_eq!(text.len(), 12);
            assert_eq!(&text[3..4], "-");
            assert_eq!(&text[7..8], "-");
            assert!(text
                .chars()
                .filter(|c| *c != '-')
                .all(|c| crate::model::TRACKING_ALPHABET.contains(&c)));
            let subject = format!("Re: {} Hello", format_subject_tag(&id));
            assert_eq!(find_subject_tag(&subject), Some(id));
        }
    }

    #[test]
    fn generated_ids_are_not_repeated() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..10_000 {
            assert!(seen.insert(TrackingId::generate()));
        }
    }
}
