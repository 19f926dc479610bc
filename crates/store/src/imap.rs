//! IMAP polling: a mailbox's `imap` settings (where to fetch its mail from
//! and what to do with a message once it is stored) and the poll state kept
//! per (mailbox, folder): the folder's UIDVALIDITY, the last UID taken, and
//! the health of the last polls.

use crate::error::Result;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tierdesk_core::Timestamp;
use tierdesk_core::validate::ConfigError;

/// How the poller talks to its IMAP server.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImapTls {
    /// Plain IMAP (a server on the same host).
    None,
    /// STARTTLS, required (usually port 143).
    Starttls,
    /// TLS from the start (usually port 993).
    #[default]
    Tls,
}

/// What happens to a message on the server once it is committed here.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum ImapAfter {
    /// Flag it `\Seen` and leave it (only unseen messages are fetched).
    #[default]
    Seen,
    /// Move it to this folder (MOVE, or COPY + `\Deleted` + EXPUNGE).
    Move(String),
    /// Delete it (`\Deleted` + EXPUNGE).
    Delete,
}

impl TryFrom<String> for ImapAfter {
    type Error = String;

    fn try_from(raw: String) -> std::result::Result<Self, String> {
        match raw.as_str() {
            "seen" => Ok(ImapAfter::Seen),
            "delete" => Ok(ImapAfter::Delete),
            other => match other.strip_prefix("move:") {
                Some(folder) => Ok(ImapAfter::Move(folder.to_string())),
                None => Err(format!(
                    "unknown value {other:?}: expected \"seen\", \"move:FOLDER\" or \"delete\""
                )),
            },
        }
    }
}

impl From<ImapAfter> for String {
    fn from(after: ImapAfter) -> String {
        match after {
            ImapAfter::Seen => "seen".into(),
            ImapAfter::Move(folder) => format!("move:{folder}"),
            ImapAfter::Delete => "delete".into(),
        }
    }
}

/// The shortest poll interval, in seconds.
pub const MIN_POLL_SECONDS: u32 = 5;
/// The longest: IMAP servers drop idle connections after 30 minutes.
pub const MAX_POLL_SECONDS: u32 = 29 * 60;

fn default_folders() -> Vec<String> {
    vec!["INBOX".into()]
}

fn default_poll() -> u32 {
    60
}

fn default_true() -> bool {
    true
}

/// A mailbox's `imap` section: the account its mail is fetched from.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImapSettings {
    pub host: String,
    /// 993 for `tls`, 143 otherwise, when not given (filled in by validation).
    #[serde(default)]
    pub port: Option<u16>,
    #[serde(default)]
    pub tls: ImapTls,
    /// A PEM file of CA certificates to trust besides the Mozilla roots
    /// (an internal CA), for `tls` and `starttls`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<String>,
    pub username: String,
    /// Never shown back by the API (`imap.password_set`).
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default = "default_folders")]
    pub folders: Vec<String>,
    #[serde(default)]
    pub after: ImapAfter,
    #[serde(default = "default_poll")]
    pub poll_interval_seconds: u32,
    /// Wait with IMAP IDLE when the server offers it (mail arrives at once);
    /// otherwise poll every `poll_interval_seconds`.
    #[serde(default = "default_true")]
    pub idle: bool,
}

impl std::fmt::Debug for ImapSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImapSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("ca_file", &self.ca_file)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("folders", &self.folders)
            .field("after", &self.after)
            .field("poll_interval_seconds", &self.poll_interval_seconds)
            .field("idle", &self.idle)
            .finish()
    }
}

/// A folder name the poller can send: not empty, one line, no quotes or
/// backslashes (async-imap quotes names, and refuses those).
fn folder_problem(name: &str) -> Option<&'static str> {
    if name.trim().is_empty() {
        Some("must not be empty")
    } else if name
        .chars()
        .any(|c| c.is_control() || c == '"' || c == '\\')
    {
        Some("must not contain control characters, quotes or backslashes")
    } else if name.len() > 500 {
        Some("must be at most 500 bytes")
    } else {
        None
    }
}

impl ImapSettings {
    /// The port to connect to.
    pub fn port(&self) -> u16 {
        self.port.unwrap_or(match self.tls {
            ImapTls::Tls => 993,
            ImapTls::None | ImapTls::Starttls => 143,
        })
    }

    /// Fills in the default port and checks every field; each problem is
    /// pushed with its path under `imap.`.
    pub fn validate(&mut self, problems: &mut Vec<ConfigError>) {
        let mut problem = |path: &str, message: &str| {
            problems.push(ConfigError::new(format!("imap.{path}"), message));
        };
        self.host = self.host.trim().to_string();
        if self.host.is_empty() || self.host.chars().any(|c| c.is_control() || c == ' ') {
            problem("host", "must be a host name or address");
        }
        if self.port == Some(0) {
            problem("port", "must not be 0");
        }
        self.port = Some(self.port());
        if let Some(file) = &self.ca_file
            && (file.trim().is_empty() || file.chars().any(char::is_control))
        {
            problem("ca_file", "must be the path of a PEM file");
        }
        if self.username.trim().is_empty() || self.username.chars().any(char::is_control) {
            problem(
                "username",
                "must not be empty or contain control characters",
            );
        }
        if let Some(password) = &self.password
            && password.chars().any(char::is_control)
        {
            problem("password", "must not contain control characters");
        }
        if self.folders.is_empty() {
            problem("folders", "name at least one folder");
        }
        for (i, folder) in self.folders.iter().enumerate() {
            if let Some(message) = folder_problem(folder) {
                problem(&format!("folders[{i}]"), message);
            } else if self.folders[..i].contains(folder) {
                problem(&format!("folders[{i}]"), "is listed twice");
            }
        }
        if let ImapAfter::Move(target) = &self.after {
            if let Some(message) = folder_problem(target) {
                problem("after", &format!("the folder to move to {message}"));
            } else if self.folders.contains(target) {
                problem(
                    "after",
                    "the folder to move to must not be one that is polled",
                );
            }
        }
        if !(MIN_POLL_SECONDS..=MAX_POLL_SECONDS).contains(&self.poll_interval_seconds) {
            problem(
                "poll_interval_seconds",
                &format!("must be between {MIN_POLL_SECONDS} and {MAX_POLL_SECONDS}"),
            );
        }
    }
}

