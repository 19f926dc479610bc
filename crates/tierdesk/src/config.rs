//! Configuration: defaults, then a TOML file, then `TIERDESK_*` environment
//! variables, then command-line flags, each overriding the one before.

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address the web UI and API listen on.
    pub bind: String,
    /// Where the embedded database and files live.
    pub data_dir: PathBuf,
    /// `sqlite://PATH` or `postgres://…`; empty means SQLite in `data_dir`.
    pub database: String,
    /// The public address (e.g. `https://help.example.com`); `https` makes cookies Secure.
    pub public_url: String,
    /// `full` fsyncs every commit (survives power loss); `normal` survives process crashes only.
    pub durability: String,
    pub session_ttl_hours: i64,
    pub max_body_bytes: usize,
    pub login_attempts_per_minute: u32,
    /// Per client address, for everyone but signed-in agents; 0 is no limit.
    /// Answer-bot questions (API, help center, chat widget).
    pub bot_questions_per_minute: u32,
    /// Knowledge-base searches and "was this helpful?" votes.
    pub kb_searches_per_minute: u32,
    /// Hand-overs from the answer bot to a person (each opens a ticket).
    pub handovers_per_hour: u32,
    /// `text` or `json` log lines.
    pub log_format: String,
    /// Background jobs run at once by this instance.
    pub job_slots: usize,
    /// How long a claimed job is reserved for this instance without renewal;
    /// after a crash, its jobs run elsewhere once this has passed.
    pub job_lease_seconds: u64,
    /// Longest pause between looks at the job queue when nothing woke the worker.
    pub job_poll_seconds: u64,
    /// Finished jobs are deleted after this many days (dead ones are kept).
    pub job_retention_days: u64,
    /// The answer bot's confidence threshold (0–1): below it, it hands the
    /// question over to a person.
    pub answer_threshold: f32,
    /// An OpenAI-compatible API base (`http://host:port/v1`) that words the
    /// bot's confident answers from its passages; empty: extractive only.
    pub answer_llm_url: String,
    pub answer_llm_model: String,
    /// Bearer token for the endpoint, if it wants one.
    pub answer_llm_key: String,
    /// Past this, the extractive answer is given instead.
    pub answer_llm_timeout_ms: u64,
    /// The built-in SMTP intake.
    pub smtp: SmtpIntake,
    /// Mailboxes kept in step with this file at start (matched by address).
    pub mailboxes: Vec<tierdesk_store::mail::MailboxSpec>,
}

/// `[smtp]`: the built-in SMTP listener MTAs deliver customer mail to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SmtpIntake {
    /// Address to listen on, e.g. "0.0.0.0:25"; empty turns the listener off.
    pub listen: String,
    /// Name in the greeting and `Received:`; empty: the host of `public_url`, or "localhost".
    pub hostname: String,
    pub max_message_bytes: usize,
    pub max_recipients: usize,
    pub idle_timeout_seconds: u64,
    pub max_connections: usize,
    /// PEM certificate chain and key; both set offers STARTTLS.
    pub tls_cert: String,
    pub tls_key: String,
}

