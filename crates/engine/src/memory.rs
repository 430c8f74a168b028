//! [`MemoryStore`]: the [`Store`] and [`Queue`] in a mutex-guarded map, for
//! tests and benchmarks. Same semantics as the database stores: it runs the
//! same conformance suite.

use std::collections::{BTreeMap, HashSet};
use std::sync::Mutex;

use crate::engine::{ContactState, Turn};
use crate::event::{Event, EventKind};
use crate::hash::FastMap;
use crate::ids::{Contact, InstanceId, SessionId};
use crate::queue::{Accepted, InboxEntry, Outgoing, Pending, Queue};
use crate::session::Session;
use crate::store::{Store, StoreError};
use crate::time::Timestamp;


#[derive(Default)]
struct Memory {
    sessions: FastMap<SessionId, Session>,
    /// What the store keeps per contact (live session, calls, handoff,
    /// assignments), so a turn's load and its commit each find all of it
    /// with one lookup.
    contacts: FastMap<Contact, ContactEntry>,
    events: Vec<Event>,
    next_seq: i64,
    inbox: BTreeMap<i64, (InboxEntry, bool)>,
    inbox_ids: HashSet<(InstanceId, String)>,
    outbox: BTreeMap<i64, (Outgoing, OutState)>,
}

#[derive(Default)]
struct ContactEntry {
    /// Per instance the contact talks to (nearly always one).
    instances: Vec<InstanceEntry>,
    /// Split assignments (across instances: one person).
    assignments: Vec<(crate::ids::FlowId, crate::ids::Version, Timestamp)>,
}

struct InstanceEntry {
    instance: InstanceId,
    /// The live session (the outermost one when it called others).
    live: Option<SessionId>,
    /// The live sessions the live one called, as (depth, id); empty outside a call.
    calls: Vec<(u32, SessionId)>,
    handoff_until: Option<Timestamp>,
}

impl ContactEntry {
    fn at(&self, instance: &InstanceId) -> Option<&InstanceEntry> {
        self.instances.iter().find(|entry| entry.instance == *instance)
    }

    fn at_mut(&mut self, instance: &InstanceId) -> &mut InstanceEntry {
        match self.instances.iter().position(|entry| entry.instance == *instance) {
            Some(idx) => &mut self.instances[idx],
            None => {
                self.instances.push(InstanceEntry { instance: instance.clone(), live: None, calls: Vec::new(), handoff_until: None });
                let last = self.instances.len() - 1;
                &mut self.instances[last]
            }
        }
    }
}

#[derive(Clone, PartialEq, Eq)]
enum OutState {
    Waiting(Timestamp),
    Sent { at: Timestamp, provider_id: Option<String> },
    Failed,
}

/// A [`Store`] in a mutex-guarded map, with the same semantics as the
/// database stores (it runs the same conformance suite).
#[derive(Default)]
pub struct MemoryStore {
    inner: Mutex<Memory>,
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MemoryStore")
    }
}

impl MemoryStore {
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Memory> {
        // A panic while holding the lock cannot leave a half-applied commit
        // (commit validates before it writes), so a poisoned lock is usable.
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn contact_state_now(&self, instance: &InstanceId, contact: &Contact) -> ContactState {
        let memory = self.lock();
        let Some(known) = memory.contacts.get(contact) else { return ContactState::default() };
        let entry = known.at(instance);
        ContactState {
            session: entry.and_then(|entry| entry.live).and_then(|id| memory.sessions.get(&id)).cloned(),
            handoff_until: entry.and_then(|entry| entry.handoff_until),
            assignments: known.assignments.clone(),
            calls: entry.map(|entry| memory.live_calls(entry)).unwrap_or_default(),
        }
    }

    pub fn commit_now(&self, turn: &Turn) -> Result<(), StoreError> {
        let mut memory = self.lock();
        memory.commit(turn)
    }

    /// [`MemoryStore::commit_now`] for a caller done with the turn: its
    /// sessions and events move into the store instead of being copied.
    pub fn commit_owned(&self, mut turn: Turn) -> Result<(), StoreError> {
        let mut memory = self.lock();
        let live = memory.check(&turn)?;
        let sessions = std::mem::take(&mut turn.sessions);
        let events = std::mem::take(&mut turn.events);
        memory.apply(&turn, live, sessions, events);
        Ok(())
    }
}

/// The contact's live session before and after a checked turn, and its
/// live callees after it when the turn touched one (as (depth, id)).
struct Live {
    before: Option<SessionId>,
    after: Option<SessionId>,
    calls: Option<Vec<(u32, SessionId)>>,
}

impl Memory {
    /// The live sessions a contact's live session called, outermost first.
    fn live_calls(&self, entry: &InstanceEntry) -> Vec<Session> {
        if entry.calls.is_empty() {
            return Vec::new();
        }
        let mut calls = entry.calls.clone();
        calls.sort_unstable();
        calls.iter().filter_map(|(_, id)| self.sessions.get(id)).cloned().collect()
    }