/// The poll state of one folder of one mailbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImapFolderState {
    pub mailbox_id: i64,
    pub folder: String,
    /// The folder's UIDVALIDITY when `last_uid` was taken; when the server
    /// reports another, the UIDs start over.
    pub uidvalidity: Option<i64>,
    /// Every message up to this UID has been taken (or skipped).
    pub last_uid: i64,
    pub last_poll_at: Option<Timestamp>,
    pub last_success_at: Option<Timestamp>,
    /// The last problem (a failed poll, or a message that was skipped), kept
    /// until another one replaces it.
    pub last_error: Option<String>,
    pub last_error_at: Option<Timestamp>,
    /// Failed polls in a row; 0 when the last poll worked.
    pub consecutive_failures: i64,
}

impl ImapFolderState {
    /// The state of a folder never polled.
    pub fn new(mailbox_id: i64, folder: &str) -> Self {
        ImapFolderState {
            mailbox_id,
            folder: folder.to_string(),
            uidvalidity: None,
            last_uid: 0,
            last_poll_at: None,
            last_success_at: None,
            last_error: None,
            last_error_at: None,
            consecutive_failures: 0,
        }
    }

    /// Records a problem (at most 2,000 characters of it).
    pub fn record_error(&mut self, error: &str, now: Timestamp) {
        self.last_error = Some(error.chars().take(2000).collect());
        self.last_error_at = Some(now);
    }
}

/// Where the IMAP pollers keep their place.
#[async_trait]
pub trait ImapStore: Send + Sync + 'static {
    /// The poll state of every folder of `mailbox` ever polled, by folder name.
    async fn imap_folders(&self, mailbox: i64) -> Result<Vec<ImapFolderState>>;
    /// Saves one folder's state, replacing what was there. A mailbox that
    /// no longer exists is `NotFound`.
    async fn save_imap_folder(&self, state: &ImapFolderState) -> Result<()>;
    /// Whether `mailbox` already received a message with exactly these
    /// bytes (by SHA-256): the poller takes a message only once even when
    /// it has no Message-ID and is fetched again.
    async fn inbound_raw_seen(&self, mailbox: i64, sha256: &str) -> Result<bool>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(json: serde_json::Value) -> std::result::Result<ImapSettings, String> {
        serde_json::from_value(json).map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_fill_in_and_after_reads_its_three_forms() {
        let mut s = settings(serde_json::json!({"host": "imap.example.com", "username": "u"}))
            .unwrap_or_else(|e| panic!("{e}"));
        let mut problems = Vec::new();
        s.validate(&mut problems);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(s.port, Some(993));
        assert_eq!(s.folders, vec!["INBOX".to_string()]);
        assert_eq!(s.after, ImapAfter::Seen);
        assert_eq!(s.poll_interval_seconds, 60);
        assert!(s.idle);
        let plain = settings(serde_json::json!({"host": "h", "username": "u", "tls": "starttls"}))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(plain.port(), 143);
        for (raw, want) in [
            ("seen", ImapAfter::Seen),
            ("delete", ImapAfter::Delete),
            ("move:Archive/Done", ImapAfter::Move("Archive/Done".into())),
        ] {
            let s = settings(serde_json::json!({"host": "h", "username": "u", "after": raw}))
                .unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(s.after, want);
            let back = serde_json::to_value(&s).unwrap_or_default();
            assert_eq!(back["after"], raw);
        }
        let err = settings(serde_json::json!({"host": "h", "username": "u", "after": "archive"}))
            .err()
            .unwrap_or_default();
        assert!(err.contains("move:FOLDER"), "{err}");
    }

    #[test]
    fn every_problem_is_named_with_its_path() {
        let mut s = settings(serde_json::json!({
            "host": " ", "port": 0, "username": "", "folders": ["INBOX", "", "INBOX", "a\"b"],
            "after": "move:INBOX", "poll_interval_seconds": 2,
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        let mut problems = Vec::new();
        s.validate(&mut problems);
        let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "imap.host",
                "imap.port",
                "imap.username",
                "imap.folders[1]",
                "imap.folders[2]",
                "imap.folders[3]",
                "imap.after",
                "imap.poll_interval_seconds"
            ]
        );
    }

    #[test]
    fn the_password_never_shows_in_debug() {
        let s = settings(
            serde_json::json!({"host": "h", "username": "u", "password": "hunter2-secret"}),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let shown = format!("{s:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
    }
}
