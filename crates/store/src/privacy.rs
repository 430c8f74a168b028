//! Personal data: erasing one contact on request (Brazil's LGPD right to
//! erasure) and purging old message texts and session data (retention).
//!
//! Both keep what analytics count: session rows keep their flow, version,
//! step, outcome and times; events keep their kinds and steps; inbox and
//! outbox rows stay (messages in and out are counted). What goes is what
//! identifies or describes the person: the number and every id linked to it
//! ([`crate::aliases`]), replaced by one pseudonym; what they wrote, what we
//! wrote them, and the values a flow collected (CPF, e-mail ...).
//!
//! # On disk
//! An `UPDATE` leaves the old row version behind until the engine reuses
//! the space, so both operations end by reaching the bytes:
//! - **SQLite:** every connection runs with `secure_delete` (freed cells and
//!   pages are zeroed), and after the commit `wal_checkpoint(TRUNCATE)`
//!   writes the new pages into the database file and cuts the `-wal` file,
//!   which held the old versions, to zero bytes.
//! - **PostgreSQL:** after the commit the touched tables are vacuumed, so no
//!   dead row version can be read. The bytes can stay in a page's free
//!   space until it is reused, in WAL segments until they are recycled, and
//!   in archives and backups for as long as they are kept.

mod spelling;

use serde_json::json;
use switchyard_engine::ids::Contact;
use switchyard_engine::store::StoreError;
use switchyard_engine::time::Timestamp;

use crate::aliases::{contacts, linked_ids, LINKED};
use crate::backend::{both, Backend};

/// What an erasure changed, row counts per table.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Erasure {
    /// The digits that now stand for the contact in every row
    /// ([`Contact::pseudonym`] of the audit record's seq).
    pub pseudonym: String,
    /// The audit record that says the erasure happened.
    pub audit_seq: i64,
    /// The contact's ids that were erased: its number and its aliases.
    pub ids: usize,
    pub sessions: u64,
    pub events: u64,
    pub inbox: u64,
    pub outbox: u64,
    pub handoffs: u64,
    pub assignments: u64,
    /// Rollout policy documents and audit records that named the contact (pins).
    pub policy: u64,
    pub audit: u64,
}

impl Erasure {
    /// Rows touched per table, as the audit record and the admin API show them.
    pub fn rows_json(&self) -> serde_json::Value {
        json!({
            "sessions": self.sessions, "events": self.events, "inbox": self.inbox, "outbox": self.outbox,
            "handoffs": self.handoffs, "split_assignments": self.assignments, "policy": self.policy, "audit": self.audit,
        })
    }

    fn count(&mut self, counted: Counted, rows: u64) {
        let field = match counted {
            Counted::Events => &mut self.events,
            Counted::Sessions => &mut self.sessions,
            Counted::Inbox => &mut self.inbox,
            Counted::Outbox => &mut self.outbox,
            Counted::Handoffs => &mut self.handoffs,
            Counted::Assignments => &mut self.assignments,
            Counted::Policy => &mut self.policy,
            Counted::Audit => &mut self.audit,
            Counted::Nothing => return,
        };
        *field += rows;
    }
}

/// What a retention purge cleared.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Purge {
    pub inbox_texts: u64,
    pub outbox_texts: u64,
    pub session_data: u64,
    pub event_details: u64,
}

impl Purge {
    pub fn is_empty(&self) -> bool {
        *self == Purge::default()
    }
}

/// What a statement's `$1`, `$2`, ... stand for, in order.
#[derive(Clone, Copy)]
enum Arg {
    /// One id of the contact: its number or an alias.
    Id,
    Pseudonym,
    Now,
    /// A pin's reason detail, rewritten to name the pseudonym.
    PinDetail,
}

/// Which count of [`Erasure`] a statement's rows add to.
#[derive(Clone, Copy)]
enum Counted {
    Events,
    Sessions,
    Inbox,
    Outbox,
    Handoffs,
    Assignments,
    Policy,
    Audit,
    Nothing,
}

