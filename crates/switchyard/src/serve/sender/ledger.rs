//! The sender's own records: what it knows that its store does not yet
//! (the [`Ledger`]), the guard that hands a failed task's replies back to
//! it, and when a reply's attempt mark still stands for its request
//! ([`Mark`], [`mark_holds`]). Pure bookkeeping, no I/O.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use switchyard_engine::queue::Outgoing;
use switchyard_engine::time::Timestamp;

/// What the sender knows that its store does not yet: replies delivered
/// whose sent marks are still being written, and replies requested whose
/// outcome could not be recorded.
#[derive(Default)]
pub(super) struct Ledger {
    /// Delivered; the sent mark is on its way (SQLite writes it in the
    /// background): not due again.
    pub(super) marking: HashSet<i64>,
    /// Requested, and the write of the outcome gave up (the store refused
    /// it for long) or its task failed: unsure until an outcome lands. With
    /// a time no later than the request (its round's read), for the
    /// lookup, and one no earlier than its end (when the loss was seen),
    /// to let it settle from. A reply whose attempt was recorded at its
    /// turn's commit would otherwise read as never requested.
    pub(super) unsettled: HashMap<i64, (Timestamp, Timestamp)>,
    /// This sender's token when its replies can have their attempt on
    /// record from their turn's commit (SQLite, `attempt_at_commit`).
    /// Elsewhere every attempt is written before its request, so a lost
    /// outcome reads as unsure from the store already, and nothing is kept
    /// in `unsettled`.
    pub(super) token: Option<i64>,
}

pub(super) type SharedLedger = Arc<Mutex<Ledger>>;

pub(super) fn lock(ledger: &SharedLedger) -> std::sync::MutexGuard<'_, Ledger> {
    ledger.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Ledger {
    /// Records that `seq`'s request went out (no later than `began`) and
    /// its outcome is not on record (seen now).
    pub(super) fn unsettle(&mut self, seq: i64, began: Timestamp) {
        if self.token.is_some() {
            self.unsettled.entry(seq).or_insert((began, Timestamp::now_utc()));
        }
    }

    /// Records whether the outcome of `seq`'s request (no later than
    /// `began`) landed in the store: then nothing of it is left to settle,
    /// else it is unsettled.
    pub(super) fn settle(&mut self, seq: i64, landed: bool, began: Timestamp) {
        if landed {
            self.unsettled.remove(&seq);
        } else {
            self.unsettle(seq, began);
        }
    }

    /// Takes out of a read what is delivered already (`landing`: what was
    /// `marking` before the read), and reads what was requested with no
    /// outcome on record as unsure (and not on record as a fresh attempt).
    pub(super) fn sift(&self, landing: &HashSet<i64>, due: &mut Vec<Outgoing>, on_record: &mut Vec<i64>) {
        due.retain(|outgoing| !landing.contains(&outgoing.seq));
        for outgoing in due.iter_mut() {
            if let Some((began, lost)) = self.unsettled.get(&outgoing.seq).copied() {
                // A fresh reply's `attempted_at` is its turn's commit,
                // perhaps long before its request: it settles from the loss.
                let since = outgoing.attempted_at.map_or(began, |at| at.min(began));
                outgoing.unsure_since = outgoing.unsure_since.or(Some(since));
                outgoing.attempted_at = Some(outgoing.attempted_at.map_or(lost, |at| at.max(lost)));
            }
        }
        on_record.retain(|seq| !self.unsettled.contains_key(seq));
    }
}

/// Held by a task that requests replies ([`super::deliver_run`]) or records
/// their sent marks ([`super::record_later`]): on drop before it is cleared (the
/// task failed), its replies leave `marking` and are unsettled.
pub(super) struct UnsettleOnDrop {
    pub(super) ledger: SharedLedger,
    pub(super) seqs: Vec<i64>,
    pub(super) began: Timestamp,
}

impl Drop for UnsettleOnDrop {
    fn drop(&mut self) {
        let mut ledger = lock(&self.ledger);
        for seq in &self.seqs {
            ledger.marking.remove(seq);
            ledger.unsettle(*seq, self.began);
        }
    }
}

/// When a reply's attempt went on record before its round's sends: the
/// round's read, from which PostgreSQL's claim counts, and the mark's own
/// time (the batch's write, or the turn's commit).
#[derive(Clone, Copy, Debug)]
pub(super) struct Mark {
    pub(super) read: Instant,
    pub(super) at: Timestamp,
}

impl Mark {
    /// How old the mark is at `now`: by the wall clock, and never less
    /// than the time since the read (a clock set back cannot make it young).
    pub(super) fn age(&self, now: Timestamp) -> Duration {
        let wall = Duration::from_millis(u64::try_from(now.as_millis() - self.at.as_millis()).unwrap_or(0));
        wall.max(self.read.elapsed())
    }
}

/// Whether an attempt mark still stands for a send about to go out, the
/// round's read `waited` ago and the mark `age` old.
/// - On PostgreSQL the mark came with a claim that lapses after `CLAIM`,
///   and another process may then take the reply over (and, once Evolution
///   says it never arrived, send it): a reply that waited half a claim
///   writes its attempt again, which renews the claim, or is refused if the
///   reply is no longer this process's, and is then not sent here.
/// - On SQLite the mark is what a later start settles from (two
///   `SEND_TIMEOUT`s, then a lookup, `deliver`): it stands for half a
///   `SEND_TIMEOUT`, so a request that begins within it has timed out at
///   our end half a timeout before the check, as one whose attempt was
///   written as it began has a whole one. An older mark (a reply queued
///   behind its contact's retries, or a slot long in coming) is moved to
///   now first.
pub(super) fn mark_holds(postgres: bool, waited: Duration, age: Duration, send_timeout: Duration) -> bool {
    if postgres { waited < switchyard_store::postgres::CLAIM / 2 } else { age < send_timeout / 2 }
}

