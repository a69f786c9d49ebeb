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

/// An ID is 12 characters; this leaves generous room for inserted spaces.
const MAX_INSIDE: usize = 40;

/// Reads `# ID ]` at the start of `text` (the part after a `[`).
///
/// The closing `]` is looked for only within [`MAX_INSIDE`] bytes: searching the whole rest
/// for every `[` made a subject of many `[#` quadratic (1.1 s for 160 KB in a release
/// build, about an hour for 10 MB, with intake stuck on that one mail).
fn tag_at(text: &str) -> Option<TrackingId> {
    let text = text.trim_start().strip_prefix('#')?;
    let close = text.bytes().take(MAX_INSIDE + 1).position(|b| b == b']')?;
    // `]` is ASCII, so `close` is a character boundary.
    TrackingId::parse(text.get(..close)?)
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
    fn the_close_bracket_is_looked_for_only_near_the_open_one() {
        let padded = |n: usize| format!("[#AZA-DMP-AJ8S{}]", " ".repeat(n));
        // 12 characters of ID plus padding up to the limit still count, one more does not.
        assert!(find_subject_tag(&padded(MAX_INSIDE - 12)).is_some());
        assert_eq!(find_subject_tag(&padded(MAX_INSIDE - 11)), None);
        assert_eq!(
            find_subject_tag("[# Ж Ж Ж Ж Ж Ж Ж Ж Ж Ж Ж Ж Ж Ж Ж Ж ]"),
            None
        );
    }

    /// Every `[` used to scan the rest of the subject for a `]`: with a million `[#` before
    /// a real tag (a 2 MB subject) this ran for minutes, with intake stuck on the mail. It
    /// reads no clock; under the old code it simply does not finish in reasonable time.
    #[test]
    fn many_unclosed_tags_are_linear() {
        let subject = format!("{}[#AZA-DMP-AJ8S]", "[#".repeat(1_000_000));
        assert_eq!(
            find_subject_tag(&subject).as_ref().map(TrackingId::as_str),
            Some("AZA-DMP-AJ8S")
        );
        assert_eq!(find_subject_tag(&"[# [".repeat(500_000)), None);
    }

    #[test]
    fn generated_ids_are_not_repeated() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..10_000 {
            assert!(seen.insert(TrackingId::generate()));
        }
    }
}