/// The erasure of one id of the contact, the same statements on both
/// backends. Events are found through their sessions' contact, so they come
/// before the sessions are renamed. Event kinds `failed` and `undeliverable`
/// carry free text that may quote the customer (a handler's panic, a
/// provider's refusal); other details are names the engine made
/// (`handover:billing`) and stay. A pin names the contact in the policy and
/// its audit records as a JSON string: replacing the quoted id cannot touch
/// a longer number that contains it.
const ERASE_ID: &[(Counted, &str, &[Arg])] = &[
    (
        Counted::Events,
        "UPDATE events SET detail = NULL WHERE kind IN ('failed', 'undeliverable') AND detail IS NOT NULL \
         AND session_id IN (SELECT id FROM sessions WHERE contact = $1)",
        &[Arg::Id],
    ),
    (
        Counted::Nothing,
        "UPDATE events SET reason_detail = $2 WHERE reason = 'pin' AND session_id IN (SELECT id FROM sessions WHERE contact = $1)",
        &[Arg::Id, Arg::PinDetail],
    ),
    (
        Counted::Sessions,
        "UPDATE sessions SET contact = $2, data = '{}', reason_detail = CASE WHEN reason = 'pin' THEN $3 ELSE reason_detail END WHERE contact = $1",
        &[Arg::Id, Arg::Pseudonym, Arg::PinDetail],
    ),
    // Unprocessed entries would otherwise be answered under the pseudonym.
    (
        Counted::Inbox,
        "UPDATE inbox SET contact = $2, reply_to = $2, body = CASE WHEN kind IN ('text', 'audio', 'attachment') THEN NULL ELSE body END, \
         processed_at = COALESCE(processed_at, $3) WHERE contact = $1",
        &[Arg::Id, Arg::Pseudonym, Arg::Now],
    ),
    // Unsent replies are dropped (marked failed) rather than sent to nobody.
    (
        Counted::Outbox,
        "UPDATE outbox SET contact = $2, reply_to = $2, text = '', rich = NULL, last_error = NULL, \
         failed_at = CASE WHEN sent_at IS NULL AND failed_at IS NULL THEN $3 ELSE failed_at END WHERE contact = $1",
        &[Arg::Id, Arg::Pseudonym, Arg::Now],
    ),
    (Counted::Handoffs, "DELETE FROM handoffs WHERE contact = $1", &[Arg::Id]),
    (Counted::Assignments, "DELETE FROM split_assignments WHERE contact = $1", &[Arg::Id]),
    (
        Counted::Policy,
        "UPDATE policy SET rules = replace(rules, '\"' || $1 || '\"', '\"' || $2 || '\"') WHERE rules LIKE '%\"' || $1 || '\"%'",
        &[Arg::Id, Arg::Pseudonym],
    ),
    (
        Counted::Audit,
        "UPDATE audit SET before = replace(before, '\"' || $1 || '\"', '\"' || $2 || '\"'), \
         after = replace(after, '\"' || $1 || '\"', '\"' || $2 || '\"') \
         WHERE COALESCE(before, '') LIKE '%\"' || $1 || '\"%' OR COALESCE(after, '') LIKE '%\"' || $1 || '\"%'",
        &[Arg::Id, Arg::Pseudonym],
    ),
    (Counted::Nothing, "DELETE FROM contact_aliases WHERE phone = $1 OR lid = $1", &[Arg::Id]),
    // Holds keep their times (report counts them); the note for Chatwoot goes.
    (Counted::Nothing, "UPDATE holds SET contact = $2, desk_note = NULL WHERE contact = $1", &[Arg::Id, Arg::Pseudonym]),
    (Counted::Nothing, "DELETE FROM chatwoot_links WHERE contact = $1", &[Arg::Id]),
];

/// Live sessions of the contact under any of its ids.
const LIVE: &str = concat!(linked_ids!(), "SELECT COUNT(*) FROM sessions WHERE outcome IS NULL AND contact IN (SELECT id FROM ids)");

/// The retention purge, `$1` = the cutoff, both backends.
const PURGE: [&str; 4] = [
    "UPDATE inbox SET body = NULL WHERE kind IN ('text', 'audio', 'attachment') AND body IS NOT NULL AND processed_at IS NOT NULL AND received_at < $1",
    "UPDATE outbox SET text = '', rich = NULL, last_error = NULL WHERE text <> '' AND (sent_at IS NOT NULL OR failed_at IS NOT NULL) AND created_at < $1",
    "UPDATE sessions SET data = '{}' WHERE outcome IS NOT NULL AND data <> '{}' AND ended_at < $1",
    "UPDATE events SET detail = NULL WHERE kind IN ('failed', 'undeliverable') AND detail IS NOT NULL AND at < $1",
];