impl Default for SmtpIntake {
    fn default() -> Self {
        SmtpIntake {
            listen: String::new(),
            hostname: String::new(),
            max_message_bytes: 25 * 1024 * 1024,
            max_recipients: 50,
            idle_timeout_seconds: 300,
            max_connections: 256,
            tls_cert: String::new(),
            tls_key: String::new(),
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        let limits = tierdesk_server::PublicLimitConfig::default();
        Config {
            bind: "127.0.0.1:8080".into(),
            data_dir: PathBuf::from("./tierdesk-data"),
            database: String::new(),
            public_url: String::new(),
            durability: "full".into(),
            session_ttl_hours: 12,
            max_body_bytes: 1024 * 1024,
            login_attempts_per_minute: 10,
            bot_questions_per_minute: limits.questions_per_minute,
            kb_searches_per_minute: limits.searches_per_minute,
            handovers_per_hour: limits.handovers_per_hour,
            log_format: "text".into(),
            job_slots: 64,
            job_lease_seconds: 30,
            job_poll_seconds: 5,
            job_retention_days: 7,
            answer_threshold: tierdesk_kb::AnswerOptions::default().threshold,
            answer_llm_url: String::new(),
            answer_llm_model: String::new(),
            answer_llm_key: String::new(),
            answer_llm_timeout_ms: 5000,
            smtp: SmtpIntake::default(),
            mailboxes: Vec::new(),
        }
    }
}

/// Hides the password of a database URL in logs and `Debug` output.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("bind", &self.bind)
            .field("data_dir", &self.data_dir)
            .field("database", &redact_url(&self.database))
            .field("public_url", &self.public_url)
            .field("durability", &self.durability)
            .field("session_ttl_hours", &self.session_ttl_hours)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("login_attempts_per_minute", &self.login_attempts_per_minute)
            .field("bot_questions_per_minute", &self.bot_questions_per_minute)
            .field("kb_searches_per_minute", &self.kb_searches_per_minute)
            .field("handovers_per_hour", &self.handovers_per_hour)
            .field("log_format", &self.log_format)
            .field("job_slots", &self.job_slots)
            .field("job_lease_seconds", &self.job_lease_seconds)
            .field("job_poll_seconds", &self.job_poll_seconds)
            .field("job_retention_days", &self.job_retention_days)
            .field("answer_threshold", &self.answer_threshold)
            .field("answer_llm_url", &self.answer_llm_url)
            .field("answer_llm_model", &self.answer_llm_model)
            .field(
                "answer_llm_key",
                &(if self.answer_llm_key.is_empty() {
                    ""
                } else {
                    "***"
                }),
            )
            .field("answer_llm_timeout_ms", &self.answer_llm_timeout_ms)
            .field("smtp", &self.smtp)
            .field("mailboxes", &self.mailboxes)
            .finish()
    }
}

