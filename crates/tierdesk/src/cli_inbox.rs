//! The shared inbox from the command line: saved views, ranked search,
//! rules and macros, on the same store and with the same validation as the
//! API. Definitions move as JSON files, so rule sets and macros can live in
//! version control (`rules export > rules.json`, `rules import rules.json`).

use crate::now;
use anyhow::{Context, bail};
use clap::Subcommand;
use std::path::{Path, PathBuf};
use tierdesk_core::query::Query;
use tierdesk_core::rules::RuleSpec;
use tierdesk_core::{Agent, RuleId, Ticket, TicketId};
use tierdesk_store::{
    NewMacro, NewView, RuleCandidate, SearchQuery, Store, TicketQuery, TicketSort, VIEW_COUNT_CAP,
};

#[derive(Subcommand)]
pub enum ViewsCommand {
    /// The sidebar an agent sees: shared views and their own, with live counts.
    List {
        /// The agent (email) whose sidebar to show.
        #[arg(long = "as")]
        agent: String,
    },
    /// The tickets of a saved view, or of a query given with --query.
    Show {
        /// A saved view's id.
        id: Option<i64>,
        /// A views-language query instead of a saved view.
        #[arg(long, allow_hyphen_values = true)]
        query: Option<String>,
        #[arg(long, default_value = "newest")]
        sort: String,
        #[arg(long = "as")]
        agent: String,
        #[arg(long, default_value_t = 25)]
        limit: u32,
    },
    /// Save a view: personal to the agent, or shared with --shared.
    Create {
        #[arg(long)]
        name: String,
        #[arg(long, allow_hyphen_values = true)]
        query: String,
        #[arg(long, default_value = "newest")]
        sort: String,
        #[arg(long)]
        shared: bool,
        #[arg(long = "as")]
        agent: String,
    },
    Delete {
        id: i64,
    },
}

#[derive(Subcommand)]
pub enum RulesCommand {
    /// Every rule in evaluation order.
    List,
    /// Print the rules as a JSON array, ready for `rules import`.
    Export,
    /// Add the rules of a JSON file (one rule or an array), after the existing
    /// ones. All are validated first; one invalid rule adds none.
    Import {
        file: PathBuf,
    },
    Delete {
        id: i64,
    },
    /// What the rules would do to a ticket's opening, without writing;
    /// optionally with an unsaved rule from a file tried after them.
    Test {
        #[arg(long)]
        ticket: i64,
        #[arg(long)]
        rule: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
pub enum MacrosCommand {
    /// The shared macros and the agent's own.
    List {
        #[arg(long = "as")]
        agent: String,
    },
    /// Add macros from a JSON file (`{name, description?, actions}` or an
    /// array): shared, or personal to --personal-for EMAIL.
    Import {
        file: PathBuf,
        #[arg(long)]
        personal_for: Option<String>,
    },
    Delete {
        id: i64,
    },
}

async fn agent(store: &dyn Store, email: &str) -> anyhow::Result<Agent> {
    store
        .agent_by_email(email)
        .await?
        .with_context(|| format!("no agent with email {email}"))
}

fn parse_query(text: &str) -> anyhow::Result<Query> {
    Query::parse(text, now()).map_err(|e| anyhow::anyhow!("query {text:?}: {e}"))
}

fn parse_sort(text: &str) -> anyhow::Result<TicketSort> {
    TicketSort::parse(text)
        .with_context(|| format!("sort {text:?}: use newest, oldest, updated, stale or priority"))
}

fn ticket_line(t: &Ticket) -> String {
    let assignee = t.assignee.map_or("-".to_string(), |a| a.to_string());
    let tags: Vec<&str> = t.tags.iter().map(String::as_str).collect();
    format!(
        "#{:<7} {:<8} {} tier {} assignee {:<4} {}  [{}]",
        t.reference,
        t.status.as_str(),
        t.priority.as_str(),
        t.tier.level(),
        assignee,
        t.subject,
        tags.join(", ")
    )
}

/// A JSON file holding one object or an array of them.
fn read_json_list(file: &Path) -> anyhow::Result<Vec<serde_json::Value>> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let value: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("{} is not valid JSON", file.display()))?;
    Ok(match value {
        serde_json::Value::Array(items) => items,
        one => vec![one],
    })
}

