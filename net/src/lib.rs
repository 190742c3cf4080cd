//! Meridian's QUIC stack: mutually authenticated QUIC (quinn + rustls on `ring`) for
//! intra-region RPC and gossip now, and for cross-region replication later.
//!
//! A node loads a [`TlsIdentity`] (CA roots, its certificate and key, and the name its peers
//! must be valid for), binds an [`Endpoint`] with it and an ALPN protocol, serves incoming
//! traffic with a [`Handler`], and sends requests ([`Endpoint::request`], with a deadline) and
//! one-way messages ([`Endpoint::send_message`]) to peers by address. Connections are pooled
//! (one per peer address) and re-created transparently when they close.
//!
//! ```no_run
//! # async fn example() -> Result<(), meridian_net::NetError> {
//! use std::path::Path;
//! use std::time::Duration;
//! use meridian_net::{tls, Endpoint, TlsIdentity, TransportOptions, RPC_ALPN};
//!
//! let identity = TlsIdentity::from_pem_files(
//!     Path::new("ca.pem"), Path::new("us-east/n1.pem"), Path::new("us-east/n1.key"),
//!     &tls::region_name("us-east")?,
//! )?;
//! let endpoint = Endpoint::bind("0.0.0.0:7000".parse().unwrap(), &identity, RPC_ALPN, TransportOptions::lan())?;
//! let response = endpoint.request("10.0.0.2:7000".parse().unwrap(), "ping".into(), Duration::from_secs(1)).await?;
//! # let _ = response; Ok(()) }
//! ```
//!
//! # Layout
//!
//! - [`tls`]: the identity naming scheme (`N.R.node.meridian`, `R.region.meridian`,
//!   `R.wan.meridian`), [`TlsIdentity`], and the quinn server and client configurations with
//!   their certificate checks (mutual TLS, or the unauthenticated insecure mode).
//! - [`certs`]: a development CA with rcgen: node and region certificates, and the dev bundle
//!   written by `meridian dev` / `meridian certs`.
//! - [`transport`]: the [`Endpoint`] (accept loop, connection pool, framing, deadlines, limits,
//!   shutdown) and the [`Handler`] trait; the framing and its error codes.
//! - [`config`]: [`TransportOptions`], with LAN and WAN presets.
//! - [`metrics`]: [`TlsStats`] (handshake refusals by reason) and [`TransportStats`].
//! - [`error`]: [`NetError`], with stable codes.
//! - `sim` (feature `sim`): quinn on turmoil's simulated UDP, for deterministic simulation.
//!
//! # Not here
//!
//! No payload encoding (callers version their own messages), no retries (a retried request
//! may run twice; callers decide, see [`NetError::is_retryable`]), no discovery (peers are
//! addresses).

pub mod certs;
pub mod config;
pub mod error;
pub mod metrics;
#[cfg(feature = "sim")]
pub mod sim;
pub mod tls;
pub mod trace;
pub mod transport;

pub use certs::{write_dev_bundle, CertAuthority, CertSpec, DevBundle, IssuedCert, NodeFiles};
pub use config::TransportOptions;
pub use error::{FrameLimit, NetError};
pub use futures::future::BoxFuture;
pub use metrics::{HandshakeRefusals, RefusalReason, TlsStats, TransportStats};
pub use tls::TlsIdentity;
pub use transport::{Endpoint, Handler};

/// The ALPN protocol of intra-region RPC and gossip (framing version 1).
pub const RPC_ALPN: &[u8] = b"meridian-rpc/1";
/// The ALPN protocol of cross-region replication (framing version 1).
pub const WAN_ALPN: &[u8] = b"meridian-wan/1";
