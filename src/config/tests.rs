//! Tests of the whole loader: layering, unknown keys, environment, secrets, paths, validation.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::*;

const COMMITTED: &str = include_str!("../../config.toml");
const MINIMAL: &str = "[general]\nsupport_address = \"support@example.com\"\n";

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn load_text(text: &str) -> anyhow::Result<Config> {
    load_str(text, Path::new("/srv/postdesk"), Vec::new())
}

fn load_error(text: &str, vars: &[(&str, &str)]) -> String {
    let result = load_str(text, Path::new("/srv/postdesk"), env(vars));
    format!("{:#}", result.expect_err("should not load"))
}

#[test]
fn committed_config_loads_and_matches_the_product_defaults() {
    let config = load_text(COMMITTED).expect("committed config.toml loads");
    let base = Path::new("/srv/postdesk");
    assert_eq!(config.general.database, base.join("var/postdesk.db"));
    assert_eq!(config.general.secret_file, base.join("var/secret"));
    assert_eq!(config.source.kind, SourceKind::Maildir);
    assert_eq!(config.source.path, base.join("var/inbox"));
    assert_eq!(config.smtp.kind, SmtpKind::File);
    assert_eq!(config.smtp.dir, base.join("var/outbox"));
    assert_eq!(config.web.bind.to_string(), "127.0.0.1:8080");
    assert_eq!(config.general.language, Language::En);
    assert_eq!(
        config.tickets.auto_close_after,
        Duration::from_secs(72 * 3600)
    );
    assert_eq!(config.tickets.close_schedule.as_str(), "0 */5 * * * *");
    assert_eq!(config.agents.len(), 1);
    assert_eq!(config.agents[0].name, "Agent Smith");
    assert_eq!(config.log.format, LogFormat::Text);
}

#[test]
fn defaults_fill_everything_but_the_support_address() {
    let config = load_text(MINIMAL).expect("minimal config loads");
    let committed = load_text(COMMITTED).expect("committed config loads");
    assert_eq!(config.general.database, committed.general.database);
    assert_eq!(config.source.path, committed.source.path);
    assert_eq!(config.smtp.dir, committed.smtp.dir);
    assert_eq!(config.smtp.command, PathBuf::from("/usr/sbin/sendmail"));
    assert_eq!(config.smtp.timeout, Duration::from_secs(30));
    assert_eq!(config.smtp.retry_for, Duration::from_secs(3 * 86_400));
    assert_eq!(config.source.mailbox, "INBOX");
    assert!(config.source.idle);
    assert_eq!(config.web.lookup_failures_before_lock, 5);
    assert_eq!(config.web.lookup_lock, Duration::from_secs(3600));
    assert!(config
        .tickets
        .denied_attachment_extensions
        .contains(&"exe".to_string()));
    assert!(config.agents.is_empty());

    let missing = load_error("", &[]);
    assert!(
        missing.contains("set [general] support_address"),
        "{missing}"
    );
}

#[test]
fn paths_resolve_against_the_config_directory() {
    let text = format!(
        "{MINIMAL}data_dir = \"/var/lib/postdesk\"\ntemplates_dir = \"tpl\"\n[smtp]\ndir = \"out\"\n"
    );
    let config = load_text(&text).expect("loads");
    assert_eq!(config.general.data_dir, PathBuf::from("/var/lib/postdesk"));
    assert_eq!(
        config.general.database,
        PathBuf::from("/var/lib/postdesk/postdesk.db")
    );
    assert_eq!(config.source.path, PathBuf::from("/var/lib/postdesk/inbox"));
    assert_eq!(config.smtp.dir, PathBuf::from("/srv/postdesk/out"));
    assert_eq!(
        config.general.templates_dir,
        Some(PathBuf::from("/srv/postdesk/tpl"))
    );

    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("config.toml");
    std::fs::write(&file, COMMITTED).expect("write config");
    let config = load(&file, Vec::new()).expect("load from a file");
    assert_eq!(config.general.database, dir.path().join("var/postdesk.db"));

    let missing = format!(
        "{:#}",
        load(&dir.path().join("nope.toml"), Vec::new()).expect_err("no file")
    );
    assert!(
        missing.contains("nope.toml") && missing.contains("--config"),
        "{missing}"
    );
}