impl Config {
    /// Loads the file (when given, or `./tierdesk.toml` when present) and the environment.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Config> {
        Self::load_from(file, |key| std::env::var(key).ok())
    }

    pub fn load_from(
        file: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
    ) -> anyhow::Result<Config> {
        let implicit = PathBuf::from("tierdesk.toml");
        let path = file
            .map(Path::to_path_buf)
            .or_else(|| env("TIERDESK_CONFIG").map(PathBuf::from))
            .or_else(|| implicit.exists().then_some(implicit));
        let mut config = match &path {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read config file {}", path.display()))?;
                toml::from_str(&text)
                    .with_context(|| format!("invalid config file {}", path.display()))?
            }
            None => Config::default(),
        };
        config.apply_env(env)?;
        config.validate()?;
        Ok(config)
    }

    fn apply_env(&mut self, env: impl Fn(&str) -> Option<String>) -> anyhow::Result<()> {
        fn parse<T: std::str::FromStr>(key: &str, value: &str) -> anyhow::Result<T> {
            value
                .trim()
                .parse()
                .map_err(|_| anyhow::anyhow!("{key}={value:?} is not a valid value"))
        }
        if let Some(v) = env("TIERDESK_BIND") {
            self.bind = v;
        }
        if let Some(v) = env("TIERDESK_DATA_DIR") {
            self.data_dir = PathBuf::from(v);
        }
        if let Some(v) = env("TIERDESK_DATABASE") {
            self.database = v;
        }
        if let Some(v) = env("TIERDESK_PUBLIC_URL") {
            self.public_url = v;
        }
        if let Some(v) = env("TIERDESK_DURABILITY") {
            self.durability = v;
        }
        if let Some(v) = env("TIERDESK_SESSION_TTL_HOURS") {
            self.session_ttl_hours = parse("TIERDESK_SESSION_TTL_HOURS", &v)?;
        }
        if let Some(v) = env("TIERDESK_MAX_BODY_BYTES") {
            self.max_body_bytes = parse("TIERDESK_MAX_BODY_BYTES", &v)?;
        }
        if let Some(v) = env("TIERDESK_LOGIN_ATTEMPTS_PER_MINUTE") {
            self.login_attempts_per_minute = parse("TIERDESK_LOGIN_ATTEMPTS_PER_MINUTE", &v)?;
        }
        if let Some(v) = env("TIERDESK_BOT_QUESTIONS_PER_MINUTE") {
            self.bot_questions_per_minute = parse("TIERDESK_BOT_QUESTIONS_PER_MINUTE", &v)?;
        }
        if let Some(v) = env("TIERDESK_KB_SEARCHES_PER_MINUTE") {
            self.kb_searches_per_minute = parse("TIERDESK_KB_SEARCHES_PER_MINUTE", &v)?;
        }
        if let Some(v) = env("TIERDESK_HANDOVERS_PER_HOUR") {
            self.handovers_per_hour = parse("TIERDESK_HANDOVERS_PER_HOUR", &v)?;
        }
        if let Some(v) = env("TIERDESK_LOG_FORMAT") {
            self.log_format = v;
        }
        if let Some(v) = env("TIERDESK_JOB_SLOTS") {
            self.job_slots = parse("TIERDESK_JOB_SLOTS", &v)?;
        }
        if let Some(v) = env("TIERDESK_JOB_LEASE_SECONDS") {
            self.job_lease_seconds = parse("TIERDESK_JOB_LEASE_SECONDS", &v)?;
        }
        if let Some(v) = env("TIERDESK_JOB_POLL_SECONDS") {
            self.job_poll_seconds = parse("TIERDESK_JOB_POLL_SECONDS", &v)?;
        }
        if let Some(v) = env("TIERDESK_JOB_RETENTION_DAYS") {
            self.job_retention_days = parse("TIERDESK_JOB_RETENTION_DAYS", &v)?;
        }
        if let Some(v) = env("TIERDESK_ANSWER_THRESHOLD") {
            self.answer_threshold = parse("TIERDESK_ANSWER_THRESHOLD", &v)?;
        }
        if let Some(v) = env("TIERDESK_ANSWER_LLM_URL") {
            self.answer_llm_url = v;
        }
        if let Some(v) = env("TIERDESK_ANSWER_LLM_MODEL") {
            self.answer_llm_model = v;
        }
        if let Some(v) = env("TIERDESK_ANSWER_LLM_KEY") {
            self.answer_llm_key = v;
        }
        if let Some(v) = env("TIERDESK_ANSWER_LLM_TIMEOUT_MS") {
            self.answer_llm_timeout_ms = parse("TIERDESK_ANSWER_LLM_TIMEOUT_MS", &v)?;
        }
        if let Some(v) = env("TIERDESK_SMTP_LISTEN") {
            self.smtp.listen = v;
        }
        if let Some(v) = env("TIERDESK_SMTP_HOSTNAME") {
            self.smtp.hostname = v;
        }
        if let Some(v) = env("TIERDESK_SMTP_TLS_CERT") {
            self.smtp.tls_cert = v;
        }
        if let Some(v) = env("TIERDESK_SMTP_TLS_KEY") {
            self.smtp.tls_key = v;
        }
        Ok(())
    }

    pub fn validate(&self) -> anyhow::Result<()> {
        if !matches!(self.durability.as_str(), "full" | "normal") {
            bail!(
                "durability must be \"full\" or \"normal\", not {:?}",
                self.durability
            );
        }
        if !matches!(self.log_format.as_str(), "text" | "json") {
            bail!(
                "log_format must be \"text\" or \"json\", not {:?}",
                self.log_format
            );
        }
        if self.session_ttl_hours < 1 {
            bail!("session_ttl_hours must be at least 1");
        }
        if self.max_body_bytes < 1024 {
            bail!("max_body_bytes must be at least 1024");
        }
        if !self.answer_llm_url.is_empty() {
            // No TLS in this build's HTTP client: a local or in-network model server.
            if !self.answer_llm_url.starts_with("http://") {
                bail!("answer_llm_url must be an http:// URL (https is not supported yet)");
            }
            if self.answer_llm_model.trim().is_empty() {
                bail!("answer_llm_model is needed with answer_llm_url");
            }
            if self.answer_llm_timeout_ms == 0 {
                bail!("answer_llm_timeout_ms must be at least 1");
            }
        }
        if self.login_attempts_per_minute == 0 {
            bail!("login_attempts_per_minute must be at least 1");
        }
        if !self.database.is_empty()
            && !self.database.starts_with("sqlite:")
            && !self.database.starts_with("postgres://")
            && !self.database.starts_with("postgresql://")
        {
            bail!(
                "database must be a sqlite:// or postgres:// URL, not {:?}",
                redact_url(&self.database)
            );
        }
        if !(1..=1024).contains(&self.job_slots) {
            bail!("job_slots must be between 1 and 1024");
        }
        if self.job_lease_seconds == 0 || self.job_poll_seconds == 0 {
            bail!("job_lease_seconds and job_poll_seconds must be at least 1");
        }
        if self.job_retention_days == 0 {
            bail!("job_retention_days must be at least 1");
        }
        if !(0.0..=1.0).contains(&self.answer_threshold) {
            bail!("answer_threshold must be between 0 and 1");
        }
        let smtp = &self.smtp;
        if !smtp.listen.is_empty() && smtp.listen.parse::<std::net::SocketAddr>().is_err() {
            bail!(
                "smtp.listen must be an address and port like \"0.0.0.0:25\", not {:?}",
                smtp.listen
            );
        }
        if smtp.max_message_bytes < 1024 || smtp.max_message_bytes > 100 * 1024 * 1024 {
            bail!("smtp.max_message_bytes must be between 1024 and 104857600");
        }
        if smtp.max_recipients == 0 || smtp.max_connections == 0 || smtp.idle_timeout_seconds == 0 {
            bail!(
                "smtp.max_recipients, max_connections and idle_timeout_seconds must be at least 1"
            );
        }
        if smtp.tls_cert.is_empty() != smtp.tls_key.is_empty() {
            bail!("smtp.tls_cert and smtp.tls_key go together: set both or neither");
        }
        for (i, spec) in self.mailboxes.iter().enumerate() {
            let mut spec = spec.clone();
            if let Err(e) = spec.validate() {
                bail!("mailboxes[{i}] ({}): {e}", spec.address);
            }
        }
        let public_url_ok = self.public_url.is_empty()
            || self.public_url.starts_with("http://")
            || self.public_url.starts_with("https://");
        if !public_url_ok {
            bail!("public_url must start with http:// or https://");
        }
        Ok(())
    }

    /// The database URL, defaulting to the SQLite file in the data directory.
    pub fn database_url(&self) -> String {
        if self.database.is_empty() {
            format!("sqlite://{}", self.data_dir.join("tierdesk.db").display())
        } else {
            self.database.clone()
        }
    }

    pub fn worker_config(&self) -> tierdesk_server::worker::WorkerConfig {
        tierdesk_server::worker::WorkerConfig {
            slots: self.job_slots,
            lease: Duration::from_secs(self.job_lease_seconds),
            poll: Duration::from_secs(self.job_poll_seconds),
            ..tierdesk_server::worker::WorkerConfig::default()
        }
    }

    /// The SMTP listener's settings, with the STARTTLS certificate loaded.
    pub fn smtp_config(&self) -> anyhow::Result<tierdesk_server::smtp::SmtpConfig> {
        let smtp = &self.smtp;
        let hostname = if !smtp.hostname.is_empty() {
            smtp.hostname.clone()
        } else {
            self.public_url
                .split_once("://")
                .map(|(_, rest)| rest.split(['/', ':']).next().unwrap_or_default())
                .filter(|host| !host.is_empty())
                .unwrap_or("localhost")
                .to_string()
        };
        let tls = if smtp.tls_cert.is_empty() {
            None
        } else {
            Some(
                tierdesk_server::smtp::tls_acceptor(
                    Path::new(&smtp.tls_cert),
                    Path::new(&smtp.tls_key),
                )
                .context("smtp.tls_cert / smtp.tls_key")?,
            )
        };
        Ok(tierdesk_server::smtp::SmtpConfig {
            hostname,
            max_message_bytes: smtp.max_message_bytes,
            max_recipients: smtp.max_recipients,
            idle_timeout: Duration::from_secs(smtp.idle_timeout_seconds),
            max_connections: smtp.max_connections,
            tls,
        })
    }

    pub fn job_retention(&self) -> Duration {
        Duration::from_secs(self.job_retention_days.saturating_mul(86_400))
    }

    pub fn server_config(&self) -> tierdesk_server::ServerConfig {
        tierdesk_server::ServerConfig {
            public_url: (!self.public_url.is_empty()).then(|| self.public_url.clone()),
            session_ttl_hours: self.session_ttl_hours,
            max_body_bytes: self.max_body_bytes,
            login_attempts_per_minute: self.login_attempts_per_minute,
            public_limits: tierdesk_server::PublicLimitConfig {
                questions_per_minute: self.bot_questions_per_minute,
                searches_per_minute: self.kb_searches_per_minute,
                handovers_per_hour: self.handovers_per_hour,
            },
            generative: (!self.answer_llm_url.is_empty()).then(|| {
                tierdesk_server::generate::GenerativeConfig {
                    url: self.answer_llm_url.clone(),
                    model: self.answer_llm_model.clone(),
                    api_key: (!self.answer_llm_key.is_empty()).then(|| self.answer_llm_key.clone()),
                    timeout: Duration::from_millis(self.answer_llm_timeout_ms),
                }
            }),
        }
    }
}

