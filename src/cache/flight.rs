//! Single-flight: concurrent misses for one key in one isolate share one computation.
//!
//! The leader runs the computation itself (its future need not be `Send` or `'static`); the
//! table only holds a shared receiver that followers await. The leader's guard removes the
//! table entry when it is dropped — after the write on success, at once on failure,
//! cancellation or panic — and dropping the sender unblocks followers, who then try to lead.
//! Errors are not shared: a follower whose leader failed runs its own computation, one at a
//! time, so a failing backend sees sequential retries rather than a stampede.

use std::{
    any::Any,
    collections::HashMap,
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc, Mutex, MutexGuard, PoisonError,
    },
};

use futures::{
    channel::oneshot,
    future::{FutureExt, Shared},
};

/// What followers await: the leader's value (`None`: "not found"), or `Canceled` when the
/// leader failed or was dropped.
pub(crate) type Waiter<T> = Shared<oneshot::Receiver<Option<T>>>;

struct Slot {
    id: u64,
    invalidated: Arc<AtomicBool>,
    /// A `Waiter<T>`; erased so one table serves every value type of a [`super::CacheState`].
    waiter: Box<dyn Any + Send + Sync>,
}

/// The in-flight table, keyed by full KV key.
#[derive(Default)]
pub(crate) struct Flights {
    next_id: AtomicU64,
    map: Mutex<HashMap<String, Slot>>,
}

pub(crate) enum Join<T> {
    /// Nobody computes this key: the caller now does.
    Lead(Leader<T>),
    /// Someone does: await their result.
    Wait(Waiter<T>),
    /// Someone computes this key as another type (two stores share a namespace): compute alone.
    Foreign,
}

impl Flights {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Slot>> {
        // The map is only ever touched in short non-panicking sections; a poisoned lock still
        // holds a consistent map.
        self.map.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Lead the computation of `key`, or join the one in flight.
    pub(crate) fn join<T: Clone + Send + Sync + 'static>(self: &Arc<Self>, key: &str) -> Join<T> {
        let mut map = self.lock();
        if let Some(slot) = map.get(key) {
            return match slot.waiter.downcast_ref::<Waiter<T>>() {
                Some(w) => Join::Wait(w.clone()),
                None => Join::Foreign,
            };
        }
        let (tx, rx) = oneshot::channel();
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let invalidated = Arc::new(AtomicBool::new(false));
        map.insert(
            key.to_string(),
            Slot {
                id,
                invalidated: Arc::clone(&invalidated),
                waiter: Box::new(rx.shared()),
            },
        );
        Join::Lead(Leader {
            flights: Arc::clone(self),
            key: key.to_string(),
            id,
            tx: Some(tx),
            invalidated,
        })
    }

    /// Tell the computation of `key` in flight (if any) not to write its result: the key was
    /// invalidated after it started, so the result may be built from outdated data.
    pub(crate) fn invalidate(&self, key: &str) {
        if let Some(slot) = self.lock().get(key) {
            slot.invalidated.store(true, Ordering::SeqCst);
        }
    }

    /// Computations in flight.
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }
}

/// The leader's guard. Dropping it ends the flight.
pub(crate) struct Leader<T> {
    flights: Arc<Flights>,
    key: String,
    id: u64,
    tx: Option<oneshot::Sender<Option<T>>>,
    invalidated: Arc<AtomicBool>,
}

impl<T> Leader<T> {
    /// Hand the result to the followers. The flight stays registered (late joiners get the
    /// value at once) until the guard is dropped after the write.
    pub(crate) fn publish(&mut self, value: Option<T>) {
        if let Some(tx) = self.tx.take() {
            // No receiver left is fine: followers may have been dropped.
            let _ = tx.send(value);
        }
    }

    /// True when the key was invalidated while this flight ran.
    pub(crate) fn invalidated(&self) -> bool {
        self.invalidated.load(Ordering::SeqCst)
    }
}

impl<T> Drop for Leader<T> {
    fn drop(&mut self) {
        // Remove the entry before `tx` is dropped (fields drop after this body), so followers
        // woken by the cancellation find the key free and one of them can lead.
        let removed = {
            let mut map = self.flights.lock();
            match map.get(&self.key) {
                Some(slot) if slot.id == self.id => map.remove(&self.key),
                _ => None,
            }
        };
        drop(removed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_caller_waits_and_gets_the_value() {
        let flights = Arc::new(Flights::default());
        let Join::Lead(mut leader) = flights.join::<u32>("k") else {
            panic!("first caller must lead")
        };
        let Join::Wait(waiter) = flights.join::<u32>("k") else {
            panic!("second caller must wait")
        };
        leader.publish(Some(7));
        assert_eq!(futures::executor::block_on(waiter), Ok(Some(7)));
        assert_eq!(flights.len(), 1, "entry stays until the guard drops");
        drop(leader);
        assert_eq!(flights.len(), 0);
    }

    #[test]
    fn dropped_leader_cancels_followers_and_frees_the_key() {
        let flights = Arc::new(Flights::default());
        let Join::Lead(leader) = flights.join::<u32>("k") else {
            panic!("first caller must lead")
        };
        let Join::Wait(waiter) = flights.join::<u32>("k") else {
            panic!("second caller must wait")
        };
        drop(leader);
        assert!(futures::executor::block_on(waiter).is_err());
        assert!(matches!(flights.join::<u32>("k"), Join::Lead(_)));
    }

    #[test]
    fn other_type_does_not_join() {
        let flights = Arc::new(Flights::default());
        let _leader = flights.join::<u32>("k");
        assert!(matches!(flights.join::<String>("k"), Join::Foreign));
    }

    #[test]
    fn invalidation_reaches_the_leader() {
        let flights = Arc::new(Flights::default());
        let Join::Lead(leader) = flights.join::<u32>("k") else {
            panic!("first caller must lead")
        };
        assert!(!leader.invalidated());
        flights.invalidate("k");
        assert!(leader.invalidated());
    }
}
