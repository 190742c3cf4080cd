//! The server side: the accept loop, one task per connection, one task per stream.

use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;
use futures::FutureExt;
use quinn::{Connection, Incoming, ReadToEndError, RecvStream, SendStream};
use tokio::sync::OwnedSemaphorePermit;
use tracing::{debug, error, warn};

use super::failure;
use super::wire::{self, SendGuard};
use super::{Handler, Shared};
use crate::metrics::{Counters, RefusalReason};

/// Accepts incoming connections until the endpoint closes; each is handled in its own task.
pub(super) async fn accept_loop(shared: Arc<Shared>, handler: Arc<dyn Handler>) {
    while let Some(incoming) = shared.quinn.accept().await {
        tokio::spawn(handle_incoming(shared.clone(), handler.clone(), incoming));
    }
    debug!(local_addr = %shared.local_addr, "accept loop ended");
}

async fn handle_incoming(shared: Arc<Shared>, handler: Arc<dyn Handler>, incoming: Incoming) {
    let peer = incoming.remote_address();
    if shared.closing.load(Ordering::SeqCst) {
        incoming.refuse();
        return;
    }
    let connecting = match incoming.accept() {
        Ok(connecting) => connecting,
        Err(e) => {
            debug!(%peer, error = %e, "incoming connection failed before the handshake");
            return;
        }
    };
    let conn = match connecting.await {
        Ok(conn) => conn,
        Err(e) => {
            if failure::is_missing_client_cert(&e) {
                shared.tls_stats.record(RefusalReason::NoCertificate);
            }
            if failure::is_tls_refusal(&e) {
                warn!(%peer, reason = %e, "refused incoming connection: TLS handshake failed");
            } else {
                debug!(%peer, error = %e, "incoming handshake did not complete");
            }
            return;
        }
    };
    Counters::inc(&shared.counters.accepted);
    Counters::inc(&shared.counters.connections_open);
    debug!(%peer, id = conn.stable_id(), "accepted connection");
    serve_connection(&shared, &handler, &conn, peer).await;
    Counters::dec(&shared.counters.connections_open);
}

/// Accepts the connection's streams until it closes; each stream runs in its own task.
async fn serve_connection(shared: &Arc<Shared>, handler: &Arc<dyn Handler>, conn: &Connection, peer: SocketAddr) {
    loop {
        tokio::select! {
            stream = conn.accept_bi() => match stream {
                Ok((send, recv)) => {
                    tokio::spawn(serve_request(shared.clone(), handler.clone(), peer, send, recv));
                }
                Err(e) => {
                    debug!(%peer, reason = %e, "incoming connection closed");
                    return;
                }
            },
            stream = conn.accept_uni() => match stream {
                Ok(recv) => {
                    tokio::spawn(serve_message(shared.clone(), handler.clone(), peer, recv));
                }
                Err(e) => {
                    debug!(%peer, reason = %e, "incoming connection closed");
                    return;
                }
            },
        }
    }
}

/// Waits for a serving slot; `None` if the endpoint is shutting down (the caller refuses the
/// stream).
async fn admit(shared: &Shared) -> Option<OwnedSemaphorePermit> {
    let permit = shared.inflight.clone().acquire_owned().await.ok()?;
    if shared.closing.load(Ordering::SeqCst) {
        return None;
    }
    Some(permit)
}

async fn serve_request(
    shared: Arc<Shared>,
    handler: Arc<dyn Handler>,
    peer: SocketAddr,
    send: SendStream,
    mut recv: RecvStream,
) {
    let mut send = SendGuard::new(send);
    let Some(_permit) = admit(&shared).await else {
        let _ = recv.stop(wire::SHUTTING_DOWN);
        send.reset(wire::SHUTTING_DOWN);
        return;
    };
    let limit = shared.opts.max_frame_bytes;
    let payload = match recv.read_to_end(limit).await {
        Ok(payload) => Bytes::from(payload),
        Err(ReadToEndError::TooLong) => {
            Counters::inc(&shared.counters.frames_refused_oversized);
            warn!(%peer, limit, "refused a request larger than max_frame_bytes");
            let _ = recv.stop(wire::FRAME_TOO_LARGE);
            send.reset(wire::FRAME_TOO_LARGE);
            return;
        }
        Err(ReadToEndError::Read(e)) => {
            debug!(%peer, error = %e, "request stream failed before its end");
            return;
        }
    };
    Counters::inc(&shared.counters.requests_received);
    Counters::add(&shared.counters.bytes_in, payload.len());

    // The handler is called inside the future so that a panic in its synchronous part is
    // caught too.
    let call = AssertUnwindSafe(async move { handler.request(peer, payload).await }).catch_unwind();
    let requester_gone = send.stopped();
    let response = tokio::select! {
        outcome = call => match outcome {
            Ok(response) => response,
            Err(panic) => {
                Counters::inc(&shared.counters.handler_panics);
                error!(%peer, panic = failure::panic_message(panic.as_ref()), "request handler panicked");
                send.reset(wire::HANDLER_FAILED);
                return;
            }
        },
        _ = requester_gone => {
            debug!(%peer, "requester went away; handler cancelled");
            return;
        }
    };
    if response.len() > limit {
        Counters::inc(&shared.counters.frames_refused_oversized);
        error!(%peer, len = response.len(), limit, "handler response exceeds max_frame_bytes; not sent");
        send.reset(wire::FRAME_TOO_LARGE);
        return;
    }
    let len = response.len();
    if let Err(e) = send.write_chunk(response).await {
        debug!(%peer, error = %e, "could not send response");
        return;
    }
    let delivered = send.stopped();
    if send.finish().is_err() {
        return;
    }
    Counters::add(&shared.counters.bytes_out, len);
    // Keep the serving slot until the requester has acknowledged the response, so that
    // `shutdown`, which waits for all slots before closing connections, does not cut off
    // responses still in flight. Ends early if the connection is lost.
    let _ = delivered.await;
}

async fn serve_message(shared: Arc<Shared>, handler: Arc<dyn Handler>, peer: SocketAddr, mut recv: RecvStream) {
    let Some(_permit) = admit(&shared).await else {
        let _ = recv.stop(wire::SHUTTING_DOWN);
        return;
    };
    let limit = shared.opts.max_frame_bytes;
    match recv.read_to_end(limit).await {
        Ok(payload) => {
            Counters::inc(&shared.counters.messages_received);
            Counters::add(&shared.counters.bytes_in, payload.len());
            let payload = Bytes::from(payload);
            if let Err(panic) = std::panic::catch_unwind(AssertUnwindSafe(|| handler.message(peer, payload))) {
                Counters::inc(&shared.counters.handler_panics);
                error!(%peer, panic = failure::panic_message(panic.as_ref()), "message handler panicked");
            }
        }
        Err(ReadToEndError::TooLong) => {
            Counters::inc(&shared.counters.frames_refused_oversized);
            warn!(%peer, limit, "refused a message larger than max_frame_bytes");
            let _ = recv.stop(wire::FRAME_TOO_LARGE);
        }
        Err(ReadToEndError::Read(e)) => debug!(%peer, error = %e, "message stream failed before its end"),
    }
}
