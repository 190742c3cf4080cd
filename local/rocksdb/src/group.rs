//! Group commit: writers append to the WAL without fsync, then wait until an fsync covers
//! them. The first waiter while no fsync is under way becomes the leader: it waits for the
//! window so that more writers join, then fsyncs once for all of them; the followers wait.
//!
//! Invariant: `wait_synced` returns `Ok` only after an fsync that started after the caller's
//! write returned, so the write is durable.

use std::sync::Arc;
use std::time::Duration;

use meridian_local::StoreError;
use parking_lot::{Condvar, Mutex};

#[derive(Debug, Default)]
struct State {
    /// Tickets handed out to writers whose write has returned.
    requested: u64,
    /// Every ticket up to this one is durable.
    synced: u64,
    /// Tickets up to this one were covered by a failed fsync.
    failed_upto: u64,
    last_error: Option<String>,
    /// A leader is gathering writers or running the fsync.
    pending_fn: bool,
    shutdown: bool,
}

/// The group-commit coordinator. The fsync is run by the waiting writer elected leader, so
/// no thread is needed and nothing runs when nobody writes.
#[derive(Debug)]
pub struct GroupSync {
    inner: Arc<(Mutex<State>, Condvar)>,
    window: Duration,
}

impl GroupSync {
    /// A coordinator that gathers writers for up to `window` before each fsync.
    pub fn start(window: Duration) -> Self {
        Self { inner: Arc::new((Mutex::new(State::default()), Condvar::new())), window }
    }

    /// Called after a write returned: waits until an fsync that began after this call has
    /// completed. The first waiter with no fsync under way becomes the leader: it sleeps for
    /// the window (gathering followers), then runs `sync` for everyone.
    pub fn wait_synced(&self, mut sync: impl FnMut() -> Result<(), StoreError>) -> Result<(), StoreError> {
        let (lock, cv) = &*self.inner;
        let mut st = lock.lock();
        if st.shutdown {
            return Err(StoreError::Closed);
        }
        st.requested += 1;
        let ticket = st.requested;
        loop {
            if st.synced >= ticket {
                return Ok(());
            }
            if st.failed_upto >= ticket {
                return Err(StoreError::Engine(format!(
                    "WAL fsync failed: {}",
                    st.last_error.as_deref().unwrap_or("unknown")
                )));
            }
            if !st.pending_fn {
                // Become the leader.
                st.pending_fn = true;
                drop(st);
                std::thread::sleep(self.window);
                let mut guard = lock.lock();
                let target = guard.requested;
                drop(guard);
                let res = sync();
                guard = lock.lock();
                match &res {
                    Ok(()) => guard.synced = guard.synced.max(target),
                    Err(e) => {
                        guard.failed_upto = guard.failed_upto.max(target);
                        guard.last_error = Some(e.to_string());
                    }
                }
                guard.pending_fn = false;
                cv.notify_all();
                st = guard;
                continue;
            }
            cv.wait(&mut st);
        }
    }
}

impl Drop for GroupSync {
    fn drop(&mut self) {
        let (lock, cv) = &*self.inner;
        lock.lock().shutdown = true;
        cv.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::*;

    #[test]
    fn one_fsync_serves_a_group() {
        // A long window and a barrier: all eight writers arrive while the leader gathers.
        let g = Arc::new(GroupSync::start(Duration::from_millis(300)));
        let fsyncs = Arc::new(AtomicU64::new(0));
        let barrier = Arc::new(std::sync::Barrier::new(8));
        std::thread::scope(|s| {
            for _ in 0..8 {
                let (g, fsyncs, barrier) = (g.clone(), fsyncs.clone(), barrier.clone());
                s.spawn(move || {
                    barrier.wait();
                    g.wait_synced(|| {
                        fsyncs.fetch_add(1, Ordering::SeqCst);
                        Ok(())
                    })
                    .unwrap()
                });
            }
        });
        let n = fsyncs.load(Ordering::SeqCst);
        assert!((1..8).contains(&n), "8 writers within one window share fsyncs, got {n}");
    }

    #[test]
    fn a_failed_fsync_fails_its_writers() {
        let g = GroupSync::start(Duration::from_millis(1));
        let err = g.wait_synced(|| Err(StoreError::Engine("disk on fire".into()))).unwrap_err();
        assert!(err.to_string().contains("disk on fire"));
        g.wait_synced(|| Ok(())).unwrap();
    }
}
