//! A circuit breaker, so that a dead provider does not slow every message:
//! after `threshold` failed calls in a row it opens and calls fail at once;
//! after `cooldown` one trial call goes through (half-open), and its result
//! closes or reopens the circuit.

use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Closed { failures: u32 },
    Open { until: Instant },
    /// One trial call is in flight.
    HalfOpen,
}

#[derive(Debug)]
pub struct Breaker {
    threshold: u32,
    cooldown: Duration,
    state: Mutex<State>,
}

impl Breaker {
    pub fn new(threshold: u32, cooldown: Duration) -> Breaker {
        Breaker { threshold: threshold.max(1), cooldown, state: Mutex::new(State::Closed { failures: 0 }) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// May a call go out now? An open circuit past its cooldown lets one through.
    pub fn allow(&self) -> bool {
        let mut state = self.lock();
        match *state {
            State::Closed { .. } => true,
            State::Open { until } if Instant::now() >= until => {
                *state = State::HalfOpen;
                true
            }
            State::Open { .. } | State::HalfOpen => false,
        }
    }

    pub fn success(&self) {
        *self.lock() = State::Closed { failures: 0 };
    }

    /// The call ended without saying anything about the provider (it was
    /// cut short by the caller's budget): the circuit stays as it was, but a
    /// half-open trial is given back, so the next call is the trial.
    pub fn release(&self) {
        let mut state = self.lock();
        if *state == State::HalfOpen {
            *state = State::Open { until: Instant::now() };
        }
    }

    /// Returns true when this failure opened the circuit.
    pub fn failure(&self) -> bool {
        let mut state = self.lock();
        let failures = match *state {
            State::Closed { failures } => failures + 1,
            State::HalfOpen | State::Open { .. } => self.threshold,
        };
        if failures >= self.threshold {
            let was_open = matches!(*state, State::Open { .. });
            *state = State::Open { until: Instant::now() + self.cooldown };
            !was_open
        } else {
            *state = State::Closed { failures };
            false
        }
    }

    pub fn is_open(&self) -> bool {
        !matches!(*self.lock(), State::Closed { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_the_threshold_and_lets_one_trial_through_after_the_cooldown() {
        let breaker = Breaker::new(3, Duration::from_millis(30));
        for _ in 0..2 {
            assert!(breaker.allow());
            assert!(!breaker.failure());
        }
        assert!(breaker.allow());
        assert!(breaker.failure(), "the third failure opens it");
        assert!(!breaker.allow());
        std::thread::sleep(Duration::from_millis(40));
        assert!(breaker.allow(), "one trial after the cooldown");
        assert!(!breaker.allow(), "only one");
        breaker.failure();
        assert!(!breaker.allow(), "a failed trial reopens it");
        std::thread::sleep(Duration::from_millis(40));
        assert!(breaker.allow());
        breaker.success();
        assert!(!breaker.is_open());
        assert!(breaker.allow() && breaker.allow());
    }

    #[test]
    fn a_released_trial_lets_the_next_call_be_the_trial() {
        let breaker = Breaker::new(1, Duration::from_millis(30));
        breaker.release();
        assert!(!breaker.is_open(), "releasing a closed circuit changes nothing");
        assert!(breaker.allow());
        assert!(breaker.failure());
        breaker.release();
        assert!(!breaker.allow(), "releasing an open circuit does not shorten its cooldown");
        std::thread::sleep(Duration::from_millis(40));
        assert!(breaker.allow(), "the trial");
        assert!(!breaker.allow());
        breaker.release();
        assert!(breaker.allow(), "the released trial goes to the next call");
        breaker.success();
        assert!(!breaker.is_open());
    }
}
