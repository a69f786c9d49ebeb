//! The page templates: Tera HTML files compiled in from `templates/web/`, each overridable by
//! a file of the same path under the config's `templates_dir/web/`.
//!
//! Invariants: template names end in `.html`, so Tera escapes every value; the only value
//! marked `safe` is a message's text, which [`super::text::linkify`] escaped. Templates are
//! parsed and test-rendered once at start-up, so a broken override stops start-up with its
//! file and line.

use std::path::Path;

use anyhow::Context;
use serde::Serialize;
use tera::Tera;

use super::view::TicketView;
use crate::config::Language;
use crate::templates;

macro_rules! embedded {
    ($($name:literal),* $(,)?) => {
        &[$(($name, include_str!(concat!("../../templates/web/", $name)))),*]
    };
}

const EMBEDDED: &[(&str, &str)] = embedded![
    "base.html",
    "en/lookup.html",
    "en/ticket.html",
    "uk/lookup.html",
    "uk/ticket.html",
];

/// Why the lookup form is shown again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LookupNotice {
    /// A plain form.
    None,
    /// The ID, the address or the link did not match (one answer for all three).
    NotFound,
    /// Too many failed lookups from this client; minutes left.
    Locked(i64),
}

#[derive(Serialize)]
struct LanguageLink {
    code: &'static str,
    name: &'static str,
    current: bool,
}

#[derive(Serialize)]
struct Common<'a, T: Serialize> {
    lang: &'static str,
    support_name: &'a str,
    languages: [LanguageLink; 2],
    #[serde(flatten)]
    page: T,
}

#[derive(Serialize)]
struct LookupPage {
    error: &'static str,
    retry_minutes: i64,
}

#[derive(Serialize)]
struct TicketPage<'a> {
    ticket: &'a TicketView,
}

/// The compiled page templates.
pub struct Pages {
    tera: Tera,
    support_name: String,
}

impl Pages {
    /// Compiles the embedded templates and the overrides under `overrides/web/`, if any.
    pub fn new(overrides: Option<&Path>, support_name: &str) -> anyhow::Result<Pages> {
        let tera = templates::compile(EMBEDDED, overrides, "web", vec![".html"])?;
        let pages = Pages {
            tera,
            support_name: support_name.to_string(),
        };
        for lang in [Language::En, Language::Uk] {
            pages
                .lookup(lang, LookupNotice::Locked(60))
                .context("while checking the page templates")?;
        }
        Ok(pages)
    }

    fn render<T: Serialize>(&self, name: &str, lang: Language, page: T) -> anyhow::Result<String> {
        let common = Common {
            lang: lang.as_str(),
            support_name: &self.support_name,
            languages: [
                LanguageLink {
                    code: "en",
                    name: "English",
                    current: lang == Language::En,
                },
                LanguageLink {
                    code: "uk",
                    name: "Українська",
                    current: lang == Language::Uk,
                },
            ],
            page,
        };
        let context = tera::Context::from_serialize(&common)?;
        let name = format!("{}/{name}", lang.as_str());
        self.tera
            .render(&name, &context)
            .map_err(|e| anyhow::anyhow!("rendering {name}: {}", templates::error_chain(&e)))
    }

    /// The lookup form, with a notice.
    pub fn lookup(&self, lang: Language, notice: LookupNotice) -> anyhow::Result<String> {
        let (error, retry_minutes) = match notice {
            LookupNotice::None => ("", 0),
            LookupNotice::NotFound => ("not_found", 0),
            LookupNotice::Locked(minutes) => ("locked", minutes),
        };
        self.render(
            "lookup.html",
            lang,
            LookupPage {
                error,
                retry_minutes,
            },
        )
    }

    /// A ticket.
    pub fn ticket(&self, lang: Language, ticket: &TicketView) -> anyhow::Result<String> {
        self.render("ticket.html", lang, TicketPage { ticket })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_replace_a_page_and_broken_ones_name_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("web/en")).expect("mkdir");
        std::fs::write(
            dir.path().join("web/en/lookup.html"),
            "{% extends \"base.html\" %}{% block content %}Our own form {{ error }}{% endblock content %}",
        )
        .expect("write");
        let pages = Pages::new(Some(dir.path()), "Help <Desk>").expect("override compiles");
        let html = pages
            .lookup(Language::En, LookupNotice::NotFound)
            .expect("render");
        assert!(html.contains("Our own form not_found"), "{html}");
        assert!(html.contains("Help &lt;Desk&gt;"), "escaped: {html}");
        let uk = pages
            .lookup(Language::Uk, LookupNotice::None)
            .expect("render");
        assert!(uk.contains("lang=\"uk\""));

        std::fs::create_dir_all(dir.path().join("web/uk")).expect("mkdir");
        std::fs::write(dir.path().join("web/uk/ticket.html"), "{% if %}").expect("write");
        let error = Pages::new(Some(dir.path()), "Support")
            .err()
            .expect("refused")
            .to_string();
        assert!(
            error.contains("uk/ticket.html") && error.contains("broken"),
            "{error}"
        );
    }
}