#[test]
fn unknown_sections_and_keys_are_named() {
    let cases: [(&str, &str); 6] = [
        (
            "[source]\npasword = \"x\"\n",
            "unknown key `pasword` in [source]; did you mean `password`?",
        ),
        (
            "[source]\nzzz = 1\n",
            "unknown key `zzz` in [source]; known keys: kind, path",
        ),
        (
            "[sorce]\nhost = \"x\"\n",
            "unknown section [sorce]; did you mean [source]?",
        ),
        (
            "[database]\npath = \"x\"\n",
            "unknown section [database]; sections are general",
        ),
        (
            "[[agents]]\nemail = \"a@example.com\"\nmail = \"x\"\n",
            "unknown key `mail` in [[agents]]",
        ),
        (
            "[agents]\nemail = \"a@example.com\"\n",
            "[[agents]] block (double brackets)",
        ),
    ];
    for (extra, wanted) in cases {
        let error = load_error(&format!("{MINIMAL}{extra}"), &[]);
        assert!(error.contains(wanted), "{extra}: {error}");
    }
}

#[test]
fn wrong_values_name_their_key() {
    let cases: [(&str, &str); 6] = [
        (
            "[tickets]\nauto_close_after = 72\n",
            "[tickets] auto_close_after: 72 has no unit; add one",
        ),
        (
            "[tickets]\nauto_close_after = \"3 days\"\n",
            "[tickets] auto_close_after: \"3 days\" has an unknown unit",
        ),
        ("[source]\nport = \"imap\"\n", "[source] port: invalid type"),
        (
            "[log]\nformat = \"xml\"\n",
            "[log] format: unknown variant `xml`",
        ),
        (
            "[[agents]]\nemail = \"nobody\"\n",
            "[[agents]] email: \"nobody\" is not an email address",
        ),
        (
            "[web]\nbind = \"localhost\"\n",
            "[web] bind: \"localhost\" is not an IP address and port",
        ),
    ];
    for (extra, wanted) in cases {
        let error = load_error(&format!("{MINIMAL}{extra}"), &[]);
        assert!(error.contains(wanted), "{extra}: {error}");
    }
}

#[test]
fn environment_overrides_the_file() {
    let vars = env(&[
        ("POSTDESK__GENERAL__SUPPORT_NAME", "Help Desk"),
        ("POSTDESK__TICKETS__MAX_ATTACHMENTS", "3"),
        ("POSTDESK__TICKETS__REOPEN_ON_REPLY", "false"),
        ("POSTDESK__TICKETS__AUTO_CLOSE_AFTER", "3d"),
        ("POSTDESK__GENERAL__LANGUAGE", "uk"),
        (
            "POSTDESK__agent_auth__Trusted_Authserv_Ids",
            "[\"mx.example.com\"]",
        ),
        ("POSTDESK__SMTP__PASSWORD", "0123"),
        ("POSTDESK__SMTP__USERNAME", "\"12345\""),
        ("POSTDESK_CONFIG", "/etc/postdesk/config.toml"),
        ("PATH", "/usr/bin"),
    ]);
    let config = load_str(COMMITTED, Path::new("/srv"), vars).expect("loads with env");
    assert_eq!(config.general.support_name, "Help Desk");
    assert_eq!(config.tickets.max_attachments, 3);
    assert!(!config.tickets.reopen_on_reply);
    assert_eq!(
        config.tickets.auto_close_after,
        Duration::from_secs(3 * 86_400)
    );
    assert_eq!(config.general.language.as_str(), "uk");
    assert_eq!(
        config.agent_auth.trusted_authserv_ids,
        vec!["mx.example.com"]
    );
    assert_eq!(
        config.smtp.password.as_ref().map(Secret::expose),
        Some("0123")
    );
    assert_eq!(config.smtp.username.as_deref(), Some("12345"));
}

