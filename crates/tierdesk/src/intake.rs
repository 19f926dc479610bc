//! Mail intake at start: mailboxes from the config file, the built-in
//! SMTP listener and the IMAP pollers.

use crate::SharedStore;
use crate::config::Config;
use anyhow::Context;
use std::future::Future;
use std::net::SocketAddr;
use tierdesk_store::StoreError;

/// Creates each mailbox of the config file that does not exist (by
/// address) and updates those whose settings differ. Mailboxes made through
/// the API or CLI are left alone.
pub async fn sync_mailboxes(config: &Config, store: &SharedStore) -> anyhow::Result<()> {
    if config.mailboxes.is_empty() {
        return Ok(());
    }
    let existing = store.list_mailboxes().await?;
    let now = tierdesk_server::now();
    for spec in &config.mailboxes {
        let mut spec = spec.clone();
        spec.validate()
            .with_context(|| format!("mailbox {} in the config file", spec.address))?;
        match existing.iter().find(|m| m.spec.address == spec.address) {
            Some(found) if found.spec == spec => {}
            Some(found) => {
                store
                    .update_mailbox(found.id, spec.clone(), now)
                    .await
                    .with_context(|| format!("updating mailbox {}", spec.address))?;
                tracing::info!(mailbox = found.id, address = %spec.address, "mailbox updated from the config file");
            }
            None => {
                // The HTTP pipe secret is not shown: config-file mailboxes take
                // mail by SMTP or IMAP, or by the pipe with an API token.
                let secret = tierdesk_server::auth::random_secret();
                let hash = tierdesk_server::auth::token_hash(&secret);
                match store.create_mailbox(spec.clone(), hash, now).await {
                    Ok(created) => {
                        tracing::info!(mailbox = created.id, address = %spec.address, "mailbox created from the config file")
                    }
                    // Another instance created it at the same moment.
                    Err(StoreError::Duplicate { .. }) => {}
                    Err(e) => {
                        return Err(e)
                            .with_context(|| format!("creating mailbox {}", spec.address));
                    }
                }
            }
        }
    }
    Ok(())
}

/// Starts the SMTP listener when `[smtp] listen` is set.
pub async fn start_smtp(
    config: &Config,
    store: &SharedStore,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<Option<(SocketAddr, tokio::task::JoinHandle<()>)>> {
    if config.smtp.listen.is_empty() {
        return Ok(None);
    }
    let smtp = config.smtp_config()?;
    let (addr, task) =
        tierdesk_server::smtp::spawn(&config.smtp.listen, store.clone(), smtp, shutdown)
            .await
            .with_context(|| format!("cannot listen for SMTP on {}", config.smtp.listen))?;
    Ok(Some((addr, task)))
}

/// Starts the IMAP pollers: one per enabled mailbox with an `imap` section,
/// the mailbox list read again every 30 seconds for changes made through
/// the API or CLI. They stop when `shutdown` completes.
pub fn start_imap(
    store: &SharedStore,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> tokio::task::JoinHandle<()> {
    tierdesk_server::imap::spawn(
        store.clone(),
        tierdesk_server::imap::ImapConfig::default(),
        shutdown,
    )
}