/// The tables each operation writes (vacuumed after it on PostgreSQL).
const ERASED_TABLES: &str = "sessions, events, inbox, outbox, handoffs, split_assignments, contact_leases, policy, audit, contact_aliases, holds, chatwoot_links";
const PURGED_TABLES: &str = "inbox, outbox, sessions, events";

/// The audit reasons (seq, text) that name one of `ids` in any spelling,
/// rewritten with the pseudonym. Reasons are free text (`tester +55 11
/// 9...`), so this is done here rather than in SQL.
fn rewritten_reasons(reasons: Vec<(i64, String)>, ids: &[Contact], pseudonym: &str) -> Vec<(i64, String)> {
    let mut spellings: Vec<String> = ids.iter().flat_map(|id| spelling::spellings(id.as_str())).collect();
    spellings.sort_by_key(|digits| std::cmp::Reverse(digits.len()));
    reasons
        .into_iter()
        .filter_map(|(seq, reason)| {
            let rewritten = spelling::replace_spelled(&reason, &spellings, pseudonym);
            (rewritten != reason).then_some((seq, rewritten))
        })
        .collect()
}

/// The operation committed but its old row versions could not be cleared
/// yet: said plainly, as the operator asked for them to be gone.
fn not_scrubbed(what: &str, err: StoreError) -> StoreError {
    StoreError::Unavailable(format!("{what} committed, but clearing its old row versions from disk failed (the next erasure or purge retries): {err}"))
}

both! {
    /// Erases `contact` and every id linked to it, everywhere, in one
    /// transaction, and records an `erasure` audit record (actor, reason,
    /// the pseudonym and the counts; never the number). Refused with
    /// [`StoreError::Conflict`] while the contact has a live session: end it
    /// first, so the customer gets a proper goodbye and the analytics an
    /// outcome. Then the old row versions are cleared from disk (see the
    /// module docs).
    pub async fn forget_contact(&self, contact: &Contact, actor: &str, reason: &str, at: Timestamp) -> Result<Erasure, StoreError> {
        let mut tx = self.begin_erasure().await?;
        let ids = contacts(sqlx::query_scalar(LINKED).bind(contact.as_str()).fetch_all(&mut *tx).await.map_err(Self::map_err)?)?;
        let live: i64 = sqlx::query_scalar(LIVE).bind(contact.as_str()).fetch_one(&mut *tx).await.map_err(Self::map_err)?;
        if live > 0 {
            return Err(StoreError::Conflict(format!("contact {} has a live session; end it first", contact.masked())));
        }
        let audit_seq: i64 = sqlx::query_scalar("INSERT INTO audit (at, actor, action, reason) VALUES ($1, $2, 'erasure', $3) RETURNING seq")
            .bind(at.as_millis())
            .bind(actor)
            .bind(reason)
            .fetch_one(&mut *tx)
            .await
            .map_err(Self::map_err)?;
        let pseudonym = Contact::pseudonym(audit_seq);
        let pin_detail = format!("contact {}", pseudonym.masked_tail());
        let mut erasure = Erasure { pseudonym: pseudonym.as_str().to_owned(), audit_seq, ids: ids.len(), ..Erasure::default() };
        let mut quoted_in_audit = 0;
        for id in &ids {
            for sql in Self::CONTACT_CLAIMS {
                sqlx::query(*sql).bind(id.as_str()).execute(&mut *tx).await.map_err(Self::map_err)?;
            }
            for (counted, sql, args) in ERASE_ID {
                let mut query = sqlx::query(*sql);
                for arg in *args {
                    query = match arg {
                        Arg::Id => query.bind(id.as_str()),
                        Arg::Pseudonym => query.bind(pseudonym.as_str()),
                        Arg::Now => query.bind(at.as_millis()),
                        Arg::PinDetail => query.bind(pin_detail.as_str()),
                    };
                }
                let rows = query.execute(&mut *tx).await.map_err(Self::map_err)?.rows_affected();
                match counted {
                    Counted::Audit => quoted_in_audit += rows,
                    counted => erasure.count(*counted, rows),
                }
            }
        }
        let reasons: Vec<(i64, String)> = sqlx::query_as("SELECT seq, reason FROM audit").fetch_all(&mut *tx).await.map_err(Self::map_err)?;
        let rewrites = rewritten_reasons(reasons, &ids, pseudonym.as_str());
        erasure.audit = quoted_in_audit.max(rewrites.len() as u64);
        for (seq, rewritten) in rewrites {
            sqlx::query("UPDATE audit SET reason = $1 WHERE seq = $2").bind(rewritten).bind(seq).execute(&mut *tx).await.map_err(Self::map_err)?;
        }
        let after = json!({ "pseudonym": erasure.pseudonym, "ids": erasure.ids, "rows": erasure.rows_json() });
        sqlx::query("UPDATE audit SET after = $1 WHERE seq = $2").bind(after.to_string()).bind(audit_seq).execute(&mut *tx).await.map_err(Self::map_err)?;
        tx.commit().await.map_err(Self::map_err)?;
        self.scrub(ERASED_TABLES).await.map_err(|err| not_scrubbed(&format!("erasure #{}", erasure.audit_seq), err))?;
        Ok(erasure)
    }

    /// Clears what customers wrote and what we wrote them before `cutoff`
    /// (processed inbox texts, delivered or failed outbox texts), the data of
    /// sessions that ended before it, and free-text event details. Counts,
    /// steps, outcomes and times stay. Numbers stay too: a live customer's
    /// identity is needed to answer them; `forget_contact` removes it.
    pub async fn purge_before(&self, cutoff: Timestamp) -> Result<Purge, StoreError> {
        let mut tx = self.begin_write().await?;
        let mut counts = [0u64; 4];
        for (count, sql) in counts.iter_mut().zip(PURGE) {
            *count = sqlx::query(sql).bind(cutoff.as_millis()).execute(&mut *tx).await.map_err(Self::map_err)?.rows_affected();
        }
        tx.commit().await.map_err(Self::map_err)?;
        let [inbox_texts, outbox_texts, session_data, event_details] = counts;
        let purge = Purge { inbox_texts, outbox_texts, session_data, event_details };
        if !purge.is_empty() {
            self.scrub(PURGED_TABLES).await.map_err(|err| not_scrubbed("the retention purge", err))?;
        }
        Ok(purge)
    }
}

