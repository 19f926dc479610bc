//! The built-in SMTP listener: MTAs deliver customer mail straight to the
//! desk. It takes mail only for the addresses of enabled mailboxes (never a
//! relay), hands each message to [`crate::mail::ingest`], and answers `250`
//! only once the message is committed — so a crash or a database error
//! makes the sending MTA retry instead of losing the mail.
//!
//! Requests are parsed with `smtp-proto` (Stalwart's parser); this module
//! is the session around it: the transaction state, limits, STARTTLS.

mod session;

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tierdesk_store::Store;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

/// The listener's settings.
#[derive(Clone)]
pub struct SmtpConfig {
    /// The name it greets with and writes into `Received:`.
    pub hostname: String,
    /// Advertised as `SIZE`; larger messages are refused while they arrive.
    /// Each mailbox's own (smaller) limit applies on top.
    pub max_message_bytes: usize,
    /// Recipients per message.
    pub max_recipients: usize,
    /// A client silent this long is disconnected.
    pub idle_timeout: Duration,
    /// Connections served at once; more are told to come back later (421).
    pub max_connections: usize,
    /// STARTTLS is offered when set.
    pub tls: Option<TlsAcceptor>,
}

impl Default for SmtpConfig {
    fn default() -> Self {
        SmtpConfig {
            hostname: "localhost".into(),
            max_message_bytes: 25 * 1024 * 1024,
            max_recipients: 50,
            idle_timeout: Duration::from_secs(300),
            max_connections: 256,
            tls: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    #[error("cannot read {path}: {reason}")]
    Pem { path: String, reason: String },
    #[error("{0} holds no certificate")]
    NoCertificate(String),
    #[error("the certificate and key do not work together: {0}")]
    Rustls(#[from] rustls::Error),
}

/// A STARTTLS acceptor from a PEM certificate chain and private key.
pub fn tls_acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, TlsSetupError> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let pem_error = |path: &Path, e: rustls_pki_types::pem::Error| TlsSetupError::Pem {
        path: path.display().to_string(),
        reason: e.to_string(),
    };
    let chain = CertificateDer::pem_file_iter(cert)
        .map_err(|e| pem_error(cert, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(cert, e))?;
    if chain.is_empty() {
        return Err(TlsSetupError::NoCertificate(cert.display().to_string()));
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| pem_error(key, e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Serves SMTP on `listener` until `shutdown` completes; sessions still
/// running then get a few seconds to finish their message.
pub async fn serve(
    listener: TcpListener,
    store: Arc<dyn Store>,
    config: SmtpConfig,
    shutdown: impl Future<Output = ()>,
) {
    let config = Arc::new(config);
    let slots = Arc::new(Semaphore::new(config.max_connections.max(1)));
    let mut sessions = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        // Reap finished sessions so the set does not grow without bound.
        while sessions.try_join_next().is_some() {}
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                tracing::warn!(error = %e, "smtp accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let slot = slots.clone().try_acquire_owned();
        let store = store.clone();
        let config = config.clone();
        sessions.spawn(async move {
            match slot {
                Ok(_slot) => session::run(stream, peer, store, config).await,
                Err(_) => session::turn_away(stream, &config).await,
            }
        });
    }
    let grace = tokio::time::sleep(Duration::from_secs(10));
    tokio::pin!(grace);
    loop {
        tokio::select! {
            () = &mut grace => break,
            next = sessions.join_next() => if next.is_none() { break },
        }
    }
    sessions.abort_all();
}

/// Binds `addr` and serves it in the background; returns the bound address.
pub async fn spawn(
    addr: &str,
    store: Arc<dyn Store>,
    config: SmtpConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    tracing::info!(addr = %local, starttls = config.tls.is_some(), "SMTP intake is listening");
    Ok((
        local,
        tokio::spawn(serve(listener, store, config, shutdown)),
    ))
}
