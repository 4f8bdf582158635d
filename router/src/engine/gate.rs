//! The ordering rules, in one place, for every delivery mode:
//! - **lanes** (SQS FIFO message group, stream partition key): once a record of a lane is
//!   reported, the lane's later records are not sent (`earlier-record-failed`);
//! - **streams** (Kinesis, DynamoDB Streams): in addition, once a record has been reported, no
//!   record with a sequence number at or above it is sent, in any lane, because Lambda
//!   checkpoints at the lowest reported sequence number and redelivers everything after it.
//!
//! The engine asks [`Gate::check`] when it takes a record and again just before the Invoke that
//! carries it goes out, and tells [`Gate::record`] every outcome.

use std::sync::Mutex;

use crate::outcome::Outcome;
use crate::record::{Ordering, compare_sequence_numbers};

/// Which lanes are stopped, and the lowest reported sequence number of a stream batch.
#[derive(Debug)]
pub struct Gate {
    ordering: Ordering,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    /// Per lane, the id of the record that stopped it.
    stopped_by: Vec<Option<String>>,
    /// The lowest sequence number reported so far (streams).
    lowest_failed: Option<String>,
}

impl Gate {
    /// A gate for a batch with `lanes` lanes under `ordering`.
    pub fn new(ordering: Ordering, lanes: usize) -> Self {
        Self {
            ordering,
            state: Mutex::new(State {
                stopped_by: vec![None; lanes],
                lowest_failed: None,
            }),
        }
    }

    /// Why record `id` of `lane` may not be sent now, as the outcome it then gets.
    pub fn check(&self, lane: usize, id: &str) -> Option<Outcome> {
        if self.ordering == Ordering::Independent {
            return None;
        }
        let state = self.state.lock().expect("gate lock");
        if let Some(earlier) = &state.stopped_by[lane] {
            return Some(Outcome::earlier_in_lane(earlier));
        }
        if self.ordering == Ordering::Stream
            && let Some(lowest) = &state.lowest_failed
            && compare_sequence_numbers(id, lowest) != std::cmp::Ordering::Less
        {
            return Some(Outcome::earlier_in_stream(lowest));
        }
        None
    }

    /// Takes note of record `id` of `lane` ending with `outcome`: a reported record stops its
    /// lane and (streams) every record at or above its sequence number.
    pub fn record(&self, lane: usize, id: &str, outcome: &Outcome) {
        if self.ordering == Ordering::Independent || !outcome.is_reported() {
            return;
        }
        let mut state = self.state.lock().expect("gate lock");
        if state.stopped_by[lane].is_none() {
            state.stopped_by[lane] = Some(id.to_owned());
        }
        if self.ordering == Ordering::Stream {
            let lower = state
                .lowest_failed
                .as_deref()
                .is_none_or(|current| compare_sequence_numbers(id, current).is_lt());
            if lower {
                state.lowest_failed = Some(id.to_owned());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed() -> Outcome {
        Outcome::failed("throttled", "")
    }

    #[test]
    fn independent_records_are_never_stopped() {
        let gate = Gate::new(Ordering::Independent, 2);
        gate.record(0, "1", &failed());
        assert_eq!(gate.check(0, "2"), None);
    }

    #[test]
    fn a_reported_record_stops_its_lane_only() {
        let gate = Gate::new(Ordering::Lanes, 2);
        gate.record(0, "a", &Outcome::Invoked { attempts: 1 });
        assert_eq!(gate.check(0, "b"), None);
        gate.record(0, "b", &failed());
        assert_eq!(gate.check(0, "c"), Some(Outcome::earlier_in_lane("b")));
        assert_eq!(gate.check(1, "z"), None);
    }

    #[test]
    fn a_stream_failure_stops_every_lane_at_or_above_it() {
        let gate = Gate::new(Ordering::Stream, 2);
        gate.record(0, "200", &failed());
        assert_eq!(gate.check(1, "199"), None);
        assert_eq!(
            gate.check(1, "200"),
            Some(Outcome::earlier_in_stream("200"))
        );
        assert_eq!(
            gate.check(1, "1000"),
            Some(Outcome::earlier_in_stream("200"))
        );
        // A lower failure lowers the gate; a higher one does not raise it.
        gate.record(1, "150", &failed());
        gate.record(1, "300", &failed());
        assert_eq!(gate.check(1, "160"), Some(Outcome::earlier_in_lane("150")));
        let fresh = Gate::new(Ordering::Stream, 3);
        fresh.record(0, "150", &failed());
        fresh.record(1, "300", &failed());
        assert_eq!(
            fresh.check(2, "160"),
            Some(Outcome::earlier_in_stream("150"))
        );
    }
}