pub const DEFAULT_CONFIG: &str = r#"# Tierdesk configuration. Every key is optional; shown here with its default.
# Each key can also be set by an environment variable: TIERDESK_<KEY IN CAPITALS>.

# Address the web UI and API listen on (TIERDESK_BIND).
bind = "127.0.0.1:8080"

# Where the embedded SQLite database lives (TIERDESK_DATA_DIR).
data_dir = "./tierdesk-data"

# Database URL (TIERDESK_DATABASE). Empty: SQLite in data_dir.
# For several instances on one database: "postgres://user:password@host/tierdesk".
database = ""

# Public address of the desk, e.g. "https://help.example.com" (TIERDESK_PUBLIC_URL).
# With https, session cookies are marked Secure.
public_url = ""

# "full": every acknowledged write is fsynced (survives power loss).
# "normal": survives a crash of the process, not of the machine (TIERDESK_DURABILITY).
durability = "full"

# Sign-in sessions last this long (TIERDESK_SESSION_TTL_HOURS).
session_ttl_hours = 12

# Largest accepted request body, in bytes (TIERDESK_MAX_BODY_BYTES).
max_body_bytes = 1048576

# Sign-in attempts allowed per minute, per email and per client address.
login_attempts_per_minute = 10

# Per client address, for everyone but signed-in agents (0: no limit), on the
# endpoints anyone may call that cost CPU or open tickets; over the limit the
# answer is 429 with Retry-After. Answer-bot questions (API, help center, chat
# widget; TIERDESK_BOT_QUESTIONS_PER_MINUTE):
bot_questions_per_minute = 30
# Knowledge-base searches and "was this helpful?" votes (TIERDESK_KB_SEARCHES_PER_MINUTE).
kb_searches_per_minute = 120
# Hand-overs from the bot to a person, each a new ticket (TIERDESK_HANDOVERS_PER_HOUR).
handovers_per_hour = 30

