//! Personal data: erasing one contact on request (Brazil's LGPD right to
//! erasure) and purging old message texts and session data (retention).
//!
//! Both keep what analytics count: session rows keep their flow, version,
//! step, outcome and times; events keep their kinds and steps; inbox and
//! outbox rows stay (messages in and out are counted). What goes is what
//! identifies or describes the person: the number (replaced by a
//! pseudonym), what they wrote, what we wrote them, and the values a flow
//! collected (CPF, e-mail ...).

use serde_json::json;
use switchyard_engine::ids::Contact;
use switchyard_engine::store::StoreError;
use switchyard_engine::time::Timestamp;

use crate::postgres::map_err as pg_err;
use crate::sqlite::{map_err, SqliteStore};

/// Event kinds whose `detail` is free text that may quote the customer (a
/// handler's panic message, a provider's refusal). Other details are names
/// the engine made (`handover:billing`, `command:menu`) and are kept.
const FREE_TEXT_EVENTS: &str = "('failed', 'undeliverable')";

/// What an erasure changed, row counts per table.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Erasure {
    /// The digits that now stand for the contact in every row (`00` and the
    /// audit record's seq: no real number starts with 0).
    pub pseudonym: String,
    /// The audit record that says the erasure happened.
    pub audit_seq: i64,
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

/// `text` with every whole-number occurrence of `number` (not part of a
/// longer run of digits) replaced by `by`.
fn replace_number(text: &str, number: &str, by: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut previous_is_digit = false;
    while let Some(at) = rest.find(number) {
        let before_digit = if at == 0 { previous_is_digit } else { rest.as_bytes()[at - 1].is_ascii_digit() };
        let after = at + number.len();
        let after_digit = rest.as_bytes().get(after).is_some_and(u8::is_ascii_digit);
        out.push_str(&rest[..at]);
        if before_digit || after_digit {
            out.push_str(number);
        } else {
            out.push_str(by);
        }
        previous_is_digit = true;
        rest = &rest[after..];
    }
    out.push_str(rest);
    out
}

/// The audit reasons (seq, text) that name `number` as a whole number,
/// rewritten with the pseudonym.
fn rewritten_reasons(reasons: Vec<(i64, String)>, number: &str, pseudonym: &str) -> Vec<(i64, String)> {
    reasons
        .into_iter()
        .filter_map(|(seq, reason)| {
            let rewritten = replace_number(&reason, number, pseudonym);
            (rewritten != reason).then_some((seq, rewritten))
        })
        .collect()
}

