//! Mail templates: Tera plain-text files compiled into the binary from `templates/mail/`,
//! each overridable by a file of the same path under the config's `templates_dir`.
//!
//! A template's first line is `Subject: …`, then an empty line, then the body. Templates are
//! parsed once at start-up, so a broken override is reported then, with its file and line.

use std::path::Path;

use anyhow::Context;
use serde::Serialize;
use tera::Tera;

use crate::model::Template;
use crate::templates;

/// The marker customer mails carry at the top; quote stripping cuts replies there.
pub use crate::route::quotes::REPLY_MARKER;

/// The languages every template exists in.
pub const LANGUAGES: [&str; 2] = ["en", "uk"];

macro_rules! embedded {
    ($($lang:literal / $name:literal),* $(,)?) => {
        &[$((concat!($lang, "/", $name, ".txt"), include_str!(concat!("../../templates/mail/", $lang, "/", $name, ".txt")))),*]
    };
}

const EMBEDDED: &[(&str, &str)] = embedded![
    "en" / "ticket_received",
    "en" / "staff_reply",
    "en" / "ticket_closed",
    "en" / "agent_new_ticket",
    "en" / "agent_customer_reply",
    "en" / "message_too_large",
    "uk" / "ticket_received",
    "uk" / "staff_reply",
    "uk" / "ticket_closed",
    "uk" / "agent_new_ticket",
    "uk" / "agent_customer_reply",
    "uk" / "message_too_large",
];

/// What a template can use.
#[derive(Debug, Clone, Default, Serialize)]
pub struct MailContext {
    /// The ticket's tracking ID.
    pub tracking_id: String,
    /// The ticket's subject (or the inbound subject for mails without a ticket).
    pub subject: String,
    /// The ticket's status.
    pub status: String,
    /// The customer's name (or address when no name is known).
    pub customer_name: String,
    /// The customer's address.
    pub customer_email: String,
    /// The recipient's name, empty when unknown.
    pub recipient_name: String,
    /// The message text the mail is about.
    pub text: String,
    /// Who wrote that text (an agent's display name for `staff_reply`).
    pub author: String,
    /// The support team's name.
    pub support_name: String,
    /// The size limit in MB (for `message_too_large`).
    pub limit_mb: u64,
    /// [`REPLY_MARKER`].
    pub reply_marker: String,
    /// The customer's personal tracking link (empty for mails without a ticket).
    pub link: String,
}

/// A rendered mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// The subject line, one line, no control characters.
    pub subject: String,
    /// The plain-text body.
    pub body: String,
}

/// The compiled templates.
pub struct Renderer {
    tera: Tera,
}

impl Renderer {
    /// Compiles the embedded templates and, when given, the overrides under `overrides`.
    pub fn new(overrides: Option<&Path>) -> anyhow::Result<Renderer> {
        let tera = templates::compile(EMBEDDED, overrides, "mail", vec![])?;
        let renderer = Renderer { tera };
        renderer
            .check_all()
            .context("while checking the mail templates with a sample ticket")?;
        Ok(renderer)
    }

    /// Renders `template` in `language` (falls back to `en` for an unknown language).
    pub fn render(
        &self,
        template: Template,
        language: &str,
        context: &MailContext,
    ) -> anyhow::Result<Rendered> {
        let language = if LANGUAGES.contains(&language) {
            language
        } else {
            "en"
        };
        let name = format!("{language}/{}.txt", template.as_str());
        // Fields that can land in the Subject line must be one line, or the rendered
        // `Subject:` line would end early and the rest would spill into the body.
        let mut context = context.clone();
        for field in [
            &mut context.tracking_id,
            &mut context.subject,
            &mut context.customer_name,
            &mut context.customer_email,
            &mut context.recipient_name,
            &mut context.author,
            &mut context.support_name,
            &mut context.link,
        ] {
            *field = one_line(field);
        }
        let tera_context = tera::Context::from_serialize(&context)?;
        let text = self
            .tera
            .render(&name, &tera_context)
            .map_err(|e| anyhow::anyhow!("rendering {name}: {}", templates::error_chain(&e)))?;
        split_subject(&text)
            .with_context(|| format!("template {name} must start with a `Subject:` line"))
    }

    fn check_all(&self) -> anyhow::Result<()> {
        let sample = MailContext {
            tracking_id: "AZA-DMP-AJ8S".into(),
            subject: "Sample".into(),
            status: "new".into(),
            customer_name: "Sample Customer".into(),
            customer_email: "customer@example.com".into(),
            recipient_name: "Sample".into(),
            text: "Sample text".into(),
            author: "Agent".into(),
            support_name: "Support".into(),
            limit_mb: 25,
            reply_marker: REPLY_MARKER.into(),
            link: "http://127.0.0.1:8080/t/AZA-DMP-AJ8S/0123".into(),
        };
        for language in LANGUAGES {
            for template in Template::ALL {
                self.render(template, language, &sample)?;
            }
        }
        Ok(())
    }
}

