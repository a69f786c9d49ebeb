//! Table tests for quoted-history stripping, one row per client style.

use super::{strip_quoted, REPLY_MARKER};

const BODY: &str = "Thanks, that fixed it.\n\nBest,\nAnna";

/// (name, input, expected output)
fn cases() -> Vec<(&'static str, String, String)> {
    let body = BODY.to_string();
    let quoted = "> Please try restarting the router.\n> \n> Support";
    vec![
        (
            "gmail en",
            format!("{BODY}\n\nOn Mon, 1 Jan 2024 at 10:00, John Doe <john@example.com> wrote:\n{quoted}\n"),
            body.clone(),
        ),
        (
            "gmail wrapped",
            format!("{BODY}\n\nOn Mon, 1 Jan 2024 at 10:00, John Doe <\njohn@example.com> wrote:\n\n{quoted}"),
            body.clone(),
        ),
        (
            "apple mail",
            format!("{BODY}\n\n> On 1 Jan 2024, at 10:00, X wrote:\n> \n{quoted}"),
            body.clone(),
        ),
        (
            "thunderbird name only",
            format!("{BODY}\n\nJohn Doe wrote:\n{quoted}"),
            body.clone(),
        ),
        (
            "german",
            format!("{BODY}\n\nAm Mo., 1. Jan. 2024 um 10:00 Uhr schrieb John Doe <john@example.com>:\n{quoted}"),
            body.clone(),
        ),
        (
            "gmail uk",
            format!("{BODY}\n\nпн, 15 січ. 2024 р. о 10:00 Іван <ivan@example.com> пише:\n{quoted}"),
            body.clone(),
        ),
        (
            "ru short form",
            format!("{BODY}\n\nИван Петров написал(а):\n{quoted}"),
            body.clone(),
        ),
        (
            "gmail ru, no verb",
            format!("{BODY}\n\nпн, 15 янв. 2024 г. в 10:00, Иван <ivan@example.com>:\n{quoted}"),
            body.clone(),
        ),
        (
            "outlook en",
            format!("{BODY}\n\n________________________________\nFrom: Support <help@example.com>\nSent: Monday, January 1, 2024 10:00 AM\nTo: Anna <anna@example.org>\nSubject: RE: Router\n\nPlease try restarting."),
            body.clone(),
        ),
        (
            "outlook en, html-converted bold",
            format!("{BODY}\n\n*From:* Support <help@example.com>\n*Sent:* Monday, January 1, 2024\n*To:* Anna\n\nPlease try restarting."),
            body.clone(),
        ),
        (
            "outlook uk",
            format!("{BODY}\n\nВід: Підтримка <help@example.com>\nНадіслано: 1 січня 2024 р. 10:00\nКому: Анна\nТема: Роутер\n\nСпробуйте перезавантажити."),
            body.clone(),
        ),
        (
            "outlook ru",
            format!("{BODY}\n\n________________________________\n\nОт: Поддержка <help@example.com>\nОтправлено: 1 января 2024 г. 10:00\nКому: Анна\nТема: Роутер\n\nПопробуйте перезагрузить."),
            body.clone(),
        ),
        (
            "original message",
            format!("{BODY}\n\n-----Original Message-----\nFrom: help@example.com\nPlease try restarting."),
            body.clone(),
        ),
        (
            "original message, spaced",
            format!("{BODY}\n----- Original Message -----\nPlease try restarting."),
            body.clone(),
        ),
        (
            "original message uk",
            format!("{BODY}\n-----Вихідне повідомлення-----\nСпробуйте."),
            body.clone(),
        ),
        (
            "original message ru",
            format!("{BODY}\n-----Исходное сообщение-----\nПопробуйте."),
            body.clone(),
        ),
        (
            "our marker",
            format!("{BODY}\n\n{REPLY_MARKER}\nTicket [#AAA-BBB-CCCC] was updated."),
            body.clone(),
        ),
        (
            "our marker quoted",
            format!("{BODY}\n\n> {REPLY_MARKER}\n> Ticket [#AAA-BBB-CCCC] was updated.\nsome trailing text"),
            body.clone(),
        ),
        (
            "trailing quote without attribution",
            format!("{BODY}\n\n{quoted}\n\n"),
            body.clone(),
        ),
        ("no quote, unchanged", body.clone(), body.clone()),
        (
            "signature kept",
            format!("{BODY}\n-- \nAnna Smith\nACME Ltd."),
            format!("{BODY}\n-- \nAnna Smith\nACME Ltd."),
        ),
        (
            "whole mail quoted falls back",
            format!("On Mon, 1 Jan 2024 at 10:00, John <john@example.com> wrote:\n{quoted}\n"),
            format!("On Mon, 1 Jan 2024 at 10:00, John <john@example.com> wrote:\n{quoted}"),
        ),
        (
            "middle quote kept",
            "You said:\n> restart the router\nI did, twice.\n".to_string(),
            "You said:\n> restart the router\nI did, twice.".to_string(),
        ),
        (
            "not an attribution",
            "Here is what I wrote:\n> the router blinks red\nPlease advise.".to_string(),
            "Here is what I wrote:\n> the router blinks red\nPlease advise.".to_string(),
        ),
        (
            "sentence with a pronoun is not an attribution",
            "As I wrote:\nthe router blinks red".to_string(),
            "As I wrote:\nthe router blinks red".to_string(),
        ),
        (
            "forwarded message kept",
            "See below.\n---------- Forwarded message ---------\nFrom: Bob <bob@example.com>\nHello".to_string(),
            "See below.\n---------- Forwarded message ---------\nFrom: Bob <bob@example.com>\nHello".to_string(),
        ),
        (
            "leading blank lines dropped",
            format!("\n\n{BODY}\n\n{REPLY_MARKER}\nold"),
            body.clone(),
        ),
    ]
}

#[test]
fn strips_each_style() {
    let mut failures = Vec::new();
    for (name, input, expected) in cases() {
        let got = strip_quoted(&input);
        if got != expected {
            failures.push(format!(
                "{name}:\n  got:      {got:?}\n  expected: {expected:?}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn never_panics_on_odd_input() {
    for input in [
        "",
        "\n",
        ">",
        ":",
        "wrote:",
        "<\n",
        "From:\n",
        "______\nFrom:\nSent:",
        "İ wrote:",
    ] {
        let _ = strip_quoted(input);
    }
    assert_eq!(strip_quoted(""), "");
    assert_eq!(strip_quoted("   \n\n"), "");
}
