//! A hashed timing wheel on event time (Varghese & Lauck, scheme 6).
//!
//! Deadlines are nanoseconds of event time. A timer sits in slot `tick(deadline) % SLOTS`, with
//! its full deadline; advancing the wheel to a watermark visits only the slots whose ticks passed
//! (all slots at most once per advance) and hands back every timer whose deadline is before the
//! watermark. Timers for a later rotation stay where they are. Cost per advance:
//! `O(min(ticks passed, SLOTS) + timers visited)`.

/// Ticks are 2^30 ns (about 1.07 s).
const TICK_SHIFT: u32 = 30;
/// Slots in the wheel (one rotation is about 73 minutes).
const SLOTS: usize = 4096;

/// One pending timer: a deadline and what it is for.
#[derive(Debug, Clone)]
pub(crate) struct Timer<T> {
    pub deadline: i64,
    pub item: T,
}

#[derive(Debug)]
pub(crate) struct TimerWheel<T> {
    slots: Vec<Vec<Timer<T>>>,
    /// Every tick before this one has been visited (None until the first advance).
    next_tick: Option<i64>,
    len: usize,
}

fn tick(time: i64) -> i64 {
    time >> TICK_SHIFT
}

fn slot(tick: i64) -> usize {
    (tick.rem_euclid(SLOTS as i64)) as usize
}

impl<T> TimerWheel<T> {
    pub fn new() -> TimerWheel<T> {
        TimerWheel {
            slots: (0..SLOTS).map(|_| Vec::new()).collect(),
            next_tick: None,
            len: 0,
        }
    }

    /// An empty wheel that resumes where one left off: every tick before `next_tick` counts as
    /// visited (see [`TimerWheel::next_tick`]).
    pub fn resuming(next_tick: Option<i64>) -> TimerWheel<T> {
        TimerWheel {
            next_tick,
            ..TimerWheel::new()
        }
    }

    /// The first tick not visited yet (`None` before the first advance), for snapshots.
    pub fn next_tick(&self) -> Option<i64> {
        self.next_tick
    }

    /// Pending timers (stale ones included).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Adds a timer.
    /// A deadline in a tick already visited goes into the next slot visited, so it fires on the
    /// next advance.
    pub fn insert(&mut self, deadline: i64, item: T) {
        let at = match self.next_tick {
            Some(next) => tick(deadline).max(next),
            None => tick(deadline),
        };
        self.slots[slot(at)].push(Timer { deadline, item });
        self.len += 1;
    }

    /// Moves every timer whose deadline is before `watermark` into `due` (in no particular
    /// order).
    pub fn advance(&mut self, watermark: i64, due: &mut Vec<Timer<T>>) {
        if self.len == 0 {
            self.next_tick = Some(tick(watermark));
            return;
        }
        let target = tick(watermark);
        let start = match self.next_tick {
            Some(next) => next,
            None => target.saturating_sub(SLOTS as i64),
        };
        if target < start {
            // The watermark did not pass a new tick; only the current slot can hold due timers.
            self.drain_slot(slot(target), watermark, due);
            return;
        }
        let ticks = target.saturating_sub(start);
        if ticks >= SLOTS as i64 {
            for index in 0..SLOTS {
                self.drain_slot(index, watermark, due);
            }
        } else {
            let mut current = start;
            while current <= target {
                self.drain_slot(slot(current), watermark, due);
                current += 1;
            }
        }
        self.next_tick = Some(target);
    }

    fn drain_slot(&mut self, index: usize, watermark: i64, due: &mut Vec<Timer<T>>) {
        let bucket = &mut self.slots[index];
        if bucket.is_empty() {
            return;
        }
        let before = due.len();
        let mut position = 0;
        while position < bucket.len() {
            if bucket[position].deadline < watermark {
                due.push(bucket.swap_remove(position));
            } else {
                position += 1;
            }
        }
        self.len -= due.len() - before;
        release_slack(bucket);
    }

    /// Keeps only the timers `keep` accepts (the others are dropped, not fired). `O(SLOTS +
    /// timers)`: meant for an occasional sweep of timers known to be stale, not per event.
    pub fn retain(&mut self, mut keep: impl FnMut(i64, &T) -> bool) {
        let mut len = 0;
        for bucket in &mut self.slots {
            bucket.retain(|timer| keep(timer.deadline, &timer.item));
            release_slack(bucket);
            len += bucket.len();
        }
        self.len = len;
    }

    /// Capacity of every slot together, in timers (for tests of the memory kept).
    #[cfg(test)]
    pub fn capacity(&self) -> usize {
        self.slots.iter().map(Vec::capacity).sum()
    }
}

