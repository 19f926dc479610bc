//! `tierdesk sla calendars|policies list|set FILE.json`: SLA configuration
//! from the command line, straight on the database (as the admin commands).
//!
//! `set` takes a JSON array and makes the desk match it: an entry whose name
//! matches a saved one replaces it, a new name is created, and for policies
//! the file is the whole ordered list (policies it does not name are
//! deleted, the rest take the file's order).

use anyhow::Context;
use clap::Subcommand;
use std::path::{Path, PathBuf};
use tierdesk_core::Timestamp;
use tierdesk_core::calendar::CalendarSpec;
use tierdesk_core::sla::SlaPolicySpec;
use tierdesk_store::{Store, StoreError};

#[derive(Subcommand)]
pub enum SlaTarget {
    /// Business-hours calendars.
    #[command(subcommand)]
    Calendars(SlaAction),
    /// SLA policies, in evaluation order.
    #[command(subcommand)]
    Policies(SlaAction),
}

#[derive(Subcommand)]
pub enum SlaAction {
    /// Print them as JSON.
    List,
    /// Make the desk match a JSON array of definitions.
    Set { file: PathBuf },
}

fn read<T: serde::de::DeserializeOwned>(file: &Path) -> anyhow::Result<Vec<T>> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    serde_json::from_str(&text)
        .with_context(|| format!("{} is not a JSON array of definitions", file.display()))
}

/// Names the entry a refusal is about, with every problem and its path.
fn refusal(entry: usize, name: &str, error: StoreError) -> anyhow::Error {
    match error {
        StoreError::InvalidConfig(problems) => anyhow::anyhow!(
            "[{entry}] {name:?} is not valid:\n{}",
            problems
                .iter()
                .map(|p| format!("  [{entry}].{}: {}", p.path, p.message))
                .collect::<Vec<_>>()
                .join("\n")
        ),
        other => anyhow::anyhow!("[{entry}] {name:?}: {other}"),
    }
}

pub async fn run(store: &dyn Store, target: SlaTarget, now: Timestamp) -> anyhow::Result<()> {
    match target {
        SlaTarget::Calendars(SlaAction::List) => {
            let calendars = store.list_calendars().await?;
            println!("{}", serde_json::to_string_pretty(&calendars)?);
        }
        SlaTarget::Policies(SlaAction::List) => {
            let policies = store.list_sla_policies().await?;
            println!("{}", serde_json::to_string_pretty(&policies)?);
        }
        SlaTarget::Calendars(SlaAction::Set { file }) => {
            let wanted: Vec<CalendarSpec> = read(&file)?;
            let saved = store.list_calendars().await?;
            for (i, spec) in wanted.into_iter().enumerate() {
                let name = spec.name.clone();
                let result = match saved.iter().find(|c| c.spec.name == spec.name) {
                    Some(existing) => store.update_calendar(existing.id, spec, now).await,
                    None => store.create_calendar(spec, now).await,
                };
                let calendar = result.map_err(|e| refusal(i, &name, e))?;
                println!("calendar {} {:?}", calendar.id, calendar.spec.name);
            }
        }
        SlaTarget::Policies(SlaAction::Set { file }) => {
            let wanted: Vec<SlaPolicySpec> = read(&file)?;
            // Every entry is checked before anything changes.
            for (i, spec) in wanted.iter().enumerate() {
                spec.validate().map_err(|problems| {
                    refusal(i, &spec.name, StoreError::InvalidConfig(problems))
                })?;
            }
            let saved = store.list_sla_policies().await?;
            let mut order = Vec::with_capacity(wanted.len());
            for (i, spec) in wanted.into_iter().enumerate() {
                let name = spec.name.clone();
                let result = match saved.iter().find(|p| p.spec.name == spec.name) {
                    Some(existing) => store.update_sla_policy(existing.id, spec, now).await,
                    None => store.create_sla_policy(spec, now).await,
                };
                order.push(result.map_err(|e| refusal(i, &name, e))?.id);
            }
            for old in saved.iter().filter(|p| !order.contains(&p.id)) {
                store.delete_sla_policy(old.id, now).await?;
            }
            for policy in store.reorder_sla_policies(&order, now).await? {
                println!(
                    "policy {} at {} {:?}",
                    policy.id, policy.position, policy.spec.name
                );
            }
        }
    }
    Ok(())
}