# "text" or "json" log lines (TIERDESK_LOG_FORMAT). RUST_LOG sets the level.
log_format = "text"

# Background jobs (SLA timers, outgoing mail, pages) this instance runs at once
# (TIERDESK_JOB_SLOTS). Jobs mostly wait on the database or the network, and
# concurrent writes share commits, so many slots fire a burst of SLA timers
# faster (see `tierdesk bench sla`).
job_slots = 64

# A claimed job is reserved for this instance this long, renewed while it
# runs. If the instance dies, another one runs its jobs once the reservation
# has lapsed (TIERDESK_JOB_LEASE_SECONDS).
job_lease_seconds = 30

# Longest pause between looks at the job queue; enqueued jobs normally wake
# the workers at once (TIERDESK_JOB_POLL_SECONDS).
job_poll_seconds = 5

# Finished jobs are deleted after this many days; dead ones are kept for
# inspection (TIERDESK_JOB_RETENTION_DAYS).
job_retention_days = 7

# The answer bot's confidence threshold, 0 to 1: below it the bot hands the
# question to a person, with the transcript (TIERDESK_ANSWER_THRESHOLD).
answer_threshold = 0.6

# Optional: an OpenAI-compatible endpoint (llama.cpp, vLLM, Ollama …) that
# words the bot's confident answers from the passages it found, citing them;
# on any error or after the timeout the quoted passages are the answer. Plain
# http:// only. Empty: off (TIERDESK_ANSWER_LLM_URL, _MODEL, _KEY, _TIMEOUT_MS).
answer_llm_url = ""
answer_llm_model = ""
answer_llm_key = ""
answer_llm_timeout_ms = 5000

