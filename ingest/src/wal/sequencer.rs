//! Puts items that finish out of order back into WAL order.

use std::collections::BTreeMap;

use super::{Appended, Position};

/// Releases items in WAL position order. The pipeline's parse workers finish batches out of
/// order; the indexer inserts each finished batch with the [`Appended`] range of its record and
/// adds to the index only what [`Sequencer::pop`] releases. Then everything added lies before
/// [`Sequencer::next`] and nothing after it, which is exactly the `wal_position` to commit.
///
/// Every record from the starting position on must eventually be inserted or skipped
/// ([`Sequencer::skip`]: dropped before processing, or a gap between segments met during
/// replay), or the sequencer waits for it forever ([`Sequencer::waiting`] grows).
#[derive(Debug)]
pub struct Sequencer<T> {
    next: Position,
    /// Keyed by start position: (end, item or `None` for a skip).
    waiting: BTreeMap<u64, (Position, Option<T>)>,
}

impl<T> Sequencer<T> {
    /// A sequencer whose first record starts at `next` (the index's committed `wal_position`,
    /// or the WAL's oldest position on a fresh index).
    pub fn new(next: Position) -> Sequencer<T> {
        Sequencer {
            next,
            waiting: BTreeMap::new(),
        }
    }

    /// Everything before this position was released (or skipped); nothing after it was.
    pub fn next(&self) -> Position {
        self.next
    }

    /// Items (and skips) held back, waiting for an earlier record.
    pub fn waiting(&self) -> usize {
        self.waiting.len()
    }

    /// Offers the item of the record at `range`. Returns the item back when the record lies
    /// before [`Sequencer::next`] or was already offered (a duplicate: drop it).
    ///
    /// # Errors
    /// The item itself, for a duplicate.
    pub fn insert(&mut self, range: Appended, item: T) -> Result<(), T> {
        if range.start < self.next || self.waiting.contains_key(&range.start.0) {
            return Err(item);
        }
        self.waiting.insert(range.start.0, (range.end, Some(item)));
        Ok(())
    }

    /// Marks `range` as having nothing to release (a dropped record, or a gap).
    pub fn skip(&mut self, range: Appended) {
        if range.start >= self.next && range.end > range.start {
            self.waiting
                .entry(range.start.0)
                .or_insert((range.end, None));
        }
    }

    /// The next item in WAL order, if it has arrived. Skips are passed over.
    pub fn pop(&mut self) -> Option<(Appended, T)> {
        loop {
            let entry = self.waiting.first_entry()?;
            if *entry.key() != self.next.0 {
                return None;
            }
            let start = self.next;
            let (end, item) = entry.remove();
            self.next = end;
            if let Some(item) = item {
                return Some((Appended { start, end }, item));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(start: u64, end: u64) -> Appended {
        Appended {
            start: Position(start),
            end: Position(end),
        }
    }

    #[test]
    fn releases_in_position_order() {
        let mut sequencer = Sequencer::new(Position(100));
        assert!(sequencer.insert(range(130, 160), "c").is_ok());
        assert!(sequencer.pop().is_none());
        assert!(sequencer.insert(range(110, 130), "b").is_ok());
        assert!(sequencer.pop().is_none(), "100..110 has not arrived");
        sequencer.skip(range(100, 110));
        assert_eq!(sequencer.pop(), Some((range(110, 130), "b")));
        assert_eq!(sequencer.pop(), Some((range(130, 160), "c")));
        assert_eq!(sequencer.pop(), None);
        assert_eq!(sequencer.next(), Position(160));
        assert_eq!(sequencer.waiting(), 0);
    }

    #[test]
    fn refuses_duplicates_and_old_records() {
        let mut sequencer = Sequencer::new(Position(10));
        assert_eq!(sequencer.insert(range(0, 10), 1), Err(1));
        assert!(sequencer.insert(range(20, 30), 2).is_ok());
        assert_eq!(sequencer.insert(range(20, 30), 3), Err(3));
        sequencer.skip(range(10, 20));
        assert_eq!(sequencer.pop(), Some((range(20, 30), 2)));
        assert_eq!(sequencer.next(), Position(30));
    }
}