#[test]
fn bad_environment_variables_are_named() {
    let cases: [(&str, &str, &str); 6] = [
        (
            "POSTDESK__SOURCE__PASWORD",
            "x",
            "POSTDESK__SOURCE__PASWORD: unknown key `pasword` in [source]",
        ),
        (
            "POSTDESK__SORCE__HOST",
            "x",
            "POSTDESK__SORCE__HOST: unknown section [sorce]",
        ),
        (
            "POSTDESK__AGENTS__EMAIL",
            "a@b.c",
            "[[agents]] cannot be set from the environment",
        ),
        ("POSTDESK__PASSWORD", "x", "expected POSTDESK__SECTION__KEY"),
        (
            "POSTDESK__TICKETS__AUTO_CLOSE_AFTER",
            "72",
            "72 has no unit",
        ),
        (
            "POSTDESK__GENERAL__SUPPORT_NAME",
            "2024",
            "quote text that looks like a number, POSTDESK__GENERAL__SUPPORT_NAME='\"2024\"'",
        ),
    ];
    for (name, value, wanted) in cases {
        let error = load_error(MINIMAL, &[(name, value)]);
        assert!(error.contains(wanted), "{name}: {error}");
    }
}

#[test]
fn password_file_is_read_and_trimmed() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("imap-password"), "s3cret pass\r\n").expect("write");
    let text = format!(
        "{MINIMAL}[source]\nkind = \"imap\"\nhost = \"imap.example.com\"\n\
         username = \"support@example.com\"\npassword_file = \"imap-password\"\n"
    );
    let config = load_str(&text, dir.path(), Vec::new()).expect("loads");
    let password = config.source.password.as_ref().map(Secret::expose);
    assert_eq!(password, Some("s3cret pass"));

    let missing = load_str(&text, Path::new("/nonexistent"), Vec::new()).expect_err("no file");
    let missing = format!("{missing:#}");
    assert!(
        missing.contains("/nonexistent/imap-password") && missing.contains("permissions"),
        "{missing}"
    );

    let both = vec![("POSTDESK__SOURCE__PASSWORD".to_string(), "x".to_string())];
    let both = format!("{:#}", load_str(&text, dir.path(), both).expect_err("both"));
    assert!(both.contains("both password and password_file"), "{both}");
}

#[test]
fn debug_output_never_shows_a_password() {
    let text = format!(
        "{MINIMAL}[source]\nkind = \"imap\"\nhost = \"imap.example.com\"\n\
         username = \"support@example.com\"\npassword = \"hunter2-secret\"\n\
         [smtp]\nkind = \"smtp\"\nhost = \"smtp.example.com\"\nusername = \"u\"\npassword = \"other-secret\"\n"
    );
    let config = load_text(&text).expect("loads");
    let debug = format!("{config:?} {config:#?}");
    assert!(
        !debug.contains("hunter2") && !debug.contains("other-secret"),
        "{debug}"
    );
    assert!(debug.contains("<redacted>"));
    assert_eq!(
        config.source.password.as_ref().map(ToString::to_string),
        Some("<redacted>".into())
    );
}