fn split_subject(text: &str) -> Option<Rendered> {
    let text = text.trim_start_matches('\u{feff}');
    let (first, rest) = text.split_once('\n')?;
    let subject = first.trim_end_matches('\r').strip_prefix("Subject:")?;
    Some(Rendered {
        subject: one_line(subject),
        body: rest.trim_start_matches(['\r', '\n']).to_string(),
    })
}

/// Collapses control characters (CR, LF, tabs…) to single spaces: a header value can never
/// carry a line break, whatever a mail's subject or name contained.
pub fn one_line(text: &str) -> String {
    text.split(|c: char| c.is_control())
        .filter(|s| !s.trim().is_empty())
        .map(str::trim)
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context() -> MailContext {
        MailContext {
            tracking_id: "AZA-DMP-AJ8S".into(),
            subject: "Printer on fire".into(),
            status: "new".into(),
            customer_name: "Olena".into(),
            customer_email: "olena@example.com".into(),
            recipient_name: "Olena".into(),
            text: "It smokes.".into(),
            author: "Anna".into(),
            support_name: "Example Support".into(),
            limit_mb: 25,
            reply_marker: REPLY_MARKER.into(),
            link: "https://help.example.com/t/AZA-DMP-AJ8S/0123abcd".into(),
        }
    }

    #[test]
    fn every_template_renders_in_both_languages_with_the_product_subjects() {
        let renderer = Renderer::new(None).expect("templates compile");
        let expected = [
            (
                Template::TicketReceived,
                "[#AZA-DMP-AJ8S] Ticket received: Printer on fire",
                "[#AZA-DMP-AJ8S] Запит отримано: Printer on fire",
            ),
            (
                Template::StaffReply,
                "[#AZA-DMP-AJ8S] New reply to: Printer on fire",
                "[#AZA-DMP-AJ8S] Нова відповідь на: Printer on fire",
            ),
            (
                Template::TicketClosed,
                "[#AZA-DMP-AJ8S] Ticket closed/resolved",
                "[#AZA-DMP-AJ8S] Запит закрито/вирішено",
            ),
            (
                Template::AgentNewTicket,
                "[#AZA-DMP-AJ8S] New ticket: Printer on fire",
                "[#AZA-DMP-AJ8S] Новий запит: Printer on fire",
            ),
            (
                Template::AgentCustomerReply,
                "[#AZA-DMP-AJ8S] New reply to: Printer on fire",
                "[#AZA-DMP-AJ8S] Нова відповідь на: Printer on fire",
            ),
        ];
        for (template, en, uk) in expected {
            let english = renderer.render(template, "en", &context()).expect("en");
            assert_eq!(english.subject, en);
            assert!(
                english.body.contains("It smokes."),
                "{template:?} en carries the text"
            );
            let ukrainian = renderer.render(template, "uk", &context()).expect("uk");
            assert_eq!(ukrainian.subject, uk);
            assert!(
                ukrainian
                    .body
                    .chars()
                    .any(|c| ('\u{0400}'..='\u{04FF}').contains(&c)),
                "{template:?} uk is Cyrillic"
            );
        }
        let customer = renderer
            .render(Template::TicketReceived, "en", &context())
            .expect("en");
        assert!(customer.body.starts_with(REPLY_MARKER));
        assert!(customer.body.contains("keep [#AZA-DMP-AJ8S]"));
    }

    #[test]
    fn a_subject_can_never_break_the_header_line() {
        let mut hostile = context();
        hostile.subject = "Hi\r\nBcc: victim@example.org\n\tX".into();
        let rendered = Renderer::new(None)
            .expect("templates")
            .render(Template::StaffReply, "en", &hostile)
            .expect("render");
        assert_eq!(
            rendered.subject,
            "[#AZA-DMP-AJ8S] New reply to: Hi Bcc: victim@example.org X"
        );
    }

    #[test]
    fn overrides_replace_one_template_and_broken_ones_name_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("mail/en")).expect("mkdir");
        std::fs::write(
            dir.path().join("mail/en/ticket_received.txt"),
            "Subject: Got it {{ tracking_id }}\n\nThanks!\n",
        )
        .expect("write");
        let renderer = Renderer::new(Some(dir.path())).expect("override compiles");
        let rendered = renderer
            .render(Template::TicketReceived, "en", &context())
            .expect("render");
        assert_eq!(
            rendered,
            Rendered {
                subject: "Got it AZA-DMP-AJ8S".into(),
                body: "Thanks!\n".into()
            }
        );
        let untouched = renderer
            .render(Template::StaffReply, "en", &context())
            .expect("render");
        assert!(untouched.subject.contains("New reply to"));

        std::fs::write(
            dir.path().join("mail/en/staff_reply.txt"),
            "Subject: x\n\n{% if %}\n",
        )
        .expect("write");
        let error = Renderer::new(Some(dir.path()))
            .err()
            .expect("broken override is refused")
            .to_string();
        assert!(
            error.contains("staff_reply.txt") && error.contains("broken"),
            "{error}"
        );
    }
}