    /// Validates the whole turn first, so a refused commit changes nothing.
    fn commit(&mut self, turn: &Turn) -> Result<(), StoreError> {
        let live = self.check(turn)?;
        self.apply(turn, live, turn.sessions.iter().cloned(), turn.events.iter().cloned());
        Ok(())
    }

    /// Refuses a turn computed from a stale read; changes nothing.
    fn check(&self, turn: &Turn) -> Result<Live, StoreError> {
        let entry = self.contacts.get(&turn.contact).and_then(|known| known.at(&turn.instance));
        let mut live_after = entry.and_then(|entry| entry.live);
        let live_before = live_after;
        // Live callees after the turn, as (depth, id): one per depth, like
        // the databases' unique index. Looked at only when a callee is in the turn.
        let mut calls_after: Option<Vec<(u32, SessionId)>> = None;
        for session in &turn.sessions {
            let stored = self.sessions.get(&session.id());
            if session.depth() > 0 {
                let calls = calls_after.get_or_insert_with(|| entry.map(|entry| entry.calls.clone()).unwrap_or_default());
                match (session.revision(), stored) {
                    (0, Some(_)) => return Err(StoreError::Conflict(format!("session {} already exists", session.id()))),
                    (0, None) if session.is_live() => {
                        if calls.iter().any(|(depth, _)| *depth == session.depth()) {
                            return Err(StoreError::Conflict(format!("the contact already has a live call at depth {}", session.depth())));
                        }
                        calls.push((session.depth(), session.id()));
                    }
                    (0, None) => {}
                    (revision, Some(stored)) if stored.revision() == revision && stored.is_live() => {
                        if !session.is_live() {
                            calls.retain(|(_, id)| *id != session.id());
                        }
                    }
                    (revision, _) => {
                        return Err(StoreError::Conflict(format!("session {} is no longer live at revision {revision}", session.id())));
                    }
                }
                continue;
            }
            match (session.revision(), stored) {
                (0, Some(_)) => return Err(StoreError::Conflict(format!("session {} already exists", session.id()))),
                (0, None) => {
                    if session.is_live() {
                        if live_after.is_some() {
                            return Err(StoreError::Conflict("the contact already has a live session".to_owned()));
                        }
                        live_after = Some(session.id());
                    }
                }
                (revision, Some(stored)) if stored.revision() == revision && stored.is_live() => {
                    if !session.is_live() && live_after == Some(session.id()) {
                        live_after = None;
                    }
                }
                (revision, _) => {
                    return Err(StoreError::Conflict(format!(
                        "session {} is no longer live at revision {revision}",
                        session.id()
                    )));
                }
            }
        }
        Ok(Live { before: live_before, after: live_after, calls: calls_after })
    }

    /// Writes a checked turn (`sessions` and `events` are the turn's own,
    /// moved or copied by the caller).
    fn apply(
        &mut self,
        turn: &Turn,
        live: Live,
        sessions: impl IntoIterator<Item = Session>,
        events: impl IntoIterator<Item = Event>,
    ) {
        for mut stored in sessions {
            stored.record.revision += 1;
            // An update replaces the stored session where it lies (no old
            // value moved out to be dropped by the caller).
            match self.sessions.entry(stored.id()) {
                std::collections::hash_map::Entry::Occupied(mut slot) => *slot.get_mut() = stored,
                std::collections::hash_map::Entry::Vacant(slot) => {
                    slot.insert(stored);
                }
            }
        }
        self.events.extend(events);
        let at_instance = live.calls.is_some() || live.after != live.before || turn.handoff_until.is_some();
        if !at_instance && turn.assignments.is_empty() {
            return;
        }
        // A known contact (nearly always) without cloning the key.
        let known = match self.contacts.get_mut(&turn.contact) {
            Some(known) => known,
            None => self.contacts.entry(turn.contact.clone()).or_default(),
        };
        if at_instance {
            let entry = known.at_mut(&turn.instance);
            if let Some(calls) = live.calls {
                entry.calls = calls;
            }
            entry.live = live.after;
            if let Some(until) = turn.handoff_until {
                entry.handoff_until = Some(until);
            }
        }
        if !turn.assignments.is_empty() {
            let remembered = &mut known.assignments;
            for (flow, version, at) in &turn.assignments {
                remembered.retain(|(known, _, _)| known != flow);
                remembered.push((flow.clone(), *version, *at));
            }
        }
    }
}

impl Queue for MemoryStore {
    async fn accept(&self, entry: &InboxEntry) -> Result<Accepted, StoreError> {
        let mut memory = self.lock();
        if !memory.inbox_ids.insert((entry.instance.clone(), entry.message_id.clone())) {
            return Ok(Accepted::Duplicate);
        }
        memory.next_seq += 1;
        let seq = memory.next_seq;
        memory.inbox.insert(seq, (entry.clone(), false));
        Ok(Accepted::New(seq))
    }

