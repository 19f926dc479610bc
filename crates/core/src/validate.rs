//! Field validation shared by every entry point (API, mail, CLI, import).
//! Each error names the problem in words a user can act on.

use thiserror::Error;

pub const SUBJECT_MAX_CHARS: usize = 250;
pub const BODY_MAX_CHARS: usize = 200_000;
pub const NAME_MAX_CHARS: usize = 200;
pub const EMAIL_MAX_CHARS: usize = 254;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FieldError {
    #[error("must not be empty")]
    Empty,
    #[error("must be at most {0} characters")]
    TooLong(usize),
    #[error("is not a valid email address")]
    InvalidEmail,
    #[error("must not contain control characters")]
    ControlChars,
    #[error("{0}")]
    Invalid(String),
}

/// A problem in a piece of admin-edited configuration (calendar, SLA policy,
/// runbook, escalation template), and the path to it, e.g. `hours.mon[1]`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, Error)]
#[error("{path}: {message}")]
pub struct ConfigError {
    pub path: String,
    pub message: String,
}

impl ConfigError {
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
        }
    }
}

/// Checks a display name of configuration: 1–200 visible characters on one line.
pub fn config_name(errors: &mut Vec<ConfigError>, path: &str, raw: &str) {
    if let Err(e) = single_line(raw, NAME_MAX_CHARS) {
        errors.push(ConfigError::new(path, e.to_string()));
    }
}

/// Trims and checks a one-line text such as a subject or a name.
pub fn single_line(raw: &str, max: usize) -> Result<String, FieldError> {
    let value = raw.trim();
    if value.is_empty() {
        return Err(FieldError::Empty);
    }
    if value.chars().count() > max {
        return Err(FieldError::TooLong(max));
    }
    if value.chars().any(char::is_control) {
        return Err(FieldError::ControlChars);
    }
    Ok(value.to_string())
}

/// A message body: multi-line, must have visible content, bounded length.
/// The text is kept as written (only a trailing newline run is dropped).
pub fn body(raw: &str) -> Result<String, FieldError> {
    if raw.trim().is_empty() {
        return Err(FieldError::Empty);
    }
    if raw.chars().count() > BODY_MAX_CHARS {
        return Err(FieldError::TooLong(BODY_MAX_CHARS));
    }
    if raw
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Err(FieldError::ControlChars);
    }
    Ok(raw.trim_end_matches(['\n', '\r']).to_string())
}

/// Normalises an email address to lowercase and checks its shape. Deliberately
/// permissive about the local part (real mailboxes are strange) but strict
/// about what would make it unroutable.
pub fn email(raw: &str) -> Result<String, FieldError> {
    let value = raw.trim().to_lowercase();
    if value.is_empty() {
        return Err(FieldError::Empty);
    }
    if value.chars().count() > EMAIL_MAX_CHARS {
        return Err(FieldError::TooLong(EMAIL_MAX_CHARS));
    }
    let Some((local, domain)) = value.rsplit_once('@') else {
        return Err(FieldError::InvalidEmail);
    };
    let domain_ok = !domain.is_empty()
        && !domain.starts_with(['.', '-'])
        && !domain.ends_with(['.', '-'])
        && !domain.contains("..")
        && domain
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '.' | '-'));
    let local_ok = !local.is_empty()
        && !local.contains('@')
        && !local
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | ',' | ';'));
    if !(domain_ok && local_ok) {
        return Err(FieldError::InvalidEmail);
    }
    Ok(value)
}

/// The domain part of an already validated address.
pub fn email_domain(email: &str) -> &str {
    email.rsplit_once('@').map_or("", |(_, d)| d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        assert_eq!(email(" Ann@Example.COM "), Ok("ann@example.com".into()));
        assert_eq!(
            email("a.b+tag@sub.example.org"),
            Ok("a.b+tag@sub.example.org".into())
        );
        assert_eq!(email("root@localhost"), Ok("root@localhost".into()));
        for bad in [
            "",
            "plain",
            "@example.com",
            "a@",
            "a@@b.com",
            "a b@c.com",
            "a@b..com",
            "a@.b.com",
            "<a@b.com>",
            "a@b.com,c@d.com",
        ] {
            assert!(email(bad).is_err(), "{bad:?} should be refused");
        }
        assert_eq!(
            email(&format!("{}@x.io", "a".repeat(260))),
            Err(FieldError::TooLong(EMAIL_MAX_CHARS))
        );
        assert_eq!(email_domain("ann@example.com"), "example.com");
    }

    #[test]
    fn subjects_and_bodies() {
        assert_eq!(single_line("  VPN drops  ", 250), Ok("VPN drops".into()));
        assert_eq!(single_line(" ", 250), Err(FieldError::Empty));
        assert_eq!(single_line("a\u{7}b", 250), Err(FieldError::ControlChars));
        assert_eq!(
            single_line(&"x".repeat(251), 250),
            Err(FieldError::TooLong(250))
        );
        assert_eq!(
            body("line one\nline two\n\n"),
            Ok("line one\nline two".into())
        );
        assert_eq!(body("\n \t"), Err(FieldError::Empty));
        assert_eq!(body("nul\u{0}byte"), Err(FieldError::ControlChars));
        assert!(body(&"y".repeat(BODY_MAX_CHARS + 1)).is_err());
    }
}
