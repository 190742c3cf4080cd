//! HTTPS for the API: a rustls server configuration from PEM files (`http.tls_cert`,
//! `http.tls_key`), and [`TlsListener`], an axum [`Listener`] that hands the server only
//! connections whose TLS handshake completed.
//!
//! Handshakes run in their own tasks, at most [`MAX_HANDSHAKES`] at once and each within
//! [`HANDSHAKE_TIMEOUT`], so that a slow or silent client cannot hold up the accept loop. A
//! client that does not speak TLS (plain HTTP to the HTTPS port) fails its handshake and its
//! connection is closed without an answer; failures are counted ([`TlsListener::failed_handshakes`])
//! and logged at debug level.

use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::serve::Listener;
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Semaphore};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

/// Longest a client may take to complete its TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Most handshakes in progress at once; more connections wait in the kernel's backlog.
pub const MAX_HANDSHAKES: usize = 256;

/// Why the API's TLS configuration could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    /// A PEM file could not be read or parsed.
    #[error("{what} {path}: {reason}")]
    Pem {
        /// Which file (`http.tls_cert`, `http.tls_key`).
        what: &'static str,
        /// Its path.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// rustls refused the certificate and key together (a key that is not the certificate's).
    #[error("http.tls_cert and http.tls_key: {0}")]
    Rustls(#[from] rustls::Error),
}

/// A server configuration (TLS 1.2 and 1.3 on ring, ALPN `http/1.1`, no client certificates)
/// serving the chain in `cert` with the key in `key`.
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, TlsSetupError> {
    let pem_error = |what: &'static str, path: &Path, reason: String| TlsSetupError::Pem {
        what,
        path: path.display().to_string(),
        reason,
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| pem_error("http.tls_cert", cert, e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| pem_error("http.tls_cert", cert, e.to_string()))?;
    if chain.is_empty() {
        return Err(pem_error("http.tls_cert", cert, "holds no CERTIFICATE".into()));
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| pem_error("http.tls_key", key, e.to_string()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A TCP listener whose connections are TLS streams: accepts, handshakes in the background,
/// and yields connections that completed their handshake. Dropping it stops accepting.
#[derive(Debug)]
pub struct TlsListener {
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
    failed: Arc<AtomicU64>,
    acceptor_task: tokio::task::JoinHandle<()>,
}

impl TlsListener {
    /// Serves TLS with `config` on `listener`.
    pub fn new(listener: TcpListener, config: Arc<ServerConfig>) -> io::Result<TlsListener> {
        let local = listener.local_addr()?;
        let (tx, ready) = mpsc::channel(64);
        let failed = Arc::new(AtomicU64::new(0));
        let acceptor_task = tokio::spawn(accept_loop(listener, TlsAcceptor::from(config), tx, Arc::clone(&failed)));
        Ok(TlsListener { ready, local, failed, acceptor_task })
    }

    /// Handshakes that failed or timed out so far.
    pub fn failed_handshakes(&self) -> u64 {
        self.failed.load(Ordering::Relaxed)
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.acceptor_task.abort();
    }
}

async fn accept_loop(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    ready: mpsc::Sender<(TlsStream<TcpStream>, SocketAddr)>,
    failed: Arc<AtomicU64>,
) {
    let permits = Arc::new(Semaphore::new(MAX_HANDSHAKES));
    loop {
        let Ok(permit) = Arc::clone(&permits).acquire_owned().await else { return };
        let (tcp, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                // Out of file descriptors and the like: pause rather than spin.
                tracing::warn!(error = %e, "HTTPS API: accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let acceptor = acceptor.clone();
        let ready = ready.clone();
        let failed = Arc::clone(&failed);
        tokio::spawn(async move {
            let outcome = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await;
            drop(permit);
            match outcome {
                Ok(Ok(stream)) => {
                    let _ = ready.send((stream, peer)).await;
                }
                Ok(Err(e)) => {
                    failed.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(%peer, error = %e, "HTTPS API: TLS handshake failed");
                }
                Err(_) => {
                    failed.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(%peer, "HTTPS API: TLS handshake timed out");
                }
            }
        });
    }
}

impl Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(conn) => conn,
            // The accept loop ended (only when the runtime shuts down): accept nothing more.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(self.local)
    }
}