    async fn pending_contacts(&self, limit: u32) -> Result<Vec<(InstanceId, Contact)>, StoreError> {
        let memory = self.lock();
        let mut contacts: Vec<(InstanceId, Contact)> = Vec::new();
        for (entry, processed) in memory.inbox.values() {
            let key = (entry.instance.clone(), entry.contact.clone());
            if !processed && !contacts.contains(&key) {
                contacts.push(key);
                if contacts.len() >= limit as usize {
                    break;
                }
            }
        }
        Ok(contacts)
    }

    async fn next_pending(&self, instance: &InstanceId, contact: &Contact) -> Result<Option<Pending>, StoreError> {
        let memory = self.lock();
        Ok(memory
            .inbox
            .iter()
            .filter(|(_, (entry, processed))| !processed && &entry.instance == instance && &entry.contact == contact)
            .min_by_key(|(seq, (entry, _))| (entry.sent_at.unwrap_or(entry.received_at), **seq))
            .map(|(seq, (entry, _))| Pending { seq: *seq, entry: entry.clone() }))
    }

    async fn commit_inbound(&self, turn: &Turn, pending: &Pending, reply_to: &str) -> Result<(), StoreError> {
        let seq = pending.seq;
        let mut memory = self.lock();
        match memory.inbox.get(&seq) {
            Some((entry, false)) if entry.kind != pending.entry.kind => {
                return Err(StoreError::Conflict(format!("inbox entry {seq} changed since it was read")));
            }
            Some((_, false)) => {}
            Some((_, true)) => return Err(StoreError::Conflict(format!("inbox entry {seq} is already processed"))),
            None => return Err(StoreError::Other(format!("inbox entry {seq} does not exist"))),
        }
        memory.commit(turn)?;
        if let Some(slot) = memory.inbox.get_mut(&seq) {
            slot.1 = true;
        }
        let created_at = memory.inbox.get(&seq).map(|(entry, _)| entry.received_at).unwrap_or(Timestamp::from_millis(0));
        let request_id = memory.inbox.get(&seq).map(|(entry, _)| entry.message_id.clone());
        for reply in &turn.replies {
            memory.next_seq += 1;
            let out_seq = memory.next_seq;
            let outgoing = Outgoing {
                seq: out_seq,
                instance: turn.instance.clone(),
                contact: turn.contact.clone(),
                reply_to: reply_to.to_owned(),
                text: reply.text.to_string(),
                session: reply.session,
                attempts: 0,
                created_at,
                request_id: request_id.clone(),
                unsure_since: None,
                attempted_at: None,
                rich: reply.rich.clone(),
            };
            memory.outbox.insert(out_seq, (outgoing, OutState::Waiting(Timestamp::from_millis(i64::MIN))));
        }
        Ok(())
    }

    async fn due_outbox(&self, now: Timestamp, limit: u32) -> Result<Vec<Outgoing>, StoreError> {
        let memory = self.lock();
        let mut heads: Vec<(InstanceId, Contact)> = Vec::new();
        let mut due = Vec::new();
        for (outgoing, state) in memory.outbox.values() {
            let OutState::Waiting(next_at) = state else { continue };
            let key = (outgoing.instance.clone(), outgoing.contact.clone());
            if heads.contains(&key) {
                continue;
            }
            heads.push(key);
            if *next_at <= now {
                let mut outgoing = outgoing.clone();
                outgoing.unsure_since = outgoing.unsure_since.or(outgoing.attempted_at);
                due.push(outgoing);
                if due.len() >= limit as usize {
                    break;
                }
            }
        }
        Ok(due)
    }

    async fn outbox_attempt(&self, seq: i64, at: Timestamp) -> Result<bool, StoreError> {
        let mut memory = self.lock();
        let Some((outgoing, OutState::Waiting(_))) = memory.outbox.get_mut(&seq) else { return Ok(false) };
        outgoing.unsure_since = outgoing.unsure_since.or(outgoing.attempted_at);
        outgoing.attempted_at = Some(at);
        Ok(true)
    }

