//! Tera templates compiled into the binary with per-file overrides from the config's
//! `templates_dir`: the one mechanism behind the mail templates (`templates_dir/mail/…`) and
//! the page templates (`templates_dir/web/…`). A broken override is an error naming the file
//! and Tera's line and column.

use std::path::Path;

use anyhow::Context;
use tera::Tera;

/// Compiles `embedded` (name, text) pairs, then replaces each one for which
/// `overrides/subdir/name` exists. `autoescape` lists the file suffixes Tera escapes.
pub fn compile(
    embedded: &[(&str, &str)],
    overrides: Option<&Path>,
    subdir: &str,
    autoescape: Vec<&'static str>,
) -> anyhow::Result<Tera> {
    let mut tera = Tera::default();
    tera.autoescape_on(autoescape);
    tera.add_raw_templates(embedded.iter().copied())
        .with_context(|| format!("while compiling the built-in {subdir} templates"))?;
    let Some(dir) = overrides else {
        return Ok(tera);
    };
    for (name, _) in embedded {
        let path = dir.join(subdir).join(name);
        if !path.exists() {
            continue;
        }
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("while reading the template override {}", path.display()))?;
        tera.add_raw_template(name, &text).map_err(|e| {
            anyhow::anyhow!(
                "the template override {} is broken: {}",
                path.display(),
                error_chain(&e)
            )
        })?;
    }
    Ok(tera)
}

/// A Tera error with all its causes (the line and column live in a cause).
pub fn error_chain(error: &tera::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