impl SqliteStore {
    /// Erases `contact` everywhere, in one transaction, and records an
    /// `erasure` audit record (actor, reason, the pseudonym and the counts;
    /// never the number). Refused with [`StoreError::Conflict`] while the
    /// contact has a live session: end it first, so the customer gets a
    /// proper goodbye and the analytics an outcome.
    pub async fn forget_contact(&self, contact: &Contact, actor: &str, reason: &str, at: Timestamp) -> Result<Erasure, StoreError> {
        let number = contact.as_str();
        let mut tx = self.writer().begin().await.map_err(map_err)?;
        let live: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM sessions WHERE contact = ? AND outcome IS NULL")
            .bind(number)
            .fetch_one(&mut *tx)
            .await
            .map_err(map_err)?;
        if live > 0 {
            return Err(StoreError::Conflict(format!("contact {} has a live session; end it first", contact.masked())));
        }
        let audit_seq: i64 = sqlx::query_scalar("INSERT INTO audit (at, actor, action, reason) VALUES (?, ?, 'erasure', ?) RETURNING seq")
            .bind(at.as_millis())
            .bind(actor)
            .bind(reason)
            .fetch_one(&mut *tx)
            .await
            .map_err(map_err)?;
        let pseudonym = format!("00{audit_seq:018}");
        let mut erasure = Erasure { pseudonym: pseudonym.clone(), audit_seq, ..Erasure::default() };
        let run = |sql: String| sqlx::query(sqlx::AssertSqlSafe(sql)).bind(number).bind(pseudonym.clone()).bind(at.as_millis());
        // ?1 = the number, ?2 = the pseudonym, ?3 = now.
        erasure.events = run(format!(
            "UPDATE events SET detail = NULL WHERE kind IN {FREE_TEXT_EVENTS} \
             AND session_id IN (SELECT id FROM sessions WHERE contact = ?1) AND ?2 IS NOT NULL AND ?3 IS NOT NULL"
        ))
        .execute(&mut *tx)
        .await
        .map_err(map_err)?
        .rows_affected();
        // (A pin's reason detail holds the masked contact only.)
        erasure.sessions = run("UPDATE sessions SET contact = ?2, data = '{}' WHERE contact = ?1 AND ?3 IS NOT NULL".to_owned())
            .execute(&mut *tx)
            .await
            .map_err(map_err)?
            .rows_affected();
        // Unprocessed entries would otherwise be answered under the pseudonym.
        erasure.inbox = run("UPDATE inbox SET contact = ?2, reply_to = ?2, body = CASE WHEN kind = 'text' THEN NULL ELSE body END, \
                             processed_at = COALESCE(processed_at, ?3) WHERE contact = ?1".to_owned())
            .execute(&mut *tx)
            .await
            .map_err(map_err)?
            .rows_affected();
        // Unsent replies are dropped (marked failed) rather than sent to nobody.
        erasure.outbox = run("UPDATE outbox SET contact = ?2, reply_to = ?2, text = '', last_error = NULL, \
                              failed_at = CASE WHEN sent_at IS NULL AND failed_at IS NULL THEN ?3 ELSE failed_at END WHERE contact = ?1"
            .to_owned())
            .execute(&mut *tx)
            .await
            .map_err(map_err)?
            .rows_affected();
        erasure.handoffs = run("DELETE FROM handoffs WHERE contact = ?1 AND ?2 IS NOT NULL AND ?3 IS NOT NULL".to_owned())
            .execute(&mut *tx)
            .await
            .map_err(map_err)?
            .rows_affected();
        erasure.assignments = run("DELETE FROM split_assignments WHERE contact = ?1 AND ?2 IS NOT NULL AND ?3 IS NOT NULL".to_owned())
            .execute(&mut *tx)
            .await
            .map_err(map_err)?
            .rows_affected();
        // A pin names the contact in the policy document and in the audit
        // records of its change, always as a JSON string: replacing the
        // quoted number cannot touch a longer number that contains it.
        erasure.policy = run("UPDATE policy SET rules = replace(rules, '\"' || ?1 || '\"', '\"' || ?2 || '\"') \
                              WHERE instr(rules, '\"' || ?1 || '\"') > 0 AND ?3 IS NOT NULL"
            .to_owned())
        .execute(&mut *tx)
        .await
        .map_err(map_err)?
        .rows_affected();
        let quoted_in_audit = run("UPDATE audit SET before = replace(before, '\"' || ?1 || '\"', '\"' || ?2 || '\"'), \
                                   after = replace(after, '\"' || ?1 || '\"', '\"' || ?2 || '\"') \
                                   WHERE (instr(COALESCE(before, ''), '\"' || ?1 || '\"') > 0 OR instr(COALESCE(after, ''), '\"' || ?1 || '\"') > 0) \
                                   AND ?3 IS NOT NULL"
            .to_owned())
        .execute(&mut *tx)
        .await
        .map_err(map_err)?
        .rows_affected();
        // Reasons are free text ("tester 5511..."): the number is replaced
        // where it stands as a whole number, here rather than in SQL.
        let reasons: Vec<(i64, String)> = sqlx::query_as("SELECT seq, reason FROM audit WHERE instr(reason, ?) > 0")
            .bind(number)
            .fetch_all(&mut *tx)
            .await
            .map_err(map_err)?;
        let rewrites = rewritten_reasons(reasons, number, &pseudonym);
        let reasons_rewritten = rewrites.len() as u64;
        for (seq, rewritten) in rewrites {
            sqlx::query("UPDATE audit SET reason = ? WHERE seq = ?").bind(rewritten).bind(seq).execute(&mut *tx).await.map_err(map_err)?;
        }
        erasure.audit = quoted_in_audit.max(reasons_rewritten);
        let after = json!({ "pseudonym": erasure.pseudonym, "rows": erasure.rows_json() });
        sqlx::query("UPDATE audit SET after = ? WHERE seq = ?")
            .bind(after.to_string())
            .bind(audit_seq)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        Ok(erasure)
    }

