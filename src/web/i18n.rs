//! The page's words that code chooses rather than templates: status names, "you", and
//! relative times with their plural forms, in English and Ukrainian (pure; `now` passed in).

use chrono::{DateTime, Utc};

use crate::config::Language;
use crate::model::TicketStatus;

/// The status as HESK names it, in the page's language.
pub fn status_label(status: TicketStatus, lang: Language) -> &'static str {
    use TicketStatus::*;
    match (lang, status) {
        (Language::En, New) => "New",
        (Language::En, WaitingReply) => "Waiting reply",
        (Language::En, Replied) => "Replied",
        (Language::En, InProgress) => "In progress",
        (Language::En, OnHold) => "On hold",
        (Language::En, Resolved) => "Resolved",
        (Language::Uk, New) => "Новий",
        (Language::Uk, WaitingReply) => "Очікує відповіді",
        (Language::Uk, Replied) => "Відповідь надано",
        (Language::Uk, InProgress) => "В роботі",
        (Language::Uk, OnHold) => "Призупинено",
        (Language::Uk, Resolved) => "Вирішено",
    }
}

/// How the page calls the customer when naming the last replier.
pub fn you(lang: Language) -> &'static str {
    match lang {
        Language::En => "You",
        Language::Uk => "Ви",
    }
}

/// Ukrainian plural form index: 0 for 1, 21, 31…; 1 for 2–4, 22–24…; 2 for the rest.
fn uk_plural(n: i64) -> usize {
    let (last, last_two) = (n % 10, n % 100);
    if last == 1 && last_two != 11 {
        0
    } else if (2..=4).contains(&last) && !(12..=14).contains(&last_two) {
        1
    } else {
        2
    }
}

/// `then` relative to `now`: "just now", "5 minutes ago", "3 дні тому". Future times (clock
/// skew between hosts) read as "just now".
pub fn relative_time(then: DateTime<Utc>, now: DateTime<Utc>, lang: Language) -> String {
    let seconds = (now - then).num_seconds();
    const UNITS: [(i64, [&str; 2], [&str; 3]); 5] = [
        (365 * 86_400, ["year", "years"], ["рік", "роки", "років"]),
        (
            30 * 86_400,
            ["month", "months"],
            ["місяць", "місяці", "місяців"],
        ),
        (86_400, ["day", "days"], ["день", "дні", "днів"]),
        (3_600, ["hour", "hours"], ["годину", "години", "годин"]),
        (60, ["minute", "minutes"], ["хвилину", "хвилини", "хвилин"]),
    ];
    for (size, en, uk) in UNITS {
        let n = seconds / size;
        if n >= 1 {
            return match lang {
                Language::En => format!("{n} {} ago", en[usize::from(n != 1)]),
                Language::Uk => format!("{n} {} тому", uk[uk_plural(n)]),
            };
        }
    }
    match lang {
        Language::En => "just now".to_string(),
        Language::Uk => "щойно".to_string(),
    }
}

/// The first moment after `now` at which [`relative_time`]`(then, …)` reads differently from
/// now (in either language: both change at the same moments).
pub fn relative_time_changes_at(then: DateTime<Utc>, now: DateTime<Utc>) -> DateTime<Utc> {
    const SIZES: [i64; 5] = [365 * 86_400, 30 * 86_400, 86_400, 3_600, 60];
    let seconds = (now - then).num_seconds();
    // The label is "n units" of the largest unit that fits; it changes when n does, or when
    // a larger unit starts to fit. Below a minute (or in the future) it is "just now".
    let mut next = SIZES[SIZES.len() - 1];
    for (index, size) in SIZES.iter().enumerate() {
        if seconds >= *size {
            next = (seconds / size + 1) * size;
            if let Some(larger) = SIZES[..index].last() {
                next = next.min(*larger);
            }
            break;
        }
    }
    then + chrono::Duration::seconds(next)
}

/// The absolute time shown on hover and in print: `2026-11-22 10:00 UTC`.
pub fn absolute_time(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M UTC").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn relative_times_use_the_right_plural() {
        let now = Utc
            .with_ymd_and_hms(2026, 11, 22, 12, 0, 0)
            .single()
            .expect("time");
        let ago = |seconds: i64| now - chrono::Duration::seconds(seconds);
        let cases = [
            (10, "just now", "щойно"),
            (60, "1 minute ago", "1 хвилину тому"),
            (3 * 60, "3 minutes ago", "3 хвилини тому"),
            (11 * 60, "11 minutes ago", "11 хвилин тому"),
            (21 * 3600, "21 hours ago", "21 годину тому"),
            (2 * 86_400, "2 days ago", "2 дні тому"),
            (5 * 86_400, "5 days ago", "5 днів тому"),
            (400 * 86_400, "1 year ago", "1 рік тому"),
            (-300, "just now", "щойно"),
        ];
        for (seconds, en, uk) in cases {
            assert_eq!(relative_time(ago(seconds), now, Language::En), en);
            assert_eq!(relative_time(ago(seconds), now, Language::Uk), uk);
        }
        assert_eq!(absolute_time(now), "2026-11-22 12:00 UTC");
    }

    #[test]
    fn relative_times_change_exactly_when_predicted() {
        let then = Utc
            .with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
            .single()
            .expect("time")
            + chrono::Duration::milliseconds(250);
        let ages = [
            -300,
            0,
            59,
            60,
            61,
            119,
            3_599,
            3_600,
            7_199,
            86_399,
            86_400,
            29 * 86_400 + 5,
            30 * 86_400,
            364 * 86_400,
            365 * 86_400 - 1,
            400 * 86_400,
            800 * 86_400,
        ];
        for age in ages {
            let now = then + chrono::Duration::seconds(age) + chrono::Duration::milliseconds(7);
            let changes = relative_time_changes_at(then, now);
            assert!(changes > now, "age {age}");
            for lang in [Language::En, Language::Uk] {
                let label = relative_time(then, now, lang);
                let just_before = changes - chrono::Duration::milliseconds(1);
                assert_eq!(relative_time(then, just_before, lang), label, "age {age}");
                assert_ne!(relative_time(then, changes, lang), label, "age {age}");
            }
        }
    }

    #[test]
    fn every_status_has_a_label_in_both_languages() {
        for status in TicketStatus::ALL {
            assert!(!status_label(status, Language::En).is_empty());
            assert!(status_label(status, Language::Uk)
                .chars()
                .any(|c| ('\u{0400}'..='\u{04FF}').contains(&c)));
        }
    }
}
