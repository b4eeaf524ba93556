//! Bounded batch queues between the async listeners and the pipeline's OS threads.
//!
//! A [`BatchQueue`] is a lock-free bounded MPMC array queue (crossbeam) plus a `tokio::sync::Notify`
//! so that async senders can wait for room without blocking a runtime thread:
//! - [`BatchQueue::try_push`] hands the batch back when the queue is full (UDP counts a drop, HTTP
//!   answers 429);
//! - [`BatchQueue::push`] waits for room (TCP: the connection's reads pause, which is the
//!   backpressure a TCP sender feels);
//! - consumers are OS threads calling [`BatchQueue::pop_timeout`]; every successful pop wakes the
//!   waiting senders.
//!
//! Lost wake-ups are impossible: a waiting sender registers interest (`Notified::enable`) before
//! it retries the push, so a pop that happens between the failed push and the wait still wakes it.
//!
//! **Memory budget.** Counting batches bounds memory only as well as batches are small, and an
//! HTTP batch can be a whole 16 MiB body. A queue made with [`BatchQueue::with_budget`] also
//! weighs each item (its bytes, estimated by the caller's `weigh` function) against a
//! [`MemoryBudget`] shared with the other queues and with HTTP bodies in flight:
//! - an [`Admission::Enforced`] queue (the listeners' queue) is *full* when the item would take
//!   the budget past its limit, exactly as when it holds `capacity` batches: TCP pauses, HTTP
//!   gets 429, UDP drops and counts;
//! - an [`Admission::Counted`] queue (between pipeline stages) counts its items in the budget but
//!   never refuses for it, so the stages downstream of admission cannot deadlock on memory that
//!   only they can free; its batch capacity bounds it.
//!
//! An item is always admitted into an empty budget, so a single item larger than the whole
//! budget cannot wedge a queue. Memory given back to the budget wakes waiting senders of every
//! queue that shares it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TrySendError};
use tokio::sync::Notify;

/// Why a push did not happen; the batch is handed back.
#[derive(Debug)]
pub enum PushError<T> {
    Full(T),
    Closed(T),
}

impl<T> PushError<T> {
    pub fn into_inner(self) -> T {
        match self {
            PushError::Full(item) | PushError::Closed(item) => item,
        }
    }
}

/// Why a pop returned nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PopError {
    /// Nothing arrived within the timeout.
    Timeout,
    /// The queue is closed and drained.
    Closed,
}

/// A byte budget shared by queues and by HTTP bodies in flight.
#[derive(Debug)]
pub struct MemoryBudget {
    limit: usize,
    used: AtomicUsize,
    refusals: AtomicU64,
    /// Woken when memory is given back.
    room: Notify,
}

impl MemoryBudget {
    /// A budget of `limit` bytes (at least 1).
    pub fn new(limit: usize) -> Arc<MemoryBudget> {
        Arc::new(MemoryBudget {
            limit: limit.max(1),
            used: AtomicUsize::new(0),
            refusals: AtomicU64::new(0),
            room: Notify::new(),
        })
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Bytes held now.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    /// Admissions refused for lack of memory so far.
    pub fn refusals(&self) -> u64 {
        self.refusals.load(Ordering::Relaxed)
    }

    /// Holds `bytes` until the reservation is dropped, if they fit (or the budget is empty).
    pub fn try_reserve(self: &Arc<Self>, bytes: usize) -> Option<Reservation> {
        self.try_take(bytes).then(|| Reservation {
            budget: Arc::clone(self),
            bytes,
        })
    }

    /// Takes `bytes` if they fit, or if nothing is held; counts a refusal otherwise.
    fn try_take(&self, bytes: usize) -> bool {
        let taken = self
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |used| {
                (used == 0 || used.saturating_add(bytes) <= self.limit).then(|| used + bytes)
            })
            .is_ok();
        if !taken {
            self.refusals.fetch_add(1, Ordering::Relaxed);
        }
        taken
    }

