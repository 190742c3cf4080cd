//! Wire constants (application error codes) and the send-stream guard. The framing is
//! described in the [`transport`](super) module documentation.

use std::future::Future;

use bytes::Bytes;
use quinn::{ClosedStream, SendStream, StoppedError, VarInt, WriteError};

/// Connection close code: the endpoint is shutting down.
pub(crate) const CLOSE_SHUTDOWN: VarInt = VarInt::from_u32(0x01);

/// Stream code quinn uses when a `RecvStream` is dropped before its end.
pub(crate) const QUINN_DROPPED: VarInt = VarInt::from_u32(0x00);
/// Stream code: the sender gave up (deadline, cancelled future).
pub(crate) const CANCELLED: VarInt = VarInt::from_u32(0x10);
/// Stream code: the frame exceeds the receiver's `max_frame_bytes` (or a response exceeded the
/// server's).
pub(crate) const FRAME_TOO_LARGE: VarInt = VarInt::from_u32(0x11);
/// Stream code: the request handler panicked.
pub(crate) const HANDLER_FAILED: VarInt = VarInt::from_u32(0x12);
/// Stream code: the endpoint is shutting down and takes no new requests.
pub(crate) const SHUTTING_DOWN: VarInt = VarInt::from_u32(0x13);

/// A send stream that is **reset** (code [`CANCELLED`]) when dropped unfinished.
///
/// quinn *finishes* a `SendStream` that is dropped, which would deliver a truncated payload as
/// if it were complete (for example when a request's deadline passes in the middle of a large
/// write, or a handler panics). This guard turns such drops into resets.
#[derive(Debug)]
pub(crate) struct SendGuard {
    stream: SendStream,
    armed: bool,
}

impl SendGuard {
    pub(crate) fn new(stream: SendStream) -> Self {
        Self { stream, armed: true }
    }

    pub(crate) async fn write_chunk(&mut self, data: Bytes) -> Result<(), WriteError> {
        self.stream.write_chunk(data).await
    }

    /// Resolves when the peer stops the stream, or has acknowledged all data of a finished one.
    pub(crate) fn stopped(&self) -> impl Future<Output = Result<Option<VarInt>, StoppedError>> + Send + 'static {
        self.stream.stopped()
    }

    /// Finishes the stream: the frame is complete.
    pub(crate) fn finish(&mut self) -> Result<(), ClosedStream> {
        self.armed = false;
        self.stream.finish()
    }

    /// Resets the stream with `code`: the frame is abandoned.
    pub(crate) fn reset(&mut self, code: VarInt) {
        self.armed = false;
        // Already finished or reset: nothing to do.
        let _ = self.stream.reset(code);
    }
}

impl Drop for SendGuard {
    fn drop(&mut self) {
        if self.armed {
            let _ = self.stream.reset(CANCELLED);
        }
    }
}