    /// Clears what customers wrote and what we wrote them before `cutoff`
    /// (processed inbox texts, delivered or failed outbox texts), the data of
    /// sessions that ended before it, and free-text event details. Counts,
    /// steps, outcomes and times stay. Numbers stay too: a live customer's
    /// identity is needed to answer them; `forget_contact` removes it.
    pub async fn purge_before(&self, cutoff: Timestamp) -> Result<Purge, StoreError> {
        let cutoff = cutoff.as_millis();
        let mut tx = self.writer().begin().await.map_err(map_err)?;
        let inbox_texts = sqlx::query("UPDATE inbox SET body = NULL WHERE kind = 'text' AND body IS NOT NULL AND processed_at IS NOT NULL AND received_at < ?")
            .bind(cutoff)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?
            .rows_affected();
        let outbox_texts = sqlx::query(
            "UPDATE outbox SET text = '', last_error = NULL WHERE text <> '' AND (sent_at IS NOT NULL OR failed_at IS NOT NULL) AND created_at < ?",
        )
        .bind(cutoff)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?
        .rows_affected();
        let session_data = sqlx::query("UPDATE sessions SET data = '{}' WHERE outcome IS NOT NULL AND data <> '{}' AND ended_at < ?")
            .bind(cutoff)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?
            .rows_affected();
        let event_details = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE events SET detail = NULL WHERE kind IN {FREE_TEXT_EVENTS} AND detail IS NOT NULL AND at < ?"
        )))
        .bind(cutoff)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?
        .rows_affected();
        tx.commit().await.map_err(map_err)?;
        Ok(Purge { inbox_texts, outbox_texts, session_data, event_details })
    }
}

/// The same operations on PostgreSQL (plus the contact's lease).
impl crate::postgres::PgStore {
    pub async fn forget_contact(&self, contact: &Contact, actor: &str, reason: &str, at: Timestamp) -> Result<Erasure, StoreError> {
        let number = contact.as_str();
        let mut tx = self.pool().begin().await.map_err(pg_err)?;
        crate::postgres::lock_audit(&mut tx).await?;
        // Other processes keep committing turns; without this lock a session
        // started between the live check and the rename would be renamed
        // live. Erasures are rare and short, so turns wait for one briefly.
        sqlx::query("LOCK TABLE sessions IN SHARE ROW EXCLUSIVE MODE").execute(&mut *tx).await.map_err(pg_err)?;
        let live: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM sessions WHERE contact = $1 AND outcome IS NULL")
            .bind(number)
            .fetch_one(&mut *tx)
            .await
            .map_err(pg_err)?;
        if live > 0 {
            return Err(StoreError::Conflict(format!("contact {} has a live session; end it first", contact.masked())));
        }
        let audit_seq: i64 = sqlx::query_scalar("INSERT INTO audit (at, actor, action, reason) VALUES ($1, $2, 'erasure', $3) RETURNING seq")
            .bind(at.as_millis())
            .bind(actor)
            .bind(reason)
            .fetch_one(&mut *tx)
            .await
            .map_err(pg_err)?;
        let pseudonym = format!("00{audit_seq:018}");
        let mut erasure = Erasure { pseudonym: pseudonym.clone(), audit_seq, ..Erasure::default() };
        // $1 = the number, and where used $2 = the pseudonym, $3 = now.
        let only_number = |sql: &'static str| sqlx::query(sql).bind(number);
        let renamed = |sql: &'static str| sqlx::query(sql).bind(number).bind(pseudonym.clone());
        erasure.events = only_number(
            "UPDATE events SET detail = NULL WHERE kind IN ('failed', 'undeliverable') \
             AND session_id IN (SELECT id FROM sessions WHERE contact = $1)",
        )
        .execute(&mut *tx)
        .await
        .map_err(pg_err)?
        .rows_affected();
        erasure.sessions = renamed("UPDATE sessions SET contact = $2, data = '{}' WHERE contact = $1")
            .execute(&mut *tx)
            .await
            .map_err(pg_err)?
            .rows_affected();
        erasure.inbox = renamed(
            "UPDATE inbox SET contact = $2, reply_to = $2, body = CASE WHEN kind = 'text' THEN NULL ELSE body END, \
             processed_at = COALESCE(processed_at, $3) WHERE contact = $1",
        )
        .bind(at.as_millis())
        .execute(&mut *tx)
        .await
        .map_err(pg_err)?
        .rows_affected();
        erasure.outbox = renamed(
            "UPDATE outbox SET contact = $2, reply_to = $2, text = '', last_error = NULL, claimed_by = NULL, claim_until = NULL, \
             failed_at = CASE WHEN sent_at IS NULL AND failed_at IS NULL THEN $3 ELSE failed_at END WHERE contact = $1",
        )
        .bind(at.as_millis())
        .execute(&mut *tx)
        .await
        .map_err(pg_err)?
        .rows_affected();
        erasure.handoffs = only_number("DELETE FROM handoffs WHERE contact = $1").execute(&mut *tx).await.map_err(pg_err)?.rows_affected();
        erasure.assignments =
            only_number("DELETE FROM split_assignments WHERE contact = $1").execute(&mut *tx).await.map_err(pg_err)?.rows_affected();
        only_number("DELETE FROM contact_leases WHERE contact = $1").execute(&mut *tx).await.map_err(pg_err)?;
        erasure.policy = renamed(
            "UPDATE policy SET rules = replace(rules, '\"' || $1 || '\"', '\"' || $2 || '\"') WHERE strpos(rules, '\"' || $1 || '\"') > 0",
        )
        .execute(&mut *tx)
        .await
        .map_err(pg_err)?
        .rows_affected();
        let quoted_in_audit = renamed(
            "UPDATE audit SET before = replace(before, '\"' || $1 || '\"', '\"' || $2 || '\"'), \
             after = replace(after, '\"' || $1 || '\"', '\"' || $2 || '\"') \
             WHERE strpos(COALESCE(before, ''), '\"' || $1 || '\"') > 0 OR strpos(COALESCE(after, ''), '\"' || $1 || '\"') > 0",
        )
        .execute(&mut *tx)
        .await
        .map_err(pg_err)?
        .rows_affected();
        let reasons: Vec<(i64, String)> = sqlx::query_as("SELECT seq, reason FROM audit WHERE strpos(reason, $1) > 0")
            .bind(number)
            .fetch_all(&mut *tx)
            .await
            .map_err(pg_err)?;
        let rewrites = rewritten_reasons(reasons, number, &pseudonym);
        let reasons_rewritten = rewrites.len() as u64;
        for (seq, rewritten) in rewrites {
            sqlx::query("UPDATE audit SET reason = $1 WHERE seq = $2").bind(rewritten).bind(seq).execute(&mut *tx).await.map_err(pg_err)?;
        }
        erasure.audit = quoted_in_audit.max(reasons_rewritten);
        let after = json!({ "pseudonym": erasure.pseudonym, "rows": erasure.rows_json() });
        sqlx::query("UPDATE audit SET after = $1 WHERE seq = $2")
            .bind(after.to_string())
            .bind(audit_seq)
            .execute(&mut *tx)
            .await
            .map_err(pg_err)?;
        tx.commit().await.map_err(pg_err)?;
        Ok(erasure)
    }