    /// Takes `bytes` whether or not they fit.
    fn take(&self, bytes: usize) {
        self.used.fetch_add(bytes, Ordering::AcqRel);
    }

    fn give_back(&self, bytes: usize) {
        if bytes != 0 {
            self.used.fetch_sub(bytes, Ordering::AcqRel);
            self.room.notify_waiters();
        }
    }
}

/// Bytes held in a [`MemoryBudget`]; dropping it gives them back.
#[derive(Debug)]
pub struct Reservation {
    budget: Arc<MemoryBudget>,
    bytes: usize,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.budget.give_back(self.bytes);
    }
}

/// Whether a queue refuses items that do not fit its [`MemoryBudget`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Full when the budget is spent (the listeners' queue).
    Enforced,
    /// Counted in the budget, bounded by batch count only (queues between pipeline stages).
    Counted,
}

struct Shared {
    room: Notify,
    closed: AtomicBool,
}

struct Budgeted<T> {
    budget: Arc<MemoryBudget>,
    weigh: fn(&T) -> usize,
    admission: Admission,
}

/// A bounded queue of batches. Cloning gives another handle to the same queue.
pub struct BatchQueue<T> {
    sender: Sender<(T, usize)>,
    receiver: Receiver<(T, usize)>,
    shared: Arc<Shared>,
    capacity: usize,
    budget: Option<Arc<Budgeted<T>>>,
}

impl<T> Clone for BatchQueue<T> {
    fn clone(&self) -> Self {
        BatchQueue {
            sender: self.sender.clone(),
            receiver: self.receiver.clone(),
            shared: Arc::clone(&self.shared),
            capacity: self.capacity,
            budget: self.budget.clone(),
        }
    }
}

impl<T> std::fmt::Debug for BatchQueue<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchQueue")
            .field("len", &self.receiver.len())
            .field("capacity", &self.capacity)
            .field("closed", &self.is_closed())
            .finish()
    }
}

impl<T> BatchQueue<T> {
    /// A queue holding at most `capacity` batches (at least 1).
    pub fn new(capacity: usize) -> BatchQueue<T> {
        let capacity = capacity.max(1);
        let (sender, receiver) = crossbeam_channel::bounded(capacity);
        BatchQueue {
            sender,
            receiver,
            shared: Arc::new(Shared {
                room: Notify::new(),
                closed: AtomicBool::new(false),
            }),
            capacity,
            budget: None,
        }
    }

    /// A queue of at most `capacity` batches whose items, weighed by `weigh` (bytes), are held
    /// in `budget` while queued; see [`Admission`] for what a spent budget does.
    pub fn with_budget(
        capacity: usize,
        budget: Arc<MemoryBudget>,
        weigh: fn(&T) -> usize,
        admission: Admission,
    ) -> BatchQueue<T> {
        let mut queue = BatchQueue::new(capacity);
        queue.budget = Some(Arc::new(Budgeted {
            budget,
            weigh,
            admission,
        }));
        queue
    }

    /// Whether a push would find no room now (batches or memory).
    pub fn is_full(&self) -> bool {
        self.len() >= self.capacity
            || self.budget.as_ref().is_some_and(|budgeted| {
                budgeted.admission == Admission::Enforced
                    && budgeted.budget.used() >= budgeted.budget.limit()
            })
    }

    /// Weighs `item` and takes its bytes from the budget; `None` when an enforced budget has no
    /// room for it.
    fn take(&self, item: &T) -> Option<usize> {
        let Some(budgeted) = &self.budget else {
            return Some(0);
        };
        let weight = (budgeted.weigh)(item);
        match budgeted.admission {
            Admission::Enforced => budgeted.budget.try_take(weight).then_some(weight),
            Admission::Counted => {
                budgeted.budget.take(weight);
                Some(weight)
            }
        }
    }

    fn give_back(&self, weight: usize) {
        if let Some(budgeted) = &self.budget {
            budgeted.budget.give_back(weight);
        }
    }