#[cfg(test)]
mod tests {
    use switchyard_engine::session::Outcome;

    use super::*;
    use crate::sqlite::SqliteStore;
    use crate::sessions::tests::insert;

    async fn exec(store: &SqliteStore, sql: &'static str) {
        sqlx::query(sql).execute(store.writer()).await.unwrap();
    }

    async fn scalar(store: &SqliteStore, sql: &'static str) -> i64 {
        sqlx::query_scalar(sql).fetch_one(store.pool()).await.unwrap()
    }

    /// A contact with a finished session, its messages, a pin and a hold.
    async fn seed(store: &SqliteStore) {
        insert(store, "vendas", "5511988887777", "billing", 1, "ask", 1_000, Some(Outcome::Cancelled)).await;
        insert(store, "vendas", "5511900000002", "billing", 1, "ask", 1_000, Some(Outcome::Completed)).await;
        exec(store, "UPDATE sessions SET data = '{\"document\":\"529.982.247-25\",\"email\":\"ana@example.com\"}'").await;
        exec(store, "INSERT INTO events (session_id, flow, version, at, step, kind, detail) SELECT id, flow, version, 1000, step, 'failed', 'panic: 529.982.247-25' FROM sessions").await;
        exec(store, "INSERT INTO events (session_id, flow, version, at, step, kind, detail) SELECT id, flow, version, 1000, step, 'cancelled', 'command:exit' FROM sessions").await;
        exec(store, "INSERT INTO inbox (instance, message_id, contact, reply_to, kind, body, received_at, processed_at) VALUES \
                     ('vendas', 'M1', '5511988887777', '5511988887777@s.whatsapp.net', 'text', 'meu cpf 529.982.247-25', 1000, 1000), \
                     ('vendas', 'M2', '5511900000002', '5511900000002@s.whatsapp.net', 'text', 'oi', 1000, 1000)").await;
        exec(store, "INSERT INTO outbox (instance, contact, reply_to, text, created_at, next_attempt_at, sent_at) VALUES \
                     ('vendas', '5511988887777', '5511988887777@s.whatsapp.net', 'Documento: 529.982.247-25', 1000, 0, 1000), \
                     ('vendas', '5511988887777', '5511988887777@s.whatsapp.net', 'ainda na fila', 1000, 0, NULL), \
                     ('vendas', '5511900000002', '5511900000002@s.whatsapp.net', 'Olá', 1000, 0, 1000)").await;
        exec(store, "INSERT INTO handoffs (instance, contact, until) VALUES ('vendas', '5511988887777', 99999)").await;
        exec(store, "INSERT INTO split_assignments (contact, flow, version, assigned_at) VALUES ('5511988887777', 'billing', 1, 1000)").await;
        exec(store, "INSERT INTO policy (flow, rules, updated_at) VALUES ('billing', '{\"pins\":[{\"contact\":\"5511988887777\",\"version\":\"v2\"}]}', 1000)").await;
        exec(store, "INSERT INTO audit (at, actor, action, flow, reason, after) VALUES (1000, 'ana', 'pin', 'billing', 'tester 5511988887777', '{\"contact\":\"5511988887777\"}')").await;
    }

