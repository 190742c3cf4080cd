//! Meridian's Rust client.
//!
//! A [`Client`] knows every region and some of their nodes (given as [`RegionEndpoints`] or
//! read from the endpoints file `meridian dev` writes) and speaks the HTTP API of
//! `docs/api.md` to them:
//!
//! - **Nearest region.** At start and every `probe_interval` (10 s) it times `GET /healthz`
//!   on one node of each region (median of 3) and sends requests to the nearest region that is
//!   up ([`RegionTable`]).
//! - **Token-aware routing.** Inside a region it sends each request to the key's first live
//!   replica, found from the region's ring (`GET /api/v1/cluster/ring`, [`RingView`]) with the
//!   token the nodes use, [`meridian_local::token_of`]: the node that receives the request is
//!   a replica, so the write or read needs one hop less. Rings are fetched again when they are
//!   a few seconds old or a node failed.
//! - **Failover.** Connection failures, timeouts and `503`s (`unavailable`, `region_fenced`,
//!   `not_enough_nodes`, ...) move the operation to the next-nearest region after an
//!   exponential backoff with jitter; a failed region is avoided for `region_down_for` (5 s)
//!   and comes back through a successful probe. Every change of the serving region is kept
//!   ([`Client::failover_events`]) for RTO measurements.
//! - **Only safe retries** ([`retry`]): operations whose repetition converges (reads, LWW puts
//!   and deletes, set adds and removes, MVR writes) are retried; a counter increment whose
//!   outcome is unknown is not, and returns [`Error::Indeterminate`].
//! - **Session** ([`session`]): the greatest version of the session's writes (the session
//!   token, sent as `X-Session-Token`) and each written key's last version. A register read
//!   that returns an older version of a key the session wrote (after a failover, typically) is
//!   repeated for up to `session_wait` (2 s), then fails with [`Error::SessionNotSatisfied`].
//!
//! Plain HTTP only: the HTTP API has no TLS yet (it comes with the API's TLS; see
//! `docs/client.md`). The decision table of retries and failovers, and what each operation
//! guarantees, are in `docs/client.md`.
//!
//! ```no_run
//! # async fn example() -> Result<(), meridian_client::Error> {
//! use meridian_client::{Client, Consistency};
//!
//! let client = Client::builder()
//!     .endpoints_file("meridian-dev/endpoints.json")
//!     .consistency(Consistency::Quorum)
//!     .build()
//!     .await?;
//! client.put("default", "user:1", "Ada", None).await?;
//! let value = client.get("default", "user:1").await?;
//! assert_eq!(value.map(|v| v.bytes), Some(b"Ada".to_vec()));
//! client.incr("counters", "page:home", 1).await?;
//! # Ok(()) }
//! ```
//!
//! # Layout
//!
//! - [`client`]: [`Client`] and [`ClientBuilder`], the tokio shell: attempts, probes, ring
//!   fetches, the background task.
//! - [`config`]: [`ClientConfig`], [`RetryPolicy`], [`Consistency`], [`RegionEndpoints`], the
//!   endpoints file.
//! - [`regions`]: [`RegionTable`], the nearest-region and failover state machine (no I/O).
//! - [`ring`]: [`RingView`], the replicas of a key (no I/O).
//! - [`retry`]: which failures are retried and where (no I/O).
//! - [`session`]: [`Session`], read-your-writes bookkeeping (no I/O).
//! - [`api`]: the values operations return and how answers are read.
//! - [`version`]: [`Version`], the HLC version of writes.
//! - [`metrics`]: [`ClientMetrics`], [`MetricsSnapshot`].
//! - [`load`]: workloads, key distributions and the open-loop schedule of `meridian bench`.
//! - [`error`]: [`Error`], with stable codes.

pub mod api;
pub mod client;
pub mod config;
pub mod error;
pub mod load;
pub mod metrics;
pub mod regions;
pub mod retry;
pub mod ring;
pub mod session;
pub mod version;

pub use api::{encode_segment, MvrValue, Register, SetValue, Value, WriteAck};
pub use client::{Client, ClientBuilder, RegionInfo, SESSION_TOKEN_HEADER};
pub use config::{
    base_url, ClientConfig, Consistency, EndpointsFile, EndpointsNode, EndpointsRegion, RegionEndpoints, RetryPolicy,
};
pub use error::{Error, TransportKind};
pub use metrics::{ClientMetrics, MetricsSnapshot};
pub use regions::{RegionSwitch, RegionTable, SwitchReason};
pub use ring::{RingNode, RingView};
pub use session::Session;
pub use version::Version;