fn parse_item<T: serde::de::DeserializeOwned>(
    file: &Path,
    index: usize,
    value: serde_json::Value,
) -> anyhow::Result<T> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        anyhow::anyhow!(
            "{} item {index}: {}: {}",
            file.display(),
            e.path(),
            e.inner()
        )
    })
}

pub async fn views(store: &dyn Store, command: ViewsCommand) -> anyhow::Result<()> {
    match command {
        ViewsCommand::List { agent: email } => {
            let me = agent(store, &email).await?;
            for view in store.list_views(me.id).await? {
                let count = store
                    .count_view(&parse_query(&view.query)?, Some(me.id), VIEW_COUNT_CAP)
                    .await?;
                let scope = if view.owner.is_some() {
                    "personal"
                } else {
                    "shared"
                };
                println!(
                    "{:>4}  {:>7}  {:<9} {:<32} {}",
                    view.id, count, scope, view.name, view.query
                );
            }
        }
        ViewsCommand::Show {
            id,
            query,
            sort,
            agent: email,
            limit,
        } => {
            let me = agent(store, &email).await?;
            let (query, sort) = match (id, query) {
                (Some(id), None) => {
                    let view = store
                        .view(id)
                        .await?
                        .filter(|v| v.owner.is_none() || v.owner == Some(me.id))
                        .with_context(|| format!("no view {id} visible to {email}"))?;
                    (parse_query(&view.query)?, view.sort)
                }
                (None, Some(text)) => (parse_query(&text)?, parse_sort(&sort)?),
                _ => bail!("give a view id or --query, not both"),
            };
            let count = store.count_tickets(&query, Some(me.id)).await?;
            let page = store
                .query_tickets(&TicketQuery {
                    query,
                    me: Some(me.id),
                    sort,
                    after: None,
                    limit: limit.clamp(1, 1_000),
                })
                .await?;
            for ticket in &page {
                println!("{}", ticket_line(ticket));
            }
            eprintln!("{} of {count} tickets", page.len());
        }
        ViewsCommand::Create {
            name,
            query,
            sort,
            shared,
            agent: email,
        } => {
            parse_query(&query)?;
            let owner = if shared {
                None
            } else {
                Some(agent(store, &email).await?.id)
            };
            let view = store
                .create_view(
                    NewView {
                        name,
                        query,
                        sort: parse_sort(&sort)?,
                        owner,
                        position: None,
                    },
                    now(),
                )
                .await?;
            println!("created view {} {:?}", view.id, view.name);
        }
        ViewsCommand::Delete { id } => {
            store.delete_view(id).await?;
            println!("deleted view {id}");
        }
    }
    Ok(())
}

/// `tierdesk search "words filters…"`: ranked, with the matching text.
pub async fn search(store: &dyn Store, text: &str, email: &str, limit: u32) -> anyhow::Result<()> {
    let me = agent(store, email).await?;
    let hits = store
        .search_tickets(&SearchQuery {
            query: parse_query(text)?,
            me: Some(me.id),
            limit: limit.clamp(1, 200),
            offset: 0,
        })
        .await?;
    for hit in &hits {
        println!("{}", ticket_line(&hit.ticket));
        if let Some(matched) = &hit.matched {
            // The snippet is HTML for the web; plain text marks in a terminal.
            let plain = matched
                .snippet
                .replace("<mark>", "[")
                .replace("</mark>", "]")
                .replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&quot;", "\"")
                .replace("&#39;", "'")
                .replace("&amp;", "&");
            println!("          {}: {plain}", matched.kind);
        }
    }
    eprintln!("{} results", hits.len());
    Ok(())
}

