//! A request's arrival stamp and deadline (DESIGN.md §10): the smallest of the server's
//! `request_timeout_ms` and the caller's own limit (gRPC's `grpc-timeout`), counted from
//! the moment the request arrived — before its body was read.

use std::time::{Duration, Instant};

/// When a request arrived (its head was read), as each transport stamps it in the
/// request's extensions: its deadline counts from then.
#[derive(Debug, Clone, Copy)]
pub struct Arrived(pub Instant);

/// When a request must be answered by, and how long it was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline {
    pub at: Instant,
    pub length: Duration,
    /// Whether part of it went to waiting for a scoring slot: a request that then cannot
    /// be ranked in time is refused late, with `504` — a `503` is only ever answered at
    /// once.
    pub waited_for_slot: bool,
}

impl Deadline {
    /// The deadline of a request that arrived at `arrived`: `server`'s limit, or the
    /// caller's when that is smaller.
    pub fn from_arrival(arrived: Instant, server: Duration, caller: Option<Duration>) -> Self {
        let length = caller.map_or(server, |c| c.min(server));
        Self {
            at: arrived + length,
            length,
            waited_for_slot: false,
        }
    }

    /// This deadline, or the caller's `limit` counted from the same arrival when that
    /// is sooner (a request's own `timeout_ms`, known once its body is read).
    pub fn capped(self, limit: Option<Duration>) -> Self {
        match limit {
            Some(limit) if limit < self.length => Self {
                at: self.at - (self.length - limit),
                length: limit,
                ..self
            },
            _ => self,
        }
    }

    /// Time left, zero once passed.
    pub fn remaining(&self) -> Duration {
        self.at.saturating_duration_since(Instant::now())
    }

    pub fn has_passed(&self) -> bool {
        self.remaining().is_zero()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_smaller_limit_counts_from_arrival() {
        let arrived = Instant::now();
        let server = Duration::from_millis(1000);
        let d = Deadline::from_arrival(arrived, server, None);
        assert_eq!(d.at, arrived + server);
        let d = Deadline::from_arrival(arrived, server, Some(Duration::from_millis(50)));
        assert_eq!(
            (d.at, d.length),
            (
                arrived + Duration::from_millis(50),
                Duration::from_millis(50)
            )
        );
        let d = Deadline::from_arrival(arrived, server, Some(Duration::from_secs(5)));
        assert_eq!(d.length, server);
        let past = Deadline::from_arrival(arrived - Duration::from_secs(2), server, None);
        assert!(past.has_passed());
    }
}
