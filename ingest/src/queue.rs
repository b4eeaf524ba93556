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

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
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

struct Shared {
    room: Notify,
    closed: AtomicBool,
}

/// A bounded queue of batches. Cloning gives another handle to the same queue.
pub struct BatchQueue<T> {
    sender: Sender<T>,
    receiver: Receiver<T>,
    shared: Arc<Shared>,
    capacity: usize,
}

impl<T> Clone for BatchQueue<T> {
    fn clone(&self) -> Self {
        BatchQueue {
            sender: self.sender.clone(),
            receiver: self.receiver.clone(),
            shared: Arc::clone(&self.shared),
            capacity: self.capacity,
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
        }
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
        match self.sender.try_send(item) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(item)) => Err(PushError::Full(item)),
            Err(TrySendError::Disconnected(item)) => Err(PushError::Closed(item)),
        }
    }

    /// Pushes, waiting (asynchronously) for room. Fails only when the queue is closed.
    pub async fn push(&self, item: T) -> Result<(), PushError<T>> {
        let mut pending = item;
        loop {
            let room = self.shared.room.notified();
            tokio::pin!(room);
            room.as_mut().enable();
            match self.try_push(pending) {
                Ok(()) => return Ok(()),
                Err(PushError::Closed(item)) => return Err(PushError::Closed(item)),
                Err(PushError::Full(item)) => pending = item,
            }
            room.await;
        }
    }

    /// Pushes from an OS thread, blocking until there is room. Fails only when closed.
    pub fn push_blocking(&self, item: T) -> Result<(), PushError<T>> {
        if self.is_closed() {
            return Err(PushError::Closed(item));
        }
        self.sender
            .send(item)
            .map_err(|error| PushError::Closed(error.into_inner()))
    }

    /// Pops from an OS thread, waiting at most `timeout`. A closed queue still yields what it
    /// holds before reporting [`PopError::Closed`].
    pub fn pop_timeout(&self, timeout: Duration) -> Result<T, PopError> {
        match self.receiver.recv_timeout(timeout) {
            Ok(item) => {
                self.shared.room.notify_waiters();
                Ok(item)
            }
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
        let item = self.receiver.try_recv().ok()?;
        self.shared.room.notify_waiters();
        Some(item)
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
}
