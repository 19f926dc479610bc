//! `tierdesk`: one binary for the whole desk — server, demo, admin tasks and benchmarks.

mod assignment_cli;
mod backend;
mod bench;
mod cli_inbox;
mod config;
mod demo;
mod escalation_cli;
mod intake;
mod kb_cli;
mod mailbox_cli;
mod migrate_data;
mod sla_cli;
mod test_jobs;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use config::Config;
use std::path::PathBuf;
use std::sync::Arc;
use tierdesk_core::{Role, Tier, Timestamp};
use tierdesk_store::{NewAgent, NewApiToken, Store};

#[derive(Parser)]
#[command(
    name = "tierdesk",
    version,
    about = "A self-hosted help desk for tiered technical support"
)]
struct Cli {
    /// Configuration file (TOML). Defaults to ./tierdesk.toml when present.
    #[arg(long, global = true, env = "TIERDESK_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Clone, Default)]
pub(crate) struct Location {
    /// Data directory for the embedded database [default: ./tierdesk-data]
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    /// Database URL: sqlite://PATH or postgres://… [default: SQLite in the data directory]
    #[arg(long, global = true)]
    database: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the desk: web UI, API and workers.
    Serve {
        /// Address to listen on [default: 127.0.0.1:8080]
        #[arg(long)]
        bind: Option<String>,
        #[command(flatten)]
        location: Location,
    },
    /// Run the desk filled with demo data (a managed service provider with three clients).
    Demo {
        #[arg(long)]
        bind: Option<String>,
        /// Use this data directory instead of a fresh one.
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// How many demo tickets to create.
        #[arg(long, default_value_t = 300)]
        tickets: usize,
    },
    /// Administrative tasks.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// A team's auto-assignment: show or set it.
    #[command(subcommand)]
    Assignment(assignment_cli::AssignmentCommand),
    /// Apply database migrations and exit.
    Migrate {
        #[command(flatten)]
        location: Location,
    },
    /// Copy a SQLite desk into an empty PostgreSQL database, then verify
    /// every table's row count and checksum.
    MigrateData {
        /// The SQLite database to copy: sqlite://PATH, a path, or a data directory.
        /// It is only read.
        #[arg(long)]
        from: String,
        /// The PostgreSQL database to fill: postgres://…. It is migrated and must be empty.
        #[arg(long)]
        to: String,
    },
    /// Saved views: list, show their tickets, create, delete.
    Views {
        #[command(subcommand)]
        command: cli_inbox::ViewsCommand,
        #[command(flatten)]
        location: Location,
    },
    /// Ranked full-text search in the views language, with the matching text.
    Search {
        /// Words, "phrases" and filters: `"login fails" status:open tier:2`.
        #[arg(allow_hyphen_values = true)]
        query: String,
        /// The agent (email) searching, for `assignee:me` and `tier:mine`.
        #[arg(long = "as")]
        agent: String,
        #[arg(long, default_value_t = 20)]
        limit: u32,
        #[command(flatten)]
        location: Location,
    },
    /// Automation rules: list, export and import as JSON, delete, dry run.
    Rules {
        #[command(subcommand)]
        command: cli_inbox::RulesCommand,
        #[command(flatten)]
        location: Location,
    },
    /// Macros (canned responses): list, import from JSON, delete.
    Macros {
        #[command(subcommand)]
        command: cli_inbox::MacrosCommand,
        #[command(flatten)]
        location: Location,
    },
    /// Print a commented configuration file with every default.
    DefaultConfig,
    /// Email mailboxes: list, add or set from a JSON file, remove.
    Mailboxes {
        #[command(subcommand)]
        action: mailbox_cli::MailboxAction,
        #[command(flatten)]
        location: Location,
    },
    /// SLA calendars and policies: list them, or set them from a JSON file.
    Sla {
        #[command(subcommand)]
        target: sla_cli::SlaTarget,
        #[command(flatten)]
        location: Location,
    },
    /// Measure performance.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// Escalation configuration.
    #[command(subcommand)]
    Escalation(escalation_cli::EscalationCommand),
    /// Troubleshooting runbooks attached to tags.
    #[command(subcommand)]
    Runbooks(escalation_cli::ConfigCommand),
    /// The knowledge base: import and export Markdown, rebuild the search
    /// index, search, ask the answer bot.
    Kb {
        #[command(subcommand)]
        command: kb_cli::KbCommand,
        #[command(flatten)]
        location: Location,
    },
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Create an agent (or an admin).
    CreateAgent {
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: String,
        #[arg(long, default_value = "agent", value_parser = parse_role)]
        role: Role,
        /// Support tier 1–3.
        #[arg(long, default_value = "1", value_parser = parse_tier)]
        tier: Tier,
        /// Password; read from TIERDESK_AGENT_PASSWORD when not given. At least 8 characters.
        #[arg(long, env = "TIERDESK_AGENT_PASSWORD", hide_env_values = true)]
        password: Option<String>,
        #[arg(long, default_value_t = 20)]
        capacity: i64,
        #[command(flatten)]
        location: Location,
    },
    /// Create an API token for an agent; the token is printed once and stored only as a hash.
    CreateToken {
        /// The agent's email.
        #[arg(long)]
        agent: String,
        #[arg(long, default_value = "cli")]
        name: String,
        #[command(flatten)]
        location: Location,
    },
}

fn parse_role(s: &str) -> Result<Role, String> {
    s.parse()
}

fn parse_tier(s: &str) -> Result<Tier, String> {
    s.parse::<Tier>()
        .and_then(|t| tierdesk_core::people::agent_tier(i64::from(t.level())))
}

pub fn now() -> Timestamp {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    Timestamp(ms)
}

fn init_tracing(config: &Config, default_filter: &str) {
    use tracing_subscriber::EnvFilter;
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if config.log_format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

impl Location {
    pub(crate) fn apply(&self, config: &mut Config) {
        if let Some(dir) = &self.data_dir {
            config.data_dir = dir.clone();
        }
        if let Some(db) = &self.database {
            config.database = db.clone();
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Command::DefaultConfig = cli.command {
        print!("{}", config::DEFAULT_CONFIG);
        return Ok(());
    }
    let mut config = Config::load(cli.config.as_deref())?;
    // Benchmarks print a table; per-request log lines would drown it.
    let default_filter = if matches!(cli.command, Command::Bench(_)) {
        "warn"
    } else {
        "info,sqlx=warn"
    };
    init_tracing(&config, default_filter);
    match cli.command {
        Command::DefaultConfig => Ok(()),
        Command::Serve { bind, location } => {
            if let Some(bind) = bind {
                config.bind = bind;
            }
            location.apply(&mut config);
            let store = backend::open(&config).await?;
            backend::serve(&config, store, None).await
        }
        Command::Demo {
            bind,
            data_dir,
            tickets,
        } => {
            if let Some(bind) = bind {
                config.bind = bind;
            }
            config.data_dir = match data_dir {
                Some(dir) => dir,
                None => demo::fresh_dir()?,
            };
            config.database = String::new();
            demo::mail_intake(&mut config)?;
            let store = backend::open(&config).await?;
            let login = demo::seed(&*store, tickets).await?;
            backend::serve(&config, store, Some(login)).await
        }
        Command::Kb { command, location } => {
            location.apply(&mut config);
            let store = backend::open(&config).await?;
            kb_cli::run(command, &config, store).await
        }
        Command::Migrate { location } => {
            location.apply(&mut config);
            let store = backend::open(&config).await?;
            println!(
                "{} database is up to date: {}",
                store.backend(),
                config::redact_url(&config.database_url())
            );
            Ok(())
        }
        Command::Admin(AdminCommand::CreateAgent {
            email,
            name,
            role,
            tier,
            password,
            capacity,
            location,
        }) => {
            location.apply(&mut config);
            let store = backend::open(&config).await?;
            let password = password.context("give --password or set TIERDESK_AGENT_PASSWORD")?;
            if password.chars().count() < 8 {
                anyhow::bail!("the password must be at least 8 characters");
            }
            let hash = tierdesk_server::auth::hash_password(&password)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let agent = store
                .create_agent(
                    NewAgent {
                        email,
                        name,
                        role,
                        tier,
                        teams: vec![],
                        capacity,
                        available: true,
                        password_hash: Some(hash),
                    },
                    now(),
                )
                .await?;
            println!(
                "created {} {} (id {}, tier {})",
                agent.role, agent.email, agent.id, agent.tier
            );
            Ok(())
        }
        Command::Admin(AdminCommand::CreateToken {
            agent,
            name,
            location,
        }) => {
            location.apply(&mut config);
            let store = backend::open(&config).await?;
            let token = create_token(&*store, &agent, &name).await?;
            println!("{token}");
            eprintln!("This token is shown once. Store it safely; Tierdesk keeps only its hash.");
            Ok(())
        }
        Command::MigrateData { from, to } => {
            let report = migrate_data::run(&from, &to).await?;
            println!(
                "Copied {} into {}",
                config::redact_url(&from),
                config::redact_url(&to)
            );
            print!("{}", migrate_data::render(&report));
            Ok(())
        }
        Command::Views { command, location } => {
            location.apply(&mut config);
            let store = backend::open(&config).await?;
            cli_inbox::views(&*store, command).await
        }
        Command::Search {
            query,
            agent,
            limit,
            location,
        } => {
            location.apply(&mut config);
            let store = backend::open(&config).await?;
            cli_inbox::search(&*store, &query, &agent, limit).await
        }
        Command::Rules { command, location } => {
            location.apply(&mut config);
            let store = backend::open(&config).await?;
            cli_inbox::rules(&*store, command).await
        }
        Command::Macros { command, location } => {
            location.apply(&mut config);
            let store = backend::open(&config).await?;
            cli_inbox::macros(&*store, command).await
        }
        Command::Mailboxes { action, location } => {
            location.apply(&mut config);
            let store = backend::open(&config).await?;
            mailbox_cli::run(&*store, action, tierdesk_server::now()).await
        }
        Command::Sla { target, location } => {
            location.apply(&mut config);
            let store = backend::open(&config).await?;
            sla_cli::run(&*store, target, tierdesk_server::now()).await
        }
        Command::Assignment(command) => assignment_cli::run(command, &mut config).await,
        Command::Bench(command) => bench::run(command, &config).await,
        Command::Escalation(escalation_cli::EscalationCommand::Templates(command)) => {
            command.location().apply(&mut config);
            let store = backend::open(&config).await?;
            escalation_cli::templates(&*store, command).await
        }
        Command::Runbooks(command) => {
            command.location().apply(&mut config);
            let store = backend::open(&config).await?;
            escalation_cli::runbooks(&*store, command).await
        }
    }
}

/// Creates an API token for the agent with this email and returns its secret.
pub async fn create_token(
    store: &dyn Store,
    agent_email: &str,
    name: &str,
) -> anyhow::Result<String> {
    let agent = store
        .agent_by_email(agent_email)
        .await?
        .with_context(|| format!("no agent with email {agent_email}"))?;
    if !agent.active {
        anyhow::bail!("agent {agent_email} is deactivated");
    }
    let (secret, hash) = tierdesk_server::auth::new_api_token();
    let prefix: String = secret.chars().take(8).collect();
    store
        .create_api_token(
            NewApiToken {
                agent: agent.id,
                name: name.into(),
                prefix,
                token_hash: hash,
            },
            now(),
        )
        .await?;
    Ok(secret)
}

pub type SharedStore = Arc<dyn Store>;
