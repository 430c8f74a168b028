//! The durable message path around a turn: the inbox (inbound messages,
//! stored and deduplicated before the channel acknowledges them) and the
//! outbox (replies waiting to be delivered, in order per contact).
//!
//! Processing an inbox entry commits the turn, marks the entry processed and
//! queues the replies in one transaction ([`Queue::commit_inbound`]), so a
//! crash at any point either redoes the whole turn or none of it.

use std::future::Future;

use crate::engine::{Content, Turn};
use crate::ids::{Contact, InstanceId, SessionId};
use crate::store::{Store, StoreError};
use crate::time::Timestamp;

/// What an inbox entry asks the engine to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InboxKind {
    /// The customer wrote (or sent something unreadable).
    Customer(Content),
    /// A human typed on the business phone: a takeover.
    Operator,
}

/// An inbound message as accepted from a channel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InboxEntry {
    pub instance: InstanceId,
    pub contact: Contact,
    /// The channel's message id; (instance, message_id) is unique.
    pub message_id: String,
    /// Where replies go (the channel's address for the contact).
    pub reply_to: String,
    pub kind: InboxKind,
    /// When the customer sent it, by their clock (ordering within a contact).
    pub sent_at: Option<Timestamp>,
    pub received_at: Timestamp,
}

/// An inbox entry waiting to be processed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pending {
    pub seq: i64,
    pub entry: InboxEntry,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Accepted {
    New(i64),
    /// Already in the inbox (a redelivery): nothing was stored.
    Duplicate,
}

/// A reply waiting in the outbox.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outgoing {
    pub seq: i64,
    pub instance: InstanceId,
    pub contact: Contact,
    pub reply_to: String,
    pub text: String,
    pub session: Option<SessionId>,
    pub attempts: u32,
    pub created_at: Timestamp,
    /// The channel message id of the inbound message whose turn queued this
    /// reply (the request id in logs); `None` for replies no message caused
    /// (an evacuation).
    pub request_id: Option<String>,
    /// When the earliest send attempt whose outcome is unknown began (a
    /// timeout, a dropped connection, a process that stopped mid-send):
    /// the reply may already be out, so the sender asks the channel before
    /// sending it again. `None`: no attempt can have delivered it.
    pub unsure_since: Option<Timestamp>,
    /// When the latest attempt began, if its outcome was never recorded (its
    /// process stopped mid-send, or lost its claim): that attempt may still
    /// be in the channel's hands, so the check waits for it to settle.
    pub attempted_at: Option<Timestamp>,
    /// A file to send with `text` as caption, or the options of a menu.
    pub rich: Option<crate::media::Rich>,
}

pub trait Queue: Store {
    /// Stores an inbound message unless (instance, message id) is already there.
    fn accept(&self, entry: &InboxEntry) -> impl Future<Output = Result<Accepted, StoreError>> + Send;

    /// Contacts with unprocessed inbox entries, those waiting longest first.
    fn pending_contacts(&self, limit: u32) -> impl Future<Output = Result<Vec<(InstanceId, Contact)>, StoreError>> + Send;

    /// The contact's next unprocessed entry: earliest `sent_at`, then arrival.
    fn next_pending(
        &self,
        instance: &InstanceId,
        contact: &Contact,
    ) -> impl Future<Output = Result<Option<Pending>, StoreError>> + Send;

    /// In one transaction: the turn (as [`Store::commit`]), the `pending`
    /// entry marked processed, and the turn's replies queued for `reply_to`.
    /// Refused whole with `Conflict` when the entry was already processed or
    /// no longer reads as `pending` did (a debounce merged a burst into it
    /// meanwhile): the turn was computed from stale input.
    fn commit_inbound(&self, turn: &Turn, pending: &Pending, reply_to: &str) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Replies ready to send at `now`: for each contact only its oldest unsent
    /// reply (so delivery keeps the order), at most `limit`.
    fn due_outbox(&self, now: Timestamp, limit: u32) -> impl Future<Output = Result<Vec<Outgoing>, StoreError>> + Send;