    #[tokio::test]
    async fn forgetting_a_contact_leaves_no_trace_of_it_and_keeps_the_counts() {
        let store = SqliteStore::open("sqlite::memory:").await.unwrap();
        seed(&store).await;
        let contact = Contact::parse("5511988887777").unwrap();
        let erasure = store.forget_contact(&contact, "dpo", "titular pediu (ticket 42)", Timestamp::from_millis(5_000)).await.unwrap();
        assert_eq!(erasure.pseudonym, format!("00{:018}", erasure.audit_seq));
        assert_eq!(erasure.ids, 1);
        assert_eq!((erasure.sessions, erasure.inbox, erasure.outbox, erasure.handoffs, erasure.assignments, erasure.policy), (1, 1, 2, 1, 1, 1));
        assert_eq!(erasure.audit, 1, "the pin's audit record; the erasure's own names no number");

        for sql in [
            "SELECT COUNT(*) FROM sessions WHERE contact = '5511988887777' OR data LIKE '%529%' AND contact <> '5511900000002'",
            "SELECT COUNT(*) FROM inbox WHERE contact = '5511988887777' OR reply_to LIKE '%88887777%' OR body LIKE '%529.982%'",
            "SELECT COUNT(*) FROM outbox WHERE contact = '5511988887777' OR reply_to LIKE '%88887777%' OR text LIKE '%529.982%'",
            "SELECT COUNT(*) FROM policy WHERE rules LIKE '%88887777%'",
            "SELECT COUNT(*) FROM audit WHERE reason LIKE '%88887777%' OR after LIKE '%88887777%'",
            "SELECT COUNT(*) FROM handoffs",
            "SELECT COUNT(*) FROM split_assignments",
        ] {
            assert_eq!(scalar(&store, sql).await, 0, "{sql}");
        }
        // The other customer is untouched; counts are intact.
        assert_eq!(scalar(&store, "SELECT COUNT(*) FROM sessions WHERE contact = '5511900000002' AND data LIKE '%529%'").await, 1);
        assert_eq!(scalar(&store, "SELECT COUNT(*) FROM sessions").await, 2);
        assert_eq!(scalar(&store, "SELECT COUNT(*) FROM sessions WHERE outcome = 'cancelled'").await, 1);
        assert_eq!(scalar(&store, "SELECT COUNT(*) FROM events WHERE detail = 'command:exit'").await, 2, "engine-made details stay");
        assert_eq!(scalar(&store, "SELECT COUNT(*) FROM events WHERE kind = 'failed' AND detail IS NULL").await, 1);
        assert_eq!(scalar(&store, "SELECT COUNT(*) FROM outbox WHERE failed_at IS NOT NULL").await, 1, "the queued reply is dropped");
        assert_eq!(scalar(&store, "SELECT COUNT(*) FROM inbox").await, 2);
        // The audit says it happened, by whom and why, with the counts.
        let (actor, action, reason, after): (String, String, String, String) =
            sqlx::query_as("SELECT actor, action, reason, after FROM audit WHERE seq = ?").bind(erasure.audit_seq).fetch_one(store.pool()).await.unwrap();
        assert_eq!((actor.as_str(), action.as_str(), reason.as_str()), ("dpo", "erasure", "titular pediu (ticket 42)"));
        let after: serde_json::Value = serde_json::from_str(&after).unwrap();
        assert_eq!(after["pseudonym"], erasure.pseudonym.as_str());
        assert_eq!(after["rows"]["sessions"], 1);
        // The pseudonym reads back as a contact (the sweeper and `sessions show` parse it).
        assert_eq!(store.history_of(&Contact::parse(&erasure.pseudonym).unwrap()).await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn forgetting_a_number_reaches_its_lid_rows_pin_details_and_spelled_reasons() {
        let store = SqliteStore::open("sqlite::memory:").await.unwrap();
        insert(&store, "vendas", "204837561234567", "billing", 1, "ask", 1_000, Some(Outcome::Completed)).await;
        insert(&store, "vendas", "5511988887777", "billing", 1, "ask", 2_000, Some(Outcome::Completed)).await;
        insert(&store, "vendas", "5511988887778", "billing", 1, "ask", 2_000, Some(Outcome::Completed)).await;
        exec(&store, "UPDATE sessions SET reason = 'pin', reason_detail = 'contact 5511*******77'").await;
        exec(&store, "INSERT INTO events (session_id, flow, version, at, step, kind, reason, reason_detail) \
                      SELECT id, flow, version, 1000, step, 'started', reason, reason_detail FROM sessions").await;
        exec(&store, "INSERT INTO audit (at, actor, action, reason) VALUES (1000, 'ana', 'pin', 'tester +55 (11) 98888-7777'), \
                      (1001, 'ana', 'unpin', 'lid 204837561234567 done'), (1002, 'ana', 'pin', 'outro 11988887778')").await;
        let (phone, lid) = (Contact::parse("5511988887777").unwrap(), Contact::parse("204837561234567").unwrap());
        store.link_alias(&phone, &lid, &switchyard_engine::ids::InstanceId::parse("vendas").unwrap(), "M7", Timestamp::from_millis(1_500)).await.unwrap();
        let erasure = store.forget_contact(&phone, "dpo", "pedido", Timestamp::from_millis(5_000)).await.unwrap();
        assert_eq!((erasure.ids, erasure.sessions, erasure.audit), (2, 2, 2), "{erasure:?}");

        let pseudonym = Contact::pseudonym(erasure.audit_seq);
        assert_eq!(scalar(&store, "SELECT COUNT(*) FROM sessions WHERE contact IN ('5511988887777', '204837561234567')").await, 0);
        let details: Vec<(String, String)> = sqlx::query_as(
            "SELECT s.contact, s.reason_detail FROM sessions s UNION ALL SELECT s.contact, e.reason_detail FROM events e JOIN sessions s ON s.id = e.session_id",
        )
        .fetch_all(store.pool())
        .await
        .unwrap();
        for (contact, detail) in details {
            let expected = if contact == pseudonym.as_str() { format!("contact {}", pseudonym.masked_tail()) } else { "contact 5511*******77".to_owned() };
            assert_eq!(detail, expected, "{contact}");
        }
        let reasons: Vec<String> = sqlx::query_scalar("SELECT reason FROM audit ORDER BY seq").fetch_all(store.pool()).await.unwrap();
        assert_eq!(
            reasons,
            [format!("tester {}", pseudonym.as_str()), format!("lid {} done", pseudonym.as_str()), "outro 11988887778".to_owned(), "pedido".to_owned()]
        );
        assert_eq!(scalar(&store, "SELECT COUNT(*) FROM contact_aliases").await, 0, "the link goes too");
    }

    /// How many copies of `needle` the database file and its `-wal` and
    /// `-shm` files hold, byte for byte (free space and old frames too).
    fn copies_on_disk(url: &str, needle: &str) -> usize {
        let path = url.strip_prefix("sqlite://").unwrap();
        ["", "-wal", "-shm"]
            .iter()
            .filter_map(|suffix| std::fs::read(format!("{path}{suffix}")).ok())
            .map(|bytes| bytes.windows(needle.len()).filter(|window| *window == needle.as_bytes()).count())
            .sum()
    }

    #[tokio::test]
    async fn after_a_retention_purge_the_old_texts_are_gone_from_the_files_too() {
        let url = crate::testing::fresh_sqlite_url("purge-bytes");
        let store = SqliteStore::open(&url).await.unwrap();
        seed(&store).await;
        assert!(copies_on_disk(&url, "529.982.247-25") > 0, "the search finds the seeded CPF");
        let purge = store.purge_before(Timestamp::from_millis(5_000)).await.unwrap();
        assert!(!purge.is_empty());
        for needle in ["529.982.247-25", "ana@example.com", "meu cpf"] {
            assert_eq!(copies_on_disk(&url, needle), 0, "{needle} is still on disk");
        }
        assert!(copies_on_disk(&url, "ainda na fila") > 0, "an unsent reply stays");
    }

    #[tokio::test]
    async fn pin_details_stored_before_the_upgrade_keep_two_digits_after_it() {
        let url = crate::testing::fresh_sqlite_url("pin-detail");
        let old = sqlx::SqlitePool::connect(&format!("{url}?mode=rwc")).await.unwrap();
        crate::sqlite::migrator().run_to(6, &old).await.unwrap();
        sqlx::query(
            "INSERT INTO sessions (id, instance, contact, flow, version, fingerprint, reason, reason_detail, step, data, attempts, turns, \
             started_at, last_input_at, expires_at, revision) VALUES ('s1', 'vendas', '5511988887777', 'billing', 1, 'ff', 'pin', \
             'contact 5511*******77', 'ask', '{}', 0, 1, 0, 0, 0, 1), ('s2', 'vendas', '5511988887778', 'billing', 1, 'ff', 'split', \
             'v1 at 50% (position 12)', 'ask', '{}', 0, 1, 0, 0, 0, 1)",
        )
        .execute(&old)
        .await
        .unwrap();
        old.close().await;
        let store = SqliteStore::open(&url).await.unwrap();
        let details: Vec<String> = sqlx::query_scalar("SELECT reason_detail FROM sessions ORDER BY id").fetch_all(store.pool()).await.unwrap();
        assert_eq!(details, ["contact ***********77", "v1 at 50% (position 12)"]);
    }

    #[tokio::test]
    async fn a_contact_with_a_live_session_is_refused_until_it_ends() {
        let store = SqliteStore::open("sqlite::memory:").await.unwrap();
        insert(&store, "vendas", "5511988887777", "billing", 1, "ask", 1_000, None).await;
        let contact = Contact::parse("5511988887777").unwrap();
        let refused = store.forget_contact(&contact, "dpo", "pedido", Timestamp::from_millis(5_000)).await;
        assert!(matches!(&refused, Err(StoreError::Conflict(message)) if message.contains("live session") && !message.contains("88887777")), "{refused:?}");
        assert_eq!(scalar(&store, "SELECT COUNT(*) FROM audit").await, 0, "nothing recorded for a refused erasure");
    }

    #[tokio::test]
    async fn retention_clears_old_texts_and_data_only() {
        let store = SqliteStore::open("sqlite::memory:").await.unwrap();
        seed(&store).await;
        insert(&store, "vendas", "5511900000003", "billing", 1, "ask", 9_000, None).await;
        exec(&store, "UPDATE sessions SET data = '{\"email\":\"novo@example.com\"}' WHERE contact = '5511900000003'").await;
        exec(&store, "INSERT INTO inbox (instance, message_id, contact, reply_to, kind, body, received_at, processed_at) VALUES \
                      ('vendas', 'M9', '5511900000003', 'x', 'text', 'recente', 9000, 9000)").await;
        let purge = store.purge_before(Timestamp::from_millis(5_000)).await.unwrap();
        assert_eq!(purge, Purge { inbox_texts: 2, outbox_texts: 2, session_data: 2, event_details: 2 });
        assert_eq!(scalar(&store, "SELECT COUNT(*) FROM inbox WHERE body IS NOT NULL").await, 1, "the recent message stays");
        assert_eq!(scalar(&store, "SELECT COUNT(*) FROM outbox WHERE text = 'ainda na fila'").await, 1, "an unsent reply stays");
        assert_eq!(scalar(&store, "SELECT COUNT(*) FROM sessions WHERE data <> '{}'").await, 1, "the live session keeps its data");
        assert_eq!(scalar(&store, "SELECT COUNT(*) FROM events WHERE detail = 'command:exit'").await, 2);
        assert_eq!(scalar(&store, "SELECT COUNT(*) FROM sessions").await, 3);
        assert!(store.purge_before(Timestamp::from_millis(5_000)).await.unwrap().is_empty(), "idempotent");
    }
}