# The built-in SMTP intake: MTAs deliver customer mail here. It accepts mail
# only for the addresses of enabled mailboxes (never a relay) and answers 250
# only once the message is stored.
[smtp]
# "0.0.0.0:25" to take mail from the internet; empty turns it off (TIERDESK_SMTP_LISTEN).
listen = ""
# Name in the greeting; empty: the host of public_url (TIERDESK_SMTP_HOSTNAME).
hostname = ""
max_message_bytes = 26214400
max_recipients = 50
idle_timeout_seconds = 300
max_connections = 256
# PEM files; with both set, STARTTLS is offered (TIERDESK_SMTP_TLS_CERT, _KEY).
tls_cert = ""
tls_key = ""

# Mailboxes can also live here: each is created at start, or updated to
# match when one with the same address exists. Mailboxes created through
# the API or CLI are left alone. Example:
#
# [[mailboxes]]
# name = "Support"
# address = "support@example.com"
# aliases = ["help@example.com"]
# tier = 1
# acknowledge = true
# # Agents' notifications (assigned, escalated, SLA, mentions) are also mailed
# # from here; the first mailbox with this on sends those of non-mail tickets.
# notify_agents = true
# [mailboxes.smtp]
# host = "smtp.example.com"
# port = 587
# tls = "starttls"
# username = "support@example.com"
# password = "…"
#
# A mailbox can also fetch its mail from an IMAP account instead of (or as
# well as) taking it over SMTP. Every enabled mailbox with an imap section is
# polled on its own; a message is marked, moved or deleted on the server only
# once it is stored here. See GET /api/v1/mailboxes/{id}/imap for its state.
# [mailboxes.imap]
# host = "imap.example.com"
# port = 993                  # default: 993 with tls = "tls", else 143
# tls = "tls"                 # "tls" (default), "starttls" or "none"
# ca_file = "/etc/ssl/internal-ca.pem"  # CAs to trust besides the Mozilla roots
# username = "support@example.com"
# password = "…"
# folders = ["INBOX"]
# after = "seen"              # "seen" (default), "move:FOLDER" or "delete"
# poll_interval_seconds = 60  # at least 5; the wait when IDLE is off or not offered
# idle = true                 # wait with IMAP IDLE when the server offers it
"#;

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn default_config_text_matches_defaults() {
        let parsed: Config = toml::from_str(DEFAULT_CONFIG).unwrap();
        assert_eq!(format!("{parsed:?}"), format!("{:?}", Config::default()));
    }

    #[test]
    fn environment_overrides_file_and_is_validated() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("t.toml");
        std::fs::write(&file, "bind = \"127.0.0.1:9000\"\nsession_ttl_hours = 3\n").unwrap();
        let env: HashMap<&str, &str> = HashMap::from([("TIERDESK_SESSION_TTL_HOURS", "5")]);
        let c = Config::load_from(Some(&file), |k| env.get(k).map(|v| v.to_string())).unwrap();
        assert_eq!(c.bind, "127.0.0.1:9000");
        assert_eq!(c.session_ttl_hours, 5);
        let bad: HashMap<&str, &str> = HashMap::from([("TIERDESK_DURABILITY", "sometimes")]);
        assert!(Config::load_from(Some(&file), |k| bad.get(k).map(|v| v.to_string())).is_err());
        std::fs::write(&file, "bnd = 1\n").unwrap();
        let err = Config::load_from(Some(&file), |_| None).unwrap_err();
        assert!(format!("{err:#}").contains("unknown field"), "{err:#}");
    }

    #[test]
    fn smtp_and_mailboxes_are_checked_with_where_the_problem_is() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("t.toml");
        let load = |text: &str| {
            std::fs::write(&file, text).unwrap();
            Config::load_from(Some(&file), |_| None).map_err(|e| format!("{e:#}"))
        };
        let ok = load(
            "public_url = \"https://help.example.com/desk\"\n[smtp]\nlisten = \"127.0.0.1:2525\"\n\
             [[mailboxes]]\nname = \"Support\"\naddress = \"Support@Example.com\"\n\
             [mailboxes.smtp]\nhost = \"smtp.example.com\"\n",
        )
        .unwrap();
        assert_eq!(ok.mailboxes.len(), 1);
        let smtp = ok.smtp_config().unwrap();
        assert_eq!(smtp.hostname, "help.example.com");
        assert!(smtp.tls.is_none());
        let err = load("[smtp]\nlisten = \"port 25\"\n").unwrap_err();
        assert!(err.contains("smtp.listen"), "{err}");
        let err = load("[smtp]\ntls_cert = \"/x.pem\"\n").unwrap_err();
        assert!(err.contains("set both or neither"), "{err}");
        let err =
            load("[[mailboxes]]\nname = \"Support\"\naddress = \"not-an-address\"\n").unwrap_err();
        assert!(
            err.contains("mailboxes[0]") && err.contains("address"),
            "{err}"
        );
        let err = load("[smtp]\nlisten = \"127.0.0.1:25\"\nport = 25\n").unwrap_err();
        assert!(err.contains("unknown field"), "{err}");
        let imap = load(
            "[[mailboxes]]\nname = \"Support\"\naddress = \"support@example.com\"\n\
             [mailboxes.imap]\nhost = \"imap.example.com\"\nusername = \"support\"\n\
             password = \"imap-s3cret\"\nafter = \"move:Done\"\n",
        )
        .unwrap();
        let settings = imap.mailboxes[0].imap.clone().unwrap();
        assert_eq!(settings.port(), 993);
        assert!(!format!("{imap:?}").contains("imap-s3cret"));
        let err = load(
            "[[mailboxes]]\nname = \"Support\"\naddress = \"support@example.com\"\n\
             [mailboxes.imap]\nhost = \"imap.example.com\"\nusername = \"support\"\n\
             poll_interval_seconds = 1\n",
        )
        .unwrap_err();
        assert!(
            err.contains("mailboxes[0]") && err.contains("imap.poll_interval_seconds"),
            "{err}"
        );
    }

    #[test]
    fn secrets_are_redacted() {
        assert_eq!(
            redact_url("postgres://desk:s3cret@db/tierdesk"),
            "postgres://desk:***@db/tierdesk"
        );
        let c = Config {
            database: "postgres://u:pw@h/d".into(),
            ..Config::default()
        };
        assert!(!format!("{c:?}").contains("pw@"));
    }
}