    /// A send attempt starts at `at`: recorded before the request goes out,
    /// so a process that stops mid-send leaves the reply marked as maybe
    /// sent. `false`: the reply is no longer this process's to send (done
    /// meanwhile, or its claim was taken over): do not send it.
    fn outbox_attempt(&self, seq: i64, at: Timestamp) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// The attempt's outcome is unknown (no answer, or the connection
    /// dropped after the request was written): try again at `next_at`, but
    /// only after asking whether it went out (`unsure_since` is set).
    fn outbox_unsure(&self, seq: i64, next_at: Timestamp, error: &str) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The channel ids of the replies to (instance, contact) marked sent at
    /// or after `since`: messages that a check for an unsure reply must not
    /// take for it.
    fn sent_ids_since(&self, instance: &InstanceId, contact: &Contact, since: Timestamp) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send;

    /// Delivered; `provider_id` is the channel's id for the sent message.
    fn outbox_sent(&self, seq: i64, provider_id: Option<&str>, at: Timestamp) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// A refusal worth retrying (5xx, 429, no connection): the attempt did
    /// not deliver the reply; try again at `next_at`. What an earlier unsure
    /// attempt may have done still stands (`unsure_since` is kept).
    fn outbox_retry(&self, seq: i64, next_at: Timestamp, error: &str) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// A permanent failure (the number is not on WhatsApp ...): never retried;
    /// recorded as an `undeliverable` event on the reply's session.
    fn outbox_failed(&self, seq: i64, reason: &str, at: Timestamp) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Replies not yet delivered or failed.
    fn outbox_depth(&self) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// The caller stops working through `contact`'s inbox (its last
    /// `next_pending` found nothing). A store shared by several processes
    /// gives up its claim on the contact here and answers whether entries are
    /// waiting that no other process is working on (they arrived while the
    /// claim was held), in which case the caller looks again. A store used
    /// by one process has nothing to give up.
    fn release_contact(&self, instance: &InstanceId, contact: &Contact) -> impl Future<Output = Result<bool, StoreError>> + Send {
        let _ = (instance, contact);
        std::future::ready(Ok(false))
    }
}

/// A shared queue is a queue.
impl<Q: Queue> Queue for std::sync::Arc<Q> {
    fn accept(&self, entry: &InboxEntry) -> impl Future<Output = Result<Accepted, StoreError>> + Send {
        (**self).accept(entry)
    }
    fn pending_contacts(&self, limit: u32) -> impl Future<Output = Result<Vec<(InstanceId, Contact)>, StoreError>> + Send {
        (**self).pending_contacts(limit)
    }
    fn next_pending(
        &self,
        instance: &InstanceId,
        contact: &Contact,
    ) -> impl Future<Output = Result<Option<Pending>, StoreError>> + Send {
        (**self).next_pending(instance, contact)
    }
    fn commit_inbound(&self, turn: &Turn, pending: &Pending, reply_to: &str) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).commit_inbound(turn, pending, reply_to)
    }
    fn due_outbox(&self, now: Timestamp, limit: u32) -> impl Future<Output = Result<Vec<Outgoing>, StoreError>> + Send {
        (**self).due_outbox(now, limit)
    }
    fn outbox_attempt(&self, seq: i64, at: Timestamp) -> impl Future<Output = Result<bool, StoreError>> + Send {
        (**self).outbox_attempt(seq, at)
    }
    fn outbox_unsure(&self, seq: i64, next_at: Timestamp, error: &str) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).outbox_unsure(seq, next_at, error)
    }
    fn sent_ids_since(&self, instance: &InstanceId, contact: &Contact, since: Timestamp) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send {
        (**self).sent_ids_since(instance, contact, since)
    }
    fn outbox_sent(&self, seq: i64, provider_id: Option<&str>, at: Timestamp) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).outbox_sent(seq, provider_id, at)
    }
    fn outbox_retry(&self, seq: i64, next_at: Timestamp, error: &str) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).outbox_retry(seq, next_at, error)
    }
    fn outbox_failed(&self, seq: i64, reason: &str, at: Timestamp) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).outbox_failed(seq, reason, at)
    }
    fn outbox_depth(&self) -> impl Future<Output = Result<u64, StoreError>> + Send {
        (**self).outbox_depth()
    }
    fn release_contact(&self, instance: &InstanceId, contact: &Contact) -> impl Future<Output = Result<bool, StoreError>> + Send {
        (**self).release_contact(instance, contact)
    }
}