    pub async fn purge_before(&self, cutoff: Timestamp) -> Result<Purge, StoreError> {
        let cutoff = cutoff.as_millis();
        let mut tx = self.pool().begin().await.map_err(pg_err)?;
        let mut counts = [0u64; 4];
        let statements = [
            "UPDATE inbox SET body = NULL WHERE kind = 'text' AND body IS NOT NULL AND processed_at IS NOT NULL AND received_at < $1",
            "UPDATE outbox SET text = '', last_error = NULL WHERE text <> '' AND (sent_at IS NOT NULL OR failed_at IS NOT NULL) AND created_at < $1",
            "UPDATE sessions SET data = '{}' WHERE outcome IS NOT NULL AND data <> '{}' AND ended_at < $1",
            "UPDATE events SET detail = NULL WHERE kind IN ('failed', 'undeliverable') AND detail IS NOT NULL AND at < $1",
        ];
        for (count, sql) in counts.iter_mut().zip(statements) {
            *count = sqlx::query(sql).bind(cutoff).execute(&mut *tx).await.map_err(pg_err)?.rows_affected();
        }
        tx.commit().await.map_err(pg_err)?;
        let [inbox_texts, outbox_texts, session_data, event_details] = counts;
        Ok(Purge { inbox_texts, outbox_texts, session_data, event_details })
    }
}

#[cfg(test)]
mod tests {
    use switchyard_engine::session::Outcome;

    use super::*;
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

    #[test]
    fn only_whole_numbers_are_replaced_in_free_text() {
        assert_eq!(replace_number("tester 5511988887777, ok", "5511988887777", "00X"), "tester 00X, ok");
        assert_eq!(replace_number("55119888877771 e 5511988887777", "5511988887777", "00X"), "55119888877771 e 00X");
        assert_eq!(replace_number("12345-12345", "12345", "0"), "0-0");
        assert_eq!(replace_number("fingerprint ab12345cd", "12345", "0"), "fingerprint ab0cd", "letters are boundaries");
        assert_eq!(replace_number("9912345", "12345", "0"), "9912345");
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