    async fn outbox_unsure(&self, seq: i64, next_at: Timestamp, _error: &str) -> Result<(), StoreError> {
        if let Some((outgoing, state @ OutState::Waiting(_))) = self.lock().outbox.get_mut(&seq) {
            outgoing.attempts += 1;
            outgoing.unsure_since = outgoing.unsure_since.or(outgoing.attempted_at);
            outgoing.attempted_at = None;
            *state = OutState::Waiting(next_at);
        }
        Ok(())
    }

    async fn sent_ids_since(&self, instance: &InstanceId, contact: &Contact, since: Timestamp) -> Result<Vec<String>, StoreError> {
        Ok(self
            .lock()
            .outbox
            .values()
            .filter(|(outgoing, _)| &outgoing.instance == instance && &outgoing.contact == contact)
            .filter_map(|(_, state)| match state {
                OutState::Sent { at, provider_id: Some(id) } if *at >= since => Some(id.clone()),
                _ => None,
            })
            .collect())
    }

    async fn outbox_sent(&self, seq: i64, provider_id: Option<&str>, at: Timestamp) -> Result<(), StoreError> {
        if let Some(slot) = self.lock().outbox.get_mut(&seq) {
            slot.0.attempted_at = None;
            slot.1 = OutState::Sent { at, provider_id: provider_id.map(str::to_owned) };
        }
        Ok(())
    }

    async fn outbox_retry(&self, seq: i64, next_at: Timestamp, _error: &str) -> Result<(), StoreError> {
        if let Some((outgoing, state @ OutState::Waiting(_))) = self.lock().outbox.get_mut(&seq) {
            outgoing.attempts += 1;
            outgoing.attempted_at = None;
            *state = OutState::Waiting(next_at);
        }
        Ok(())
    }

    async fn outbox_failed(&self, seq: i64, reason: &str, at: Timestamp) -> Result<(), StoreError> {
        let mut memory = self.lock();
        let Some(slot) = memory.outbox.get_mut(&seq) else { return Ok(()) };
        slot.1 = OutState::Failed;
        let session = slot.0.session;
        if let Some(session) = session.and_then(|id| memory.sessions.get(&id)).cloned() {
            memory.events.push(Event {
                session: session.id(),
                flow: session.flow().clone(),
                version: session.version(),
                at,
                step: Some(session.step().clone()),
                kind: EventKind::Undeliverable { reason: reason.to_owned() },
            });
        }
        Ok(())
    }

    async fn outbox_depth(&self) -> Result<u64, StoreError> {
        Ok(self.lock().outbox.values().filter(|(_, state)| matches!(state, OutState::Waiting(_))).count() as u64)
    }
}

impl Store for MemoryStore {
    async fn contact_state(&self, instance: &InstanceId, contact: &Contact) -> Result<ContactState, StoreError> {
        Ok(self.contact_state_now(instance, contact))
    }

    async fn commit(&self, turn: &Turn) -> Result<(), StoreError> {
        self.commit_now(turn)
    }

    async fn expired(&self, now: Timestamp, limit: u32) -> Result<Vec<Session>, StoreError> {
        let memory = self.lock();
        let mut due: Vec<Session> = memory
            .contacts
            .values()
            .flat_map(|known| known.instances.iter().filter_map(|entry| entry.live))
            .filter_map(|id| memory.sessions.get(&id))
            .filter(|session| session.expires_at() <= now)
            .cloned()
            .collect();
        due.sort_by_key(|session| (session.expires_at(), session.id()));
        due.truncate(limit as usize);
        Ok(due)
    }

    async fn sessions_of(&self, instance: &InstanceId, contact: &Contact) -> Result<Vec<Session>, StoreError> {
        let memory = self.lock();
        let mut all: Vec<Session> = memory
            .sessions
            .values()
            .filter(|session| session.instance() == instance && session.contact() == contact)
            .cloned()
            .collect();
        all.sort_by_key(|session| std::cmp::Reverse((session.started_at(), session.id())));
        Ok(all)
    }

    async fn events_of(&self, session: SessionId) -> Result<Vec<Event>, StoreError> {
        Ok(self.lock().events.iter().filter(|event| event.session == session).cloned().collect())
    }

    async fn release_handoff(&self, instance: &InstanceId, contact: &Contact) -> Result<bool, StoreError> {
        let mut memory = self.lock();
        let entry = memory.contacts.get_mut(contact).and_then(|known| known.instances.iter_mut().find(|entry| entry.instance == *instance));
        Ok(entry.and_then(|entry| entry.handoff_until.take()).is_some())
    }
}