#[test]
fn validation_names_the_fix() {
    let imap = "[source]\nkind = \"imap\"\nusername = \"support@example.com\"\npassword = \"p\"\n";
    let cases: Vec<(String, &str)> = vec![
        (imap.to_string(), "set [source] host = \"imap.example.com\""),
        (
            "[source]\nkind = \"imap\"\nhost = \"imap.example.com\"\n".to_string(),
            "2 problems",
        ),
        (
            format!("{imap}host = \"imap.example.com\"\ntls = \"none\"\n"),
            "tls = \"none\" sends the password in clear text to imap.example.com; use it only with 127.0.0.1 or set tls = \"starttls\"",
        ),
        (
            "[smtp]\nkind = \"smtp\"\nhost = \"10.0.0.1\"\ntls = \"none\"\n".to_string(),
            "[smtp] tls = \"none\" sends the password in clear text",
        ),
        ("[smtp]\nkind = \"smtp\"\n".to_string(), "set [smtp] host = \"smtp.example.com\""),
        ("[smtp]\nkind = \"smtp\"\nhost = \"h\"\nusername = \"u\"\n".to_string(), "has a username but no password"),
        ("[tickets]\nclose_schedule = \"every 5 minutes\"\n".to_string(), "e.g. \"0 */5 * * * *\""),
        ("[tickets]\nclose_schedule = \"*/5 * * * *\"\n".to_string(), "seconds first: write \"0 */5 * * * *\""),
        ("[tickets]\nclose_schedule = \"0 */70 * * * *\"\n".to_string(), "(Minutes must be between 1 and 59"),
        ("[tickets]\nmax_message_bytes = 0\n".to_string(), "max_message_bytes must be more than 0"),
        ("[web]\ntrusted_proxies = [\"10.0.0.0/33\"]\n".to_string(), "not an IP address or CIDR range"),
        ("[agent_auth]\nrequire_authentication = true\n".to_string(), "trusted_authserv_ids = [\"mx.example.com\"]"),
        ("[[agents]]\nemail = \"Support@Example.com\"\n".to_string(), "is postdesk's own address"),
        (
            "[[agents]]\nemail = \"a@example.com\"\n[[agents]]\nemail = \"a@example.com\"\n".to_string(),
            "listed twice",
        ),
    ];
    for (extra, wanted) in cases {
        let error = load_error(&format!("{MINIMAL}{extra}"), &[]);
        assert!(error.contains(wanted), "{extra}: {error}");
    }
    let base_url = load_error(
        "[general]\nsupport_address = \"s@example.com\"\nbase_url = \"example.com\"\n",
        &[],
    );
    assert!(
        base_url.contains("must start with http:// or https://"),
        "{base_url}"
    );
}

#[test]
fn plaintext_is_fine_on_loopback() {
    for host in ["127.0.0.1", "127.1.2.3", "localhost", "::1", "[::1]"] {
        let text = format!(
            "{MINIMAL}[source]\nkind = \"imap\"\nhost = \"{host}\"\ntls = \"none\"\n\
             username = \"support@example.com\"\npassword = \"p\"\n"
        );
        let config = load_text(&text).unwrap_or_else(|e| panic!("{host}: {e:#}"));
        assert_eq!(config.source.effective_port(), 143);
    }
}

#[test]
fn addresses_agents_and_normalisation() {
    let text = format!(
        "{MINIMAL}base_url = \"https://help.example.com/\"\n\
         [source]\nusername = \"Inbox@Example.com\"\n\
         [tickets]\ndenied_attachment_extensions = [\".EXE\", \"js\"]\n\
         [[agents]]\nemail = \"Ann@Example.com\"\nname = \"Ann\"\n[[agents]]\nemail = \"bob@example.com\"\n"
    );
    let config = load_text(&text).expect("loads");
    let own: Vec<String> = config
        .own_addresses()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(own, vec!["support@example.com", "inbox@example.com"]);
    let ann = EmailAddress::parse("ann@example.com").expect("address");
    assert_eq!(config.agent(&ann).map(|a| a.name.as_str()), Some("Ann"));
    let bob = EmailAddress::parse("BOB@example.com").expect("address");
    assert_eq!(config.agent(&bob).map(|a| a.name.as_str()), Some("bob"));
    let nobody = EmailAddress::parse("nobody@example.com").expect("address");
    assert!(config.agent(&nobody).is_none());
    assert_eq!(config.general.base_url, "https://help.example.com");
    assert_eq!(
        config.tickets.denied_attachment_extensions,
        vec!["exe", "js"]
    );
    assert_eq!(Language::parse("UK"), Some(Language::Uk));
}