/// A slot holds about one tick of timers and is visited once a rotation (about 73 minutes):
/// storage kept after its timers fired would sit idle until then, and at a high rate of timers
/// every slot would end up holding its peak (thousands of slots × the timers of one second).
/// So an emptied slot gives its storage back, and a slot holding far less than it can shrinks.
fn release_slack<T>(bucket: &mut Vec<T>) {
    if bucket.is_empty() {
        if bucket.capacity() > 0 {
            *bucket = Vec::new();
        }
    } else if bucket.capacity() > 64 && bucket.capacity() / 4 > bucket.len() {
        bucket.shrink_to(bucket.len() * 2);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: i64 = 1_000_000_000;

    fn drain(wheel: &mut TimerWheel<u32>, watermark: i64) -> Vec<u32> {
        let mut due = Vec::new();
        wheel.advance(watermark, &mut due);
        let mut items: Vec<u32> = due.into_iter().map(|timer| timer.item).collect();
        items.sort_unstable();
        items
    }

    #[test]
    fn fires_strictly_before_the_watermark_across_rotations() {
        let mut wheel = TimerWheel::new();
        let base = 1_700_000_000 * SECOND;
        wheel.insert(base + 10 * SECOND, 1);
        wheel.insert(base + 10 * SECOND + 1, 2);
        wheel.insert(base + 5000 * SECOND, 3); // more than one rotation ahead
        wheel.insert(base + 20_000 * SECOND, 4);
        assert_eq!(drain(&mut wheel, base), Vec::<u32>::new());
        assert_eq!(drain(&mut wheel, base + 10 * SECOND), Vec::<u32>::new());
        assert_eq!(drain(&mut wheel, base + 10 * SECOND + 1), vec![1]);
        assert_eq!(drain(&mut wheel, base + 11 * SECOND), vec![2]);
        // Visiting slot of tick (base + 5000 s) % SLOTS earlier must not fire timer 3.
        assert_eq!(drain(&mut wheel, base + 4999 * SECOND), Vec::<u32>::new());
        assert_eq!(drain(&mut wheel, base + 5000 * SECOND + 1), vec![3]);
        assert_eq!(wheel.len(), 1);
        assert_eq!(drain(&mut wheel, i64::MAX), vec![4]);
        assert_eq!(wheel.len(), 0);
    }

    #[test]
    fn slots_give_back_their_storage_once_drained() {
        let mut wheel = TimerWheel::new();
        let base = 1_700_000_000 * SECOND;
        assert_eq!(drain(&mut wheel, base), Vec::<u32>::new());
        // A burst: 10k timers in each of 100 ticks, then a quiet period.
        for second in 0..100i64 {
            for item in 0..10_000u32 {
                wheel.insert(base + second * SECOND + i64::from(item), item);
            }
        }
        assert!(wheel.capacity() >= 1_000_000);
        assert_eq!(drain(&mut wheel, base + 200 * SECOND).len(), 1_000_000);
        assert_eq!(wheel.len(), 0);
        assert_eq!(wheel.capacity(), 0, "drained slots keep no storage");
        // Partly drained slots shrink; `retain` drops without firing and gives storage back.
        let rotation = (SLOTS as i64) << TICK_SHIFT;
        for item in 0..10_000u32 {
            // One slot: every eighth timer is a rotation later.
            let later = i64::from(item % 8 == 0) * rotation;
            wheel.insert(base + 300 * SECOND + later, item);
        }
        assert_eq!(drain(&mut wheel, base + 301 * SECOND).len(), 8_750);
        assert!(wheel.capacity() <= 2 * 1_250, "{}", wheel.capacity());
        wheel.retain(|_, item| item % 16 == 0);
        assert_eq!(wheel.len(), 625);
        wheel.retain(|_, _| false);
        assert_eq!((wheel.len(), wheel.capacity()), (0, 0));
    }

    #[test]
    fn matches_a_sorted_list_on_random_schedules() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut wheel = TimerWheel::new();
        let mut reference: Vec<(i64, u32)> = Vec::new();
        let mut watermark = 1_000 * SECOND;
        for round in 0..2000u32 {
            let deadline = watermark + (next() % (9000 * SECOND as u64)) as i64 - 100 * SECOND;
            wheel.insert(deadline, round);
            reference.push((deadline, round));
            if next() % 3 == 0 {
                watermark += (next() % (400 * SECOND as u64)) as i64;
                let fired = drain(&mut wheel, watermark);
                let mut expected: Vec<u32> = reference
                    .iter()
                    .filter(|(deadline, _)| *deadline < watermark)
                    .map(|(_, item)| *item)
                    .collect();
                expected.sort_unstable();
                reference.retain(|(deadline, _)| *deadline >= watermark);
                assert_eq!(fired, expected, "round {round}");
            }
        }
    }
}