    /// Hands a popped item out, giving its bytes back and waking waiting senders.
    fn popped(&self, (item, weight): (T, usize)) -> T {
        self.give_back(weight);
        self.shared.room.notify_waiters();
        item
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Batches waiting.
    pub fn len(&self) -> usize {
        self.receiver.len()
    }

    pub fn is_empty(&self) -> bool {
        self.receiver.is_empty()
    }

    /// Stops accepting pushes; consumers drain what is queued, then see [`PopError::Closed`].
    pub fn close(&self) {
        self.shared.closed.store(true, Ordering::SeqCst);
        self.shared.room.notify_waiters();
    }

    pub fn is_closed(&self) -> bool {
        self.shared.closed.load(Ordering::SeqCst)
    }

    /// Pushes without waiting; a full or closed queue hands the batch back.
    pub fn try_push(&self, item: T) -> Result<(), PushError<T>> {
        if self.is_closed() {
            return Err(PushError::Closed(item));
        }
        let Some(weight) = self.take(&item) else {
            return Err(PushError::Full(item));
        };
        match self.sender.try_send((item, weight)) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full((item, weight))) => {
                self.give_back(weight);
                Err(PushError::Full(item))
            }
            Err(TrySendError::Disconnected((item, weight))) => {
                self.give_back(weight);
                Err(PushError::Closed(item))
            }
        }
    }

    /// Pushes, waiting (asynchronously) for room. Fails only when the queue is closed.
    pub async fn push(&self, item: T) -> Result<(), PushError<T>> {
        let mut pending = item;
        loop {
            let room = self.shared.room.notified();
            tokio::pin!(room);
            room.as_mut().enable();
            // Memory given back by any queue sharing the budget is room too.
            let budget = self.budget.as_ref().map(|budgeted| &budgeted.budget);
            let mut memory_room = std::pin::pin!(budget.map(|budget| budget.room.notified()));
            if let Some(notified) = memory_room.as_mut().as_pin_mut() {
                notified.enable();
            }
            match self.try_push(pending) {
                Ok(()) => return Ok(()),
                Err(PushError::Closed(item)) => return Err(PushError::Closed(item)),
                Err(PushError::Full(item)) => pending = item,
            }
            let memory_freed = async {
                match memory_room.as_mut().as_pin_mut() {
                    Some(notified) => notified.await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = &mut room => {}
                () = memory_freed => {}
            }
        }
    }

    /// Pushes from an OS thread, blocking until there is room. Fails only when closed.
    pub fn push_blocking(&self, item: T) -> Result<(), PushError<T>> {
        if self.is_closed() {
            return Err(PushError::Closed(item));
        }
        // Blocking pushes happen between pipeline stages, where a budget only counts.
        let weight = self.budget.as_ref().map_or(0, |budgeted| {
            let weight = (budgeted.weigh)(&item);
            budgeted.budget.take(weight);
            weight
        });
        self.sender.send((item, weight)).map_err(|error| {
            let (item, weight) = error.into_inner();
            self.give_back(weight);
            PushError::Closed(item)
        })
    }

    /// Pops from an OS thread, waiting at most `timeout`. A closed queue still yields what it
    /// holds before reporting [`PopError::Closed`].
    pub fn pop_timeout(&self, timeout: Duration) -> Result<T, PopError> {
        match self.receiver.recv_timeout(timeout) {
            Ok(entry) => Ok(self.popped(entry)),
            Err(RecvTimeoutError::Timeout) => {
                if self.is_closed() && self.receiver.is_empty() {
                    Err(PopError::Closed)
                } else {
                    Err(PopError::Timeout)
                }
            }
            Err(RecvTimeoutError::Disconnected) => Err(PopError::Closed),
        }
    }

    /// Pops without waiting.
    pub fn try_pop(&self) -> Option<T> {
        let entry = self.receiver.try_recv().ok()?;
        Some(self.popped(entry))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_queue_hands_the_batch_back() {
        let queue = BatchQueue::new(1);
        queue.try_push(1).expect("room for one");
        match queue.try_push(2) {
            Err(PushError::Full(2)) => {}
            other => panic!("expected Full(2), got {other:?}"),
        }
        assert_eq!(queue.try_pop(), Some(1));
        queue.try_push(3).expect("room again");
    }

    #[test]
    fn closed_queue_drains_then_reports_closed() {
        let queue = BatchQueue::new(4);
        queue.try_push(1).expect("push");
        queue.close();
        assert!(matches!(queue.try_push(2), Err(PushError::Closed(2))));
        assert_eq!(queue.pop_timeout(Duration::from_millis(10)), Ok(1));
        assert_eq!(
            queue.pop_timeout(Duration::from_millis(10)),
            Err(PopError::Closed)
        );
    }

    #[test]
    fn async_push_waits_for_a_pop() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let queue = BatchQueue::new(1);
        queue.try_push(0).expect("first push");
        let consumer_queue = queue.clone();
        let consumer = std::thread::spawn(move || {
            let mut seen = Vec::new();
            while seen.len() < 50 {
                if let Ok(item) = consumer_queue.pop_timeout(Duration::from_secs(5)) {
                    seen.push(item);
                } else {
                    break;
                }
            }
            seen
        });
        runtime.block_on(async {
            for item in 1..50 {
                queue.push(item).await.expect("push waits for room");
            }
        });
        let seen = consumer.join().expect("consumer thread");
        assert_eq!(seen, (0..50).collect::<Vec<_>>());
    }

    fn weight_of(item: &usize) -> usize {
        *item
    }

    #[test]
    fn an_enforced_queue_is_full_when_the_budget_is_spent() {
        let budget = MemoryBudget::new(100);
        let admission =
            BatchQueue::with_budget(16, Arc::clone(&budget), weight_of, Admission::Enforced);
        let stage = BatchQueue::with_budget(16, Arc::clone(&budget), weight_of, Admission::Counted);
        admission.try_push(60).expect("fits");
        assert!(matches!(admission.try_push(50), Err(PushError::Full(50))));
        assert_eq!(budget.refusals(), 1);
        // A stage queue counts but never refuses.
        stage.try_push(70).expect("counted, not refused");
        assert_eq!(budget.used(), 130);
        assert!(admission.is_full());
        assert_eq!(stage.try_pop(), Some(70));
        assert_eq!(admission.try_pop(), Some(60));
        assert_eq!(budget.used(), 0);
        // An item bigger than the whole budget still passes alone.
        admission.try_push(500).expect("alone in an empty budget");
        assert!(matches!(admission.try_push(1), Err(PushError::Full(1))));
    }

    #[test]
    fn reservations_give_their_bytes_back_when_dropped() {
        let budget = MemoryBudget::new(10);
        let held = budget.try_reserve(8).expect("fits");
        assert!(budget.try_reserve(3).is_none());
        drop(held);
        assert_eq!(budget.used(), 0);
        assert!(budget.try_reserve(10).is_some());
    }

    #[test]
    fn a_waiting_sender_wakes_when_another_queue_frees_memory() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let budget = MemoryBudget::new(100);
        let admission =
            BatchQueue::with_budget(16, Arc::clone(&budget), weight_of, Admission::Enforced);
        let stage = BatchQueue::with_budget(16, Arc::clone(&budget), weight_of, Admission::Counted);
        stage.push_blocking(100).expect("counted");
        let consumer_stage = stage.clone();
        let consumer = std::thread::spawn(move || {
            // Frees the memory, whether the sender is already waiting or not yet.
            consumer_stage.pop_timeout(Duration::from_secs(10))
        });
        runtime.block_on(async {
            tokio::time::timeout(Duration::from_secs(10), admission.push(40))
                .await
                .expect("woken by the other queue's pop")
                .expect("pushed");
        });
        assert_eq!(consumer.join().expect("consumer"), Ok(100));
        assert_eq!(admission.try_pop(), Some(40));
    }
}
