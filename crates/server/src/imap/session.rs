//! One mailbox's poller: the connection (plain, STARTTLS or TLS), the
//! folder sync and the wait between polls (IDLE or the interval).

use super::ImapConfig;
use crate::mail::{IngestError, ingest};
use async_imap::extensions::idle::IdleResponse;
use async_imap::types::{Capabilities, Fetch, UnsolicitedResponse};
use async_imap::{Client, Session};
use futures::TryStreamExt;
use std::collections::HashMap;
use std::fmt::Debug;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tierdesk_store::imap::{ImapAfter, ImapFolderState, ImapSettings, ImapTls};
use tierdesk_store::mail::{Mailbox, sha256_hex};
use tierdesk_store::{Store, StoreError};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::watch;

/// Why a poll failed.
#[derive(Debug, thiserror::Error)]
pub enum PollError {
    #[error("cannot connect to {address}: {reason}")]
    Connect { address: String, reason: String },
    #[error("TLS with {host} failed: {reason}")]
    Tls { host: String, reason: String },
    #[error("the server does not offer STARTTLS")]
    NoStartTls,
    #[error("the server closed the connection before greeting")]
    NoGreeting,
    #[error("login as {username} refused: {reason}")]
    Login { username: String, reason: String },
    #[error("the server did not answer within {0:?}")]
    Timeout(Duration),
    #[error("IMAP: {0}")]
    Imap(#[from] async_imap::error::Error),
    #[error("storing a message failed: {0}")]
    Store(#[from] StoreError),
    /// Another instance polls this mailbox now.
    #[error("another instance took over this mailbox")]
    LeaseLost,
    /// The mailbox was deleted, disabled or lost its IMAP settings.
    #[error("the mailbox is gone or its intake is off")]
    Gone,
}

/// The byte stream under a session: TCP, or TLS over it.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send + Debug {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + Debug> Io for T {}

type ImapSession = Session<Box<dyn Io>>;

/// Runs `step` with the configured time limit.
async fn within<T, E>(
    limit: Duration,
    step: impl Future<Output = Result<T, E>>,
) -> Result<T, PollError>
where
    PollError: From<E>,
{
    match tokio::time::timeout(limit, step).await {
        Ok(result) => result.map_err(PollError::from),
        Err(_) => Err(PollError::Timeout(limit)),
    }
}

/// Completes once the poller is told to stop (or its supervisor is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// The poller of one mailbox, until `stop` turns true or the mailbox is gone.
pub(super) async fn run(
    store: Arc<dyn Store>,
    mailbox: Mailbox,
    config: Arc<ImapConfig>,
    mut stop: watch::Receiver<bool>,
) {
    let Some(settings) = mailbox.spec.imap.clone() else {
        return;
    };
    let mut poller = Poller {
        store,
        mailbox_id: mailbox.id,
        max_bytes: mailbox.spec.max_message_bytes,
        settings,
        config,
        states: HashMap::new(),
        failures: 0,
        lease_task: format!("imap.mailbox.{}", mailbox.id),
        renewed: Instant::now(),
        new_mail: false,
    };
    loop {
        // With several instances on one database, one polls each mailbox.
        let result = match poller.lead().await {
            Ok(true) => poller.poll(&mut stop).await,
            Ok(false) => {
                tokio::select! {
                    () = stopped(&mut stop) => return,
                    () = tokio::time::sleep(poller.config.lead_retry) => {}
                }
                continue;
            }
            Err(e) => Err(e),
        };
        match result {
            Ok(()) => {
                poller.resign().await;
                return;
            }
            Err(PollError::Gone) => {
                tracing::info!(
                    mailbox = poller.mailbox_id,
                    "IMAP poller ends: the mailbox is gone or off"
                );
                poller.resign().await;
                return;
            }
            Err(PollError::LeaseLost) => {
                tracing::info!(
                    mailbox = poller.mailbox_id,
                    "IMAP: another instance polls this mailbox now"
                );
            }
            Err(e) => {
                poller.failures = poller.failures.saturating_add(1);
                let wait = poller.config.backoff(poller.failures);
                tracing::warn!(
                    mailbox = poller.mailbox_id,
                    host = %poller.settings.host,
                    error = %e,
                    failures = poller.failures,
                    retry_in_seconds = wait.as_secs(),
                    "IMAP poll failed"
                );
                if let Err(gone) = poller.record_failure(&e.to_string()).await {
                    tracing::info!(mailbox = poller.mailbox_id, error = %gone, "IMAP poller ends");
                    return;
                }
                tokio::select! {
                    () = stopped(&mut stop) => return,
                    () = tokio::time::sleep(wait) => {}
                }
            }
        }
    }
}

struct Poller {
    store: Arc<dyn Store>,
    mailbox_id: i64,
    max_bytes: u64,
    settings: ImapSettings,
    config: Arc<ImapConfig>,
    /// Each folder's poll state, as last saved.
    states: HashMap<String, ImapFolderState>,
    /// Failed sessions in a row.
    failures: u32,
    /// The lease that makes this the one instance polling the mailbox.
    lease_task: String,
    renewed: Instant,
    /// The server announced a new message during this sync.
    new_mail: bool,
}

impl Poller {
    fn limit(&self) -> Duration {
        self.config.timeout
    }

    async fn load_states(&mut self) -> Result<(), PollError> {
        let saved = self.store.imap_folders(self.mailbox_id).await?;
        self.states = saved.into_iter().map(|s| (s.folder.clone(), s)).collect();
        Ok(())
    }

    fn state(&self, folder: &str) -> ImapFolderState {
        self.states
            .get(folder)
            .cloned()
            .unwrap_or_else(|| ImapFolderState::new(self.mailbox_id, folder))
    }

    async fn save(&mut self, state: ImapFolderState) -> Result<(), PollError> {
        match self.store.save_imap_folder(&state).await {
            Ok(()) => {
                self.states.insert(state.folder.clone(), state);
                Ok(())
            }
            Err(StoreError::NotFound(_)) => Err(PollError::Gone),
            Err(e) => Err(e.into()),
        }
    }

    /// A failed session counts against every folder of the mailbox.
    async fn record_failure(&mut self, error: &str) -> Result<(), PollError> {
        if let Ok(saved) = self.store.imap_folders(self.mailbox_id).await {
            self.states = saved.into_iter().map(|s| (s.folder.clone(), s)).collect();
        }
        let now = crate::now();
        for folder in self.settings.folders.clone() {
            let mut state = self.state(&folder);
            state.last_poll_at = Some(now);
            state.consecutive_failures += 1;
            state.record_error(error, now);
            match self.save(state).await {
                Ok(()) => {}
                Err(PollError::Gone) => return Err(PollError::Gone),
                // The database is down too: the log has it.
                Err(_) => {}
            }
        }
        Ok(())
    }

    /// One session: connect, then sync every folder and wait, again and
    /// again, until stopped (`Ok`) or something fails (`Err`).
    async fn poll(&mut self, stop: &mut watch::Receiver<bool>) -> Result<(), PollError> {
        self.load_states().await?;
        let mut session = within(self.limit(), connect(&self.settings, self.limit())).await?;
        let capabilities = within(self.limit(), session.capabilities()).await?;
        let idle = self.settings.idle && capabilities.has_str("IDLE");
        tracing::debug!(mailbox = self.mailbox_id, idle, "IMAP: connected");
        let interval = Duration::from_secs(u64::from(self.settings.poll_interval_seconds));
        // Waits end at least this often to renew the lease.
        let renew_every = (self.config.lease / 3).max(Duration::from_millis(100));
        let mut next_sync = Instant::now();
        let mut woke = true;
        loop {
            if woke || Instant::now() >= next_sync {
                // What the server announced before this sync, it sees.
                new_mail(&session);
                self.new_mail = false;
                for folder in self.settings.folders.clone() {
                    if *stop.borrow() {
                        break;
                    }
                    self.keep_lease().await?;
                    self.sync_folder(&mut session, &capabilities, &folder, stop)
                        .await?;
                }
                self.failures = 0;
                next_sync = Instant::now() + interval;
                // IDLE watches the selected folder: the first one. Others
                // are polled when the interval has passed.
                if idle
                    && self.settings.folders.len() > 1
                    && let Some(first) = self.settings.folders.first()
                {
                    within(self.limit(), session.select(first)).await?;
                }
                // Mail that arrived while syncing was announced then, not
                // in the IDLE to come: sync again at once.
                if self.new_mail || new_mail(&session) {
                    woke = true;
                    continue;
                }
            }
            self.keep_lease().await?;
            if *stop.borrow() {
                let _ = within(Duration::from_secs(5), session.logout()).await;
                return Ok(());
            }
            let wait = next_sync
                .saturating_duration_since(Instant::now())
                .min(renew_every)
                .max(Duration::from_millis(10));
            let stopping;
            if idle {
                let mut handle = session.idle();
                within(self.limit(), handle.init()).await?;
                tracing::debug!(mailbox = self.mailbox_id, ?wait, "IMAP: idling");
                (woke, stopping) = {
                    let (wait, _interrupt) = handle.wait_with_timeout(wait);
                    tokio::select! {
                        response = wait => {
                            (matches!(response?, IdleResponse::NewData(_)), false)
                        }
                        () = stopped(stop) => (false, true),
                    }
                };
                session = within(self.limit(), handle.done()).await?;
                // New mail announced as the IDLE ended comes with DONE's answer.
                woke |= new_mail(&session);
                tracing::debug!(mailbox = self.mailbox_id, woke, "IMAP: idle ended");
            } else {
                woke = false;
                stopping = tokio::select! {
                    () = tokio::time::sleep(wait) => false,
                    () = stopped(stop) => true,
                };
            }
            if stopping {
                let _ = within(Duration::from_secs(5), session.logout()).await;
                return Ok(());
            }
        }
    }

    /// Becomes the one instance polling this mailbox, unless another one is.
    async fn lead(&mut self) -> Result<bool, PollError> {
        let leading = self
            .store
            .try_lead(
                &self.lease_task,
                &self.config.owner,
                crate::now(),
                self.config.lease,
            )
            .await?;
        if leading {
            self.renewed = Instant::now();
        }
        Ok(leading)
    }

    /// Renews the lease once a third of it has passed; `LeaseLost` when
    /// another instance has taken over.
    async fn keep_lease(&mut self) -> Result<(), PollError> {
        if self.renewed.elapsed() < self.config.lease / 3 {
            return Ok(());
        }
        if self
            .store
            .renew_lead(
                &self.lease_task,
                &self.config.owner,
                crate::now(),
                self.config.lease,
            )
            .await?
        {
            self.renewed = Instant::now();
            Ok(())
        } else {
            Err(PollError::LeaseLost)
        }
    }

    async fn resign(&self) {
        let _ = self
            .store
            .resign_lead(&self.lease_task, &self.config.owner)
            .await;
    }

    /// Takes every new message of one folder. A folder the server refuses
    /// to select is recorded on that folder and the others go on.
    async fn sync_folder(
        &mut self,
        session: &mut ImapSession,
        capabilities: &Capabilities,
        folder: &str,
        stop: &watch::Receiver<bool>,
    ) -> Result<(), PollError> {
        let mut state = self.state(folder);
        let started = crate::now();
        state.last_poll_at = Some(started);
        let selected = match within(self.limit(), session.select(folder)).await {
            Ok(selected) => selected,
            Err(PollError::Imap(
                async_imap::error::Error::No(reason) | async_imap::error::Error::Bad(reason),
            )) => {
                tracing::warn!(mailbox = self.mailbox_id, folder, %reason, "IMAP: cannot select the folder");
                state.consecutive_failures += 1;
                state.record_error(&format!("cannot select {folder}: {reason}"), started);
                return self.save(state).await;
            }
            Err(e) => return Err(e),
        };
        let validity = selected.uid_validity.map(i64::from);
        if state.uidvalidity.is_some() && state.uidvalidity != validity {
            tracing::warn!(
                mailbox = self.mailbox_id,
                folder,
                was = ?state.uidvalidity,
                now = ?validity,
                "IMAP: UIDVALIDITY changed; reading the folder again (nothing is stored twice)"
            );
            state.last_uid = 0;
        }
        state.uidvalidity = validity;
        if selected.exists > 0 {
            let from = u32::try_from(state.last_uid.saturating_add(1)).unwrap_or(u32::MAX);
            // With `seen`, a message flagged \Seen has been dealt with (by
            // us, or by a person reading the account).
            let query = match self.settings.after {
                ImapAfter::Seen => format!("UID {from}:* UNSEEN UNDELETED"),
                ImapAfter::Move(_) | ImapAfter::Delete => format!("UID {from}:* UNDELETED"),
            };
            let found = within(self.limit(), session.uid_search(&query)).await?;
            // `N:*` always matches the highest UID, even one below N.
            let mut uids: Vec<u32> = found
                .into_iter()
                .filter(|uid| i64::from(*uid) > state.last_uid)
                .collect();
            uids.sort_unstable();
            for uid in uids {
                if *stop.borrow() {
                    break;
                }
                self.keep_lease().await?;
                self.take(session, capabilities, &mut state, uid).await?;
                // Read the announcements as they come: the channel drops
                // what does not fit.
                self.new_mail |= new_mail(session);
            }
        }
        tracing::debug!(
            mailbox = self.mailbox_id,
            folder,
            last_uid = state.last_uid,
            "IMAP: folder synced"
        );
        state.last_success_at = Some(crate::now());
        state.consecutive_failures = 0;
        self.save(state).await
    }

    /// One message: size, body, ingest, then the after-action, then its UID
    /// is saved.
    async fn take(
        &mut self,
        session: &mut ImapSession,
        capabilities: &Capabilities,
        state: &mut ImapFolderState,
        uid: u32,
    ) -> Result<(), PollError> {
        let folder = state.folder.clone();
        let sizes = fetch(session, uid, "(UID RFC822.SIZE)", self.limit()).await?;
        let Some(size) = sizes.iter().find(|f| f.uid == Some(uid)).map(|f| f.size) else {
            // Expunged since the search.
            state.last_uid = i64::from(uid);
            return self.save(state.clone()).await;
        };
        let size = size.map_or(0, u64::from);
        if size > self.max_bytes {
            let error = format!(
                "message UID {uid} in {folder} is {size} bytes, over this mailbox's \
                 max_message_bytes ({}): skipped and left on the server",
                self.max_bytes
            );
            tracing::warn!(
                mailbox = self.mailbox_id,
                folder,
                uid,
                size,
                "IMAP: message too large, skipped"
            );
            state.record_error(&error, crate::now());
            state.last_uid = i64::from(uid);
            return self.save(state.clone()).await;
        }
        let bodies = fetch(session, uid, "(UID BODY.PEEK[])", self.limit()).await?;
        let Some(raw) = bodies
            .iter()
            .find(|f| f.uid == Some(uid))
            .and_then(|f| f.body())
            .map(<[u8]>::to_vec)
        else {
            state.last_uid = i64::from(uid);
            return self.save(state.clone()).await;
        };
        let seen_before = self
            .store
            .inbound_raw_seen(self.mailbox_id, &sha256_hex(&raw))
            .await?;
        if !seen_before {
            match ingest(self.store.as_ref(), self.mailbox_id, raw, crate::now()).await {
                Ok(outcome) => tracing::info!(
                    mailbox = self.mailbox_id,
                    folder,
                    uid,
                    outcome = outcome.name(),
                    ticket = ?outcome.ticket().map(|t| t.0),
                    "IMAP: message taken"
                ),
                Err(IngestError::NoMailbox(_)) => return Err(PollError::Gone),
                Err(IngestError::Store(StoreError::Invalid {
                    field: "mailbox", ..
                })) => {
                    return Err(PollError::Gone);
                }
                // This message can never be taken: record it and go on, so
                // it does not stall the folder. It stays on the server.
                Err(
                    e @ (IngestError::TooLarge { .. }
                    | IngestError::Unreadable(_)
                    | IngestError::Store(StoreError::Invalid { .. })),
                ) => {
                    tracing::warn!(mailbox = self.mailbox_id, folder, uid, error = %e, "IMAP: message refused, skipped");
                    state.record_error(
                        &format!("message UID {uid} in {folder} was refused and skipped: {e}"),
                        crate::now(),
                    );
                    state.last_uid = i64::from(uid);
                    return self.save(state.clone()).await;
                }
                // The database: try again later, from this message.
                Err(IngestError::Store(e)) => return Err(e.into()),
            }
        }
        // Committed: only now may the server forget it.
        self.after(session, capabilities, uid).await?;
        state.last_uid = i64::from(uid);
        self.save(state.clone()).await
    }

    async fn after(
        &self,
        session: &mut ImapSession,
        capabilities: &Capabilities,
        uid: u32,
    ) -> Result<(), PollError> {
        let limit = self.limit();
        let set = uid.to_string();
        match &self.settings.after {
            ImapAfter::Seen => flag(session, &set, "\\Seen", limit).await,
            ImapAfter::Move(target) if capabilities.has_str("MOVE") => {
                within(limit, session.uid_mv(&set, target)).await
            }
            ImapAfter::Move(target) => {
                within(limit, session.uid_copy(&set, target)).await?;
                flag(session, &set, "\\Deleted", limit).await?;
                expunge(session, capabilities, &set, limit).await
            }
            ImapAfter::Delete => {
                flag(session, &set, "\\Deleted", limit).await?;
                expunge(session, capabilities, &set, limit).await
            }
        }
    }
}

/// Reads the responses the server sent unasked (between and during our
/// commands); true when one announced a new message (EXISTS or RECENT).
fn new_mail(session: &ImapSession) -> bool {
    let mut announced = false;
    while let Ok(response) = session.unsolicited_responses.try_recv() {
        announced |= matches!(
            response,
            UnsolicitedResponse::Exists(_) | UnsolicitedResponse::Recent(_)
        );
    }
    announced
}

async fn fetch(
    session: &mut ImapSession,
    uid: u32,
    query: &str,
    limit: Duration,
) -> Result<Vec<Fetch>, PollError> {
    within(limit, async {
        session
            .uid_fetch(uid.to_string(), query)
            .await?
            .try_collect::<Vec<Fetch>>()
            .await
    })
    .await
}

async fn flag(
    session: &mut ImapSession,
    set: &str,
    flag: &str,
    limit: Duration,
) -> Result<(), PollError> {
    within(limit, async {
        session
            .uid_store(set, format!("+FLAGS.SILENT ({flag})"))
            .await?
            .try_collect::<Vec<Fetch>>()
            .await
            .map(|_| ())
    })
    .await
}

/// Expunges `set` only (UID EXPUNGE) when the server has UIDPLUS; else
/// every message flagged `\Deleted` in the folder.
async fn expunge(
    session: &mut ImapSession,
    capabilities: &Capabilities,
    set: &str,
    limit: Duration,
) -> Result<(), PollError> {
    if capabilities.has_str("UIDPLUS") {
        within(limit, async {
            session
                .uid_expunge(set)
                .await?
                .try_collect::<Vec<_>>()
                .await
                .map(|_| ())
        })
        .await
    } else {
        within(limit, async {
            session
                .expunge()
                .await?
                .try_collect::<Vec<_>>()
                .await
                .map(|_| ())
        })
        .await
    }
}

/// Trusts the Mozilla roots, and the CAs in `ca_file` when given.
fn tls_connector(ca_file: Option<&str>) -> Result<tokio_rustls::TlsConnector, String> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(file) = ca_file {
        let certs = CertificateDer::pem_file_iter(file)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .map_err(|e| format!("cannot read ca_file {file}: {e}"))?;
        if certs.is_empty() {
            return Err(format!("ca_file {file} holds no certificate"));
        }
        for cert in certs {
            roots
                .add(cert)
                .map_err(|e| format!("ca_file {file}: {e}"))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

async fn tls(host: &str, ca_file: Option<&str>, tcp: TcpStream) -> Result<Box<dyn Io>, PollError> {
    let failed = |reason: String| PollError::Tls {
        host: host.to_string(),
        reason,
    };
    let name = rustls_pki_types::ServerName::try_from(host.to_string())
        .map_err(|e| failed(e.to_string()))?;
    let connector = tls_connector(ca_file).map_err(failed)?;
    let stream = connector
        .connect(name, tcp)
        .await
        .map_err(|e| failed(e.to_string()))?;
    Ok(Box::new(stream))
}

async fn greeting<T: AsyncRead + AsyncWrite + Unpin + Send + Debug>(
    client: &mut Client<T>,
) -> Result<(), PollError> {
    match client.read_response().await {
        Ok(Some(_)) => Ok(()),
        Ok(None) => Err(PollError::NoGreeting),
        Err(e) => Err(async_imap::error::Error::Io(e).into()),
    }
}

/// Connects, secures the connection as configured and logs in.
async fn connect(settings: &ImapSettings, limit: Duration) -> Result<ImapSession, PollError> {
    let port = settings.port();
    let address = format!("{}:{port}", settings.host);
    let tcp = within(limit, async {
        TcpStream::connect((settings.host.as_str(), port))
            .await
            .map_err(|e| PollError::Connect {
                address: address.clone(),
                reason: e.to_string(),
            })
    })
    .await?;
    let _ = tcp.set_nodelay(true);
    let client: Client<Box<dyn Io>> = match settings.tls {
        ImapTls::None => {
            let mut client = Client::new(Box::new(tcp) as Box<dyn Io>);
            greeting(&mut client).await?;
            client
        }
        ImapTls::Tls => {
            let mut client =
                Client::new(tls(&settings.host, settings.ca_file.as_deref(), tcp).await?);
            greeting(&mut client).await?;
            client
        }
        ImapTls::Starttls => {
            let mut client = Client::new(tcp);
            greeting(&mut client).await?;
            match client.run_command_and_check_ok("STARTTLS", None).await {
                Ok(()) => {}
                Err(async_imap::error::Error::No(_) | async_imap::error::Error::Bad(_)) => {
                    return Err(PollError::NoStartTls);
                }
                Err(e) => return Err(e.into()),
            }
            Client::new(
                tls(
                    &settings.host,
                    settings.ca_file.as_deref(),
                    client.into_inner(),
                )
                .await?,
            )
        }
    };
    let password = settings.password.clone().unwrap_or_default();
    client
        .login(&settings.username, &password)
        .await
        .map_err(|(e, _)| PollError::Login {
            username: settings.username.clone(),
            reason: e.to_string(),
        })
}
