//! `tierdesk mailboxes list|add|set|remove`: email mailboxes from the
//! command line, straight on the database (as the other admin commands).
//! `add` and `set` take the mailbox as JSON (the API's body); `add` prints
//! the inbound secret an MTA pipe authenticates with, once.

use anyhow::Context;
use clap::Subcommand;
use std::path::{Path, PathBuf};
use tierdesk_core::Timestamp;
use tierdesk_store::mail::{Mailbox, MailboxSpec};
use tierdesk_store::{Store, StoreError};

#[derive(Subcommand)]
pub enum MailboxAction {
    /// Print every mailbox as JSON (SMTP and IMAP passwords left out).
    List,
    /// Create a mailbox from a JSON file and print its inbound secret.
    Add { file: PathBuf },
    /// Replace mailbox ID's settings with a JSON file (an omitted SMTP or
    /// IMAP password keeps the stored one).
    Set { id: i64, file: PathBuf },
    /// Delete mailbox ID (refused while tickets talk through it).
    Remove { id: i64 },
}

fn read(file: &Path) -> anyhow::Result<MailboxSpec> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    serde_json::from_str(&text)
        .with_context(|| format!("{} is not a mailbox definition", file.display()))
}

fn refusal(error: StoreError) -> anyhow::Error {
    match error {
        StoreError::InvalidConfig(problems) => anyhow::anyhow!(
            "the mailbox is not valid:\n{}",
            problems
                .iter()
                .map(|p| format!("  {}: {}", p.path, p.message))
                .collect::<Vec<_>>()
                .join("\n")
        ),
        other => anyhow::anyhow!("{other}"),
    }
}

fn shown(mailbox: &Mailbox) -> serde_json::Value {
    let mut value = serde_json::to_value(mailbox).unwrap_or_default();
    for section in ["smtp", "imap"] {
        if let Some(settings) = value.get_mut(section).and_then(|s| s.as_object_mut()) {
            let set = settings.remove("password").is_some_and(|p| !p.is_null());
            settings.insert("password_set".into(), set.into());
        }
    }
    value
}

pub async fn run(store: &dyn Store, action: MailboxAction, now: Timestamp) -> anyhow::Result<()> {
    match action {
        MailboxAction::List => {
            let all: Vec<serde_json::Value> =
                store.list_mailboxes().await?.iter().map(shown).collect();
            println!("{}", serde_json::to_string_pretty(&all)?);
        }
        MailboxAction::Add { file } => {
            let spec = read(&file)?;
            let secret = tierdesk_server::auth::random_secret();
            let saved = store
                .create_mailbox(spec, tierdesk_server::auth::token_hash(&secret), now)
                .await
                .map_err(refusal)?;
            println!("mailbox {} {}", saved.id, saved.spec.address);
            println!("inbound secret (shown once): {secret}");
        }
        MailboxAction::Set { id, file } => {
            let mut spec = read(&file)?;
            let current = store
                .mailbox(id)
                .await?
                .ok_or_else(|| anyhow::anyhow!("no mailbox {id}"))?;
            spec.keep_passwords(current.spec);
            let saved = store.update_mailbox(id, spec, now).await.map_err(refusal)?;
            println!("mailbox {} {}", saved.id, saved.spec.address);
        }
        MailboxAction::Remove { id } => {
            store.delete_mailbox(id).await.map_err(refusal)?;
            println!("mailbox {id} removed");
        }
    }
    Ok(())
}
