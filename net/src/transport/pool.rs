//! Outgoing connections: one per peer address, created on first use, replaced when closed.
//!
//! Each peer has a slot: an async mutex around the current connection. Whoever needs the
//! connection locks the slot; if it is empty or holds a closed connection, the holder connects
//! while the others wait on the lock, so concurrent first requests share one handshake. The
//! lock is held only while connecting or checking, never for a request.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use parking_lot::Mutex;

/// The slot of one peer.
pub(crate) type Slot = Arc<tokio::sync::Mutex<Option<quinn::Connection>>>;

#[derive(Debug, Default)]
pub(crate) struct Pool {
    slots: Mutex<HashMap<SocketAddr, Slot>>,
}

impl Pool {
    /// The slot of `addr`, created empty on first use.
    pub(crate) fn slot(&self, addr: SocketAddr) -> Slot {
        self.slots.lock().entry(addr).or_default().clone()
    }

    /// Called when the connection `stable_id` to `addr` has closed: empties its slot and drops
    /// the slot if nobody uses it, so the map does not grow with peers that went away. If the
    /// slot is busy (someone is connecting), it is left alone: its user replaces the connection.
    pub(crate) fn forget(&self, addr: SocketAddr, stable_id: usize) {
        let mut slots = self.slots.lock();
        let Some(slot) = slots.get(&addr).cloned() else { return };
        let Ok(mut current) = slot.try_lock() else { return };
        if current.as_ref().is_some_and(|conn| conn.stable_id() == stable_id) {
            *current = None;
        }
        // `slot` here and in the map: nobody else holds it, and it is empty.
        if current.is_none() && Arc::strong_count(&slot) == 2 {
            drop(current);
            slots.remove(&addr);
        }
    }

    /// How many peers have a slot.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.slots.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_slots_are_dropped_when_forgotten() {
        let pool = Pool::default();
        let addr: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let slot = pool.slot(addr);
        assert_eq!(pool.len(), 1);
        // In use elsewhere: kept.
        pool.forget(addr, 7);
        assert_eq!(pool.len(), 1);
        drop(slot);
        pool.forget(addr, 7);
        assert_eq!(pool.len(), 0);
    }
}