pub async fn rules(store: &dyn Store, command: RulesCommand) -> anyhow::Result<()> {
    match command {
        RulesCommand::List => {
            for record in store.list_rules().await? {
                let rule = &record.rule;
                let state = if rule.spec.enabled { "on " } else { "off" };
                println!("{:>4}  {state}  {}", rule.id, rule.spec.name);
            }
        }
        RulesCommand::Export => {
            let specs: Vec<RuleSpec> = store
                .list_rules()
                .await?
                .into_iter()
                .map(|r| r.rule.spec)
                .collect();
            println!("{}", serde_json::to_string_pretty(&specs)?);
        }
        RulesCommand::Import { file } => {
            let specs = read_json_list(&file)?
                .into_iter()
                .enumerate()
                .map(|(i, v)| parse_item::<RuleSpec>(&file, i, v))
                .collect::<anyhow::Result<Vec<_>>>()?;
            for (i, spec) in specs.iter().enumerate() {
                if let Err(problems) = spec.validate() {
                    let list: Vec<String> = problems.iter().map(ToString::to_string).collect();
                    bail!(
                        "{} item {i} ({:?}): {}",
                        file.display(),
                        spec.name,
                        list.join("; ")
                    );
                }
            }
            for spec in specs {
                let record = store.create_rule(spec, None, now()).await?;
                println!("added rule {} {:?}", record.rule.id, record.rule.spec.name);
            }
        }
        RulesCommand::Delete { id } => {
            store.delete_rule(RuleId(id), None, now()).await?;
            println!("deleted rule {id}");
        }
        RulesCommand::Test { ticket, rule } => {
            let candidate = match rule {
                Some(file) => {
                    let mut items = read_json_list(&file)?;
                    if items.len() != 1 {
                        bail!("{} must hold exactly one rule", file.display());
                    }
                    let spec: RuleSpec = parse_item(&file, 0, items.remove(0))?;
                    Some(RuleCandidate::last(spec))
                }
                None => None,
            };
            let run = store.dry_run_rules(TicketId(ticket), candidate).await?;
            println!("before: {}", ticket_line(&run.before));
            if run.firings.is_empty() {
                println!("no rule matches");
            }
            for firing in &run.firings {
                println!("rule {} {:?}:", firing.rule, firing.name);
                for event in &firing.events {
                    println!("  {}", serde_json::to_string(&event.kind)?);
                }
                for skipped in &firing.skipped {
                    println!("  skipped: {skipped}");
                }
            }
            for effect in &run.side_effects {
                println!("side effect: {effect:?}");
            }
            println!("after:  {}", ticket_line(&run.after));
        }
    }
    Ok(())
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct MacroFile {
    name: String,
    #[serde(default)]
    description: String,
    actions: tierdesk_core::macros::MacroActions,
}

pub async fn macros(store: &dyn Store, command: MacrosCommand) -> anyhow::Result<()> {
    match command {
        MacrosCommand::List { agent: email } => {
            let me = agent(store, &email).await?;
            for m in store.list_macros(me.id).await? {
                let scope = if m.owner.is_some() {
                    "personal"
                } else {
                    "shared"
                };
                println!("{:>4}  {:<9} used {:>5}×  {}", m.id, scope, m.uses, m.name);
            }
        }
        MacrosCommand::Import { file, personal_for } => {
            let owner = match personal_for {
                Some(email) => Some(agent(store, &email).await?.id),
                None => None,
            };
            let items = read_json_list(&file)?
                .into_iter()
                .enumerate()
                .map(|(i, v)| parse_item::<MacroFile>(&file, i, v))
                .collect::<anyhow::Result<Vec<_>>>()?;
            for item in items {
                let created = store
                    .create_macro(
                        NewMacro {
                            name: item.name,
                            description: item.description,
                            actions: item.actions,
                            owner,
                        },
                        now(),
                    )
                    .await?;
                println!("added macro {} {:?}", created.id, created.name);
            }
        }
        MacrosCommand::Delete { id } => {
            store.delete_macro(id).await?;
            println!("deleted macro {id}");
        }
    }
    Ok(())
}
