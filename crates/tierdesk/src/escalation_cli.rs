//! `tierdesk escalation templates list|set FILE.json` and
//! `tierdesk runbooks list|set FILE.json`: configuration as files, for
//! version control. `set` takes one spec or a list; a template replaces the
//! one for its tier, a runbook the one with its name (case-insensitively),
//! anything else is added.

use crate::{Location, now};
use anyhow::Context;
use clap::Subcommand;
use serde::de::DeserializeOwned;
use std::path::{Path, PathBuf};
use tierdesk_core::escalation::TemplateSpec;
use tierdesk_core::runbook::RunbookSpec;
use tierdesk_store::{Store, StoreError};

#[derive(Subcommand)]
pub enum EscalationCommand {
    /// Escalation templates, one per target tier.
    #[command(subcommand)]
    Templates(ConfigCommand),
}

#[derive(Subcommand)]
pub enum ConfigCommand {
    /// Print every one as JSON.
    List {
        #[command(flatten)]
        location: Location,
    },
    /// Save the spec (or list of specs) in a JSON file.
    Set {
        file: PathBuf,
        #[command(flatten)]
        location: Location,
    },
}

impl ConfigCommand {
    pub fn location(&self) -> &Location {
        match self {
            ConfigCommand::List { location } | ConfigCommand::Set { location, .. } => location,
        }
    }
}

/// One spec or a list of them.
fn read_specs<T: DeserializeOwned>(file: &Path) -> anyhow::Result<Vec<T>> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let value: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", file.display()))?;
    let items = match value {
        serde_json::Value::Array(items) => items,
        one => vec![one],
    };
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| {
            serde_json::from_value(item)
                .with_context(|| format!("{} entry {i} is not a valid spec", file.display()))
        })
        .collect()
}

/// Problems with their paths, one a line.
fn explain(error: StoreError) -> anyhow::Error {
    match error {
        StoreError::InvalidConfig(errors) => anyhow::anyhow!(
            "not valid:\n{}",
            errors
                .iter()
                .map(|e| format!("  {}: {}", e.path, e.message))
                .collect::<Vec<_>>()
                .join("\n")
        ),
        other => other.into(),
    }
}

pub async fn templates(store: &dyn Store, command: ConfigCommand) -> anyhow::Result<()> {
    match command {
        ConfigCommand::List { .. } => {
            let all = store.list_escalation_templates().await?;
            println!("{}", serde_json::to_string_pretty(&all)?);
        }
        ConfigCommand::Set { file, .. } => {
            for spec in read_specs::<TemplateSpec>(&file)? {
                let existing = store
                    .list_escalation_templates()
                    .await?
                    .into_iter()
                    .find(|t| t.spec.tier == spec.tier);
                let name = spec.name.clone();
                let saved = match existing {
                    Some(t) => store.update_escalation_template(t.id, spec, now()).await,
                    None => store.create_escalation_template(spec, now()).await,
                }
                .map_err(explain)
                .with_context(|| format!("template {name:?}"))?;
                println!(
                    "saved template {} {:?} for tier {}",
                    saved.id, saved.spec.name, saved.spec.tier
                );
            }
        }
    }
    Ok(())
}

pub async fn runbooks(store: &dyn Store, command: ConfigCommand) -> anyhow::Result<()> {
    match command {
        ConfigCommand::List { .. } => {
            let all = store.list_runbooks().await?;
            println!("{}", serde_json::to_string_pretty(&all)?);
        }
        ConfigCommand::Set { file, .. } => {
            for spec in read_specs::<RunbookSpec>(&file)? {
                let existing =
                    store.list_runbooks().await?.into_iter().find(|r| {
                        r.spec.name.trim().to_lowercase() == spec.name.trim().to_lowercase()
                    });
                let name = spec.name.clone();
                let saved = match existing {
                    Some(r) => store.update_runbook(r.id, spec, now()).await,
                    None => store.create_runbook(spec, now()).await,
                }
                .map_err(explain)
                .with_context(|| format!("runbook {name:?}"))?;
                println!(
                    "saved runbook {} {:?} for tags {}",
                    saved.id,
                    saved.spec.name,
                    saved
                        .spec
                        .tags
                        .iter()
                        .map(|t| t.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
        }
    }
    Ok(())
}