#[cfg(test)]
mod tests {
    use switchyard_engine::ids::{Contact, InstanceId};

    use super::*;

    #[test]
    fn a_mark_stands_for_half_a_claim_on_postgresql_and_half_a_send_timeout_on_sqlite() {
        let (claim, timeout) = (switchyard_store::postgres::CLAIM, Duration::from_secs(10));
        let young = Duration::from_secs(1);
        assert!(mark_holds(true, young, claim * 3, timeout), "PostgreSQL counts from the claim's read");
        assert!(mark_holds(true, claim / 2 - Duration::from_millis(1), young, timeout));
        assert!(!mark_holds(true, claim / 2, young, timeout), "the claim has half its life left: write the attempt again");
        assert!(!mark_holds(true, claim * 3, young, timeout), "the claim lapsed: another process may hold the reply");
        assert!(mark_holds(false, claim * 3, timeout / 2 - Duration::from_millis(1), timeout), "SQLite counts from the mark");
        assert!(!mark_holds(false, young, timeout / 2, timeout), "a later start would check too soon after the request");
    }

    #[test]
    fn a_mark_is_as_old_as_the_wall_clock_says_and_never_younger_than_its_read() {
        let read = Instant::now() - Duration::from_secs(3);
        let mark = Mark { read, at: Timestamp::from_millis(1_000_000) };
        assert!(mark.age(Timestamp::from_millis(1_060_000)) >= Duration::from_secs(60), "a commit a minute back");
        let age = mark.age(Timestamp::from_millis(900_000));
        assert!(age >= Duration::from_secs(3) && age < Duration::from_secs(60), "a clock set back: the read's age, {age:?}");
    }

    fn outgoing(seq: i64, attempted_at: Option<i64>) -> Outgoing {
        Outgoing {
            seq,
            instance: InstanceId::parse("vendas").unwrap(),
            contact: Contact::parse("5511911110095").unwrap(),
            reply_to: "5511911110095".to_owned(),
            text: "Olá".to_owned(),
            session: None,
            attempts: 0,
            created_at: Timestamp::from_millis(1_000),
            request_id: None,
            unsure_since: None,
            attempted_at: attempted_at.map(Timestamp::from_millis),
            rich: None,
        }
    }

    #[test]
    fn a_read_hides_what_was_marking_before_it_even_when_the_mark_landed_since() {
        // Seq 1's sent mark landed between the read (which saw it unsent)
        // and the sift: it is no longer `marking`, but the read is stale.
        let ledger = Ledger::default();
        let landing: HashSet<i64> = [1].into();
        let (mut due, mut on_record) = (vec![outgoing(1, Some(5_000)), outgoing(2, Some(5_000))], vec![1, 2]);
        ledger.sift(&landing, &mut due, &mut on_record);
        assert_eq!(due.iter().map(|outgoing| outgoing.seq).collect::<Vec<_>>(), [2]);
    }

    #[test]
    fn a_request_whose_outcome_was_lost_reads_as_unsure_from_no_later_than_it_began() {
        let mut ledger = Ledger::default();
        // Requested no later than 9 000, the loss seen at 12 000.
        let times = (Timestamp::from_millis(9_000), Timestamp::from_millis(12_000));
        ledger.unsettled.insert(1, times);
        ledger.unsettled.insert(2, times);
        // 1: attempted at its turn's commit (5 000); 2: no attempt on record.
        let (mut due, mut on_record) = (vec![outgoing(1, Some(5_000)), outgoing(2, None), outgoing(3, Some(5_000))], vec![1, 3]);
        ledger.sift(&HashSet::new(), &mut due, &mut on_record);
        let read: Vec<(i64, Option<i64>, Option<i64>)> =
            due.iter().map(|outgoing| (outgoing.seq, outgoing.unsure_since.map(|at| at.as_millis()), outgoing.attempted_at.map(|at| at.as_millis()))).collect();
        // Looked up from no later than the request; settles from the loss.
        assert_eq!(read, [(1, Some(5_000), Some(12_000)), (2, Some(9_000), Some(12_000)), (3, None, Some(5_000))]);
        assert_eq!(on_record, [3], "an unsettled reply's attempt is not taken as fresh");
    }

    #[test]
    fn a_sent_mark_whose_task_fails_leaves_its_replies_unsettled_not_hidden() {
        let ledger: SharedLedger = Arc::new(Mutex::new(Ledger { token: Some(7), ..Ledger::default() }));
        lock(&ledger).marking.extend([1, 2]);
        drop(UnsettleOnDrop { ledger: Arc::clone(&ledger), seqs: vec![1, 2], began: Timestamp::from_millis(9_000) });
        let mut settled = UnsettleOnDrop { ledger: Arc::clone(&ledger), seqs: vec![3], began: Timestamp::from_millis(9_000) };
        settled.seqs.clear();
        drop(settled);
        assert_eq!(Arc::strong_count(&ledger), 1, "the guards are gone");
        let ledger = lock(&ledger);
        assert!(ledger.marking.is_empty());
        let mut unsettled: Vec<i64> = ledger.unsettled.keys().copied().collect();
        unsettled.sort_unstable();
        assert_eq!(unsettled, [1, 2]);
    }
}
