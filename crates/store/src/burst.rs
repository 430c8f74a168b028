//! Debounce support: a contact's burst of text messages ("oi" / "tudo
//! bem?" / "quero meu boleto") read together and merged into one inbox
//! entry, so the engine sees one input. The merge is one transaction and
//! keeps every row (messages in are still counted), so nothing is lost if
//! the process dies before or after it.

use switchyard_engine::ids::{Contact, InstanceId};
use switchyard_engine::queue::{InboxKind, Pending};
use switchyard_engine::store::StoreError;

use crate::codec::inbox_from_row;
use crate::postgres::map_err as pg_err;
use crate::sqlite::{map_err, SqliteStore};

impl SqliteStore {
    /// The contact's unprocessed entries in processing order (as
    /// `next_pending` orders them), cut before the first that is not text:
    /// a burst never swallows an audio, a takeover or what follows them.
    pub async fn pending_burst(&self, instance: &InstanceId, contact: &Contact) -> Result<Vec<Pending>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, instance, message_id, contact, reply_to, kind, body, sent_at, received_at FROM inbox \
             WHERE processed_at IS NULL AND instance = ? AND contact = ? \
             ORDER BY COALESCE(sent_at, received_at), seq LIMIT 50",
        )
        .bind(instance.as_str())
        .bind(contact.as_str())
        .fetch_all(self.pool())
        .await
        .map_err(map_err)?;
        leading_texts(rows.iter().map(inbox_from_row))
    }

    /// Merges `seqs` (a burst, in order) into the first: its body becomes
    /// `text` and the others are marked processed, in one transaction.
    /// Refused with [`StoreError::Conflict`], changing nothing, when any of
    /// them was processed meanwhile (another worker got there first).
    pub async fn merge_burst(&self, seqs: &[i64], text: &str) -> Result<(), StoreError> {
        let Some((first, rest)) = seqs.split_first() else { return Ok(()) };
        let mut tx = self.writer().begin_with("BEGIN IMMEDIATE").await.map_err(map_err)?;
        let updated = sqlx::query("UPDATE inbox SET body = ? WHERE seq = ? AND processed_at IS NULL AND kind = 'text'")
            .bind(text)
            .bind(first)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?
            .rows_affected();
        if updated != 1 {
            return Err(StoreError::Conflict(format!("inbox entry {first} is no longer pending")));
        }
        for seq in rest {
            let updated = sqlx::query("UPDATE inbox SET processed_at = received_at WHERE seq = ? AND processed_at IS NULL AND kind = 'text'")
                .bind(seq)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?
                .rows_affected();
            if updated != 1 {
                return Err(StoreError::Conflict(format!("inbox entry {seq} is no longer pending")));
            }
        }
        tx.commit().await.map_err(map_err)
    }
}

/// The same operations on PostgreSQL.
impl crate::postgres::PgStore {
    pub async fn pending_burst(&self, instance: &InstanceId, contact: &Contact) -> Result<Vec<Pending>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, instance, message_id, contact, reply_to, kind, body, sent_at, received_at FROM inbox \
             WHERE processed_at IS NULL AND instance = $1 AND contact = $2 \
             ORDER BY COALESCE(sent_at, received_at), seq LIMIT 50",
        )
        .bind(instance.as_str())
        .bind(contact.as_str())
        .fetch_all(self.pool())
        .await
        .map_err(pg_err)?;
        leading_texts(rows.iter().map(inbox_from_row))
    }

    pub async fn merge_burst(&self, seqs: &[i64], text: &str) -> Result<(), StoreError> {
        let Some((first, rest)) = seqs.split_first() else { return Ok(()) };
        let mut tx = self.pool().begin().await.map_err(pg_err)?;
        let updated = sqlx::query("UPDATE inbox SET body = $1 WHERE seq = $2 AND processed_at IS NULL AND kind = 'text'")
            .bind(text)
            .bind(first)
            .execute(&mut *tx)
            .await
            .map_err(pg_err)?
            .rows_affected();
        if updated != 1 {
            return Err(StoreError::Conflict(format!("inbox entry {first} is no longer pending")));
        }
        let updated = sqlx::query("UPDATE inbox SET processed_at = received_at WHERE seq = ANY($1) AND processed_at IS NULL AND kind = 'text'")
            .bind(rest)
            .execute(&mut *tx)
            .await
            .map_err(pg_err)?
            .rows_affected();
        if updated != rest.len() as u64 {
            return Err(StoreError::Conflict("an entry of the burst is no longer pending".to_owned()));
        }
        tx.commit().await.map_err(pg_err)
    }
}

/// The leading run of text entries: a burst never swallows an audio, a
/// takeover or what follows them.
fn leading_texts(entries: impl Iterator<Item = Result<Pending, StoreError>>) -> Result<Vec<Pending>, StoreError> {
    let mut burst = Vec::new();
    for pending in entries {
        let pending = pending?;
        if !matches!(pending.entry.kind, InboxKind::Customer(switchyard_engine::engine::Content::Text(_))) {
            break;
        }
        burst.push(pending);
    }
    Ok(burst)
}

#[cfg(test)]
mod tests {
    use switchyard_engine::engine::Content;
    use switchyard_engine::queue::{InboxEntry, Queue};
    use switchyard_engine::time::Timestamp;

    use super::*;

    fn entry(id: &str, kind: InboxKind, at: i64) -> InboxEntry {
        InboxEntry {
            instance: InstanceId::parse("vendas").unwrap(),
            contact: Contact::parse("5511900000001").unwrap(),
            message_id: id.to_owned(),
            reply_to: "5511900000001".to_owned(),
            kind,
            sent_at: Some(Timestamp::from_millis(at)),
            received_at: Timestamp::from_millis(at),
        }
    }

    fn text(id: &str, body: &str, at: i64) -> InboxEntry {
        entry(id, InboxKind::Customer(Content::Text(body.to_owned())), at)
    }

    #[tokio::test]
    async fn a_burst_stops_before_the_first_non_text_and_merges_into_one_entry() {
        let store = SqliteStore::open("sqlite::memory:").await.unwrap();
        store.accept(&text("A", "oi", 1_000)).await.unwrap();
        store.accept(&text("C", "quero meu boleto", 3_000)).await.unwrap();
        store.accept(&text("B", "tudo bem?", 2_000)).await.unwrap();
        store.accept(&entry("D", InboxKind::Customer(Content::Unsupported("audio".to_owned())), 4_000)).await.unwrap();
        store.accept(&text("E", "depois do áudio", 5_000)).await.unwrap();
        let (instance, contact) = (InstanceId::parse("vendas").unwrap(), Contact::parse("5511900000001").unwrap());

        let burst = store.pending_burst(&instance, &contact).await.unwrap();
        let ids: Vec<&str> = burst.iter().map(|pending| pending.entry.message_id.as_str()).collect();
        assert_eq!(ids, ["A", "B", "C"], "in the customer's order, up to the audio");
        let seqs: Vec<i64> = burst.iter().map(|pending| pending.seq).collect();
        store.merge_burst(&seqs, "oi\ntudo bem?\nquero meu boleto").await.unwrap();

        let next = store.next_pending(&instance, &contact).await.unwrap().unwrap();
        assert_eq!(next.entry.message_id, "A");
        assert_eq!(next.entry.kind, InboxKind::Customer(Content::Text("oi\ntudo bem?\nquero meu boleto".to_owned())));
        let pending: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM inbox WHERE processed_at IS NULL").fetch_one(store.pool()).await.unwrap();
        assert_eq!(pending, 3, "A (merged), the audio and E wait; B and C are folded into A");
        // A second merge of the same burst changes nothing.
        assert!(matches!(store.merge_burst(&seqs, "x").await, Err(StoreError::Conflict(_))));
        let body: String = sqlx::query_scalar("SELECT body FROM inbox WHERE message_id = 'A'").fetch_one(store.pool()).await.unwrap();
        assert_eq!(body, "oi\ntudo bem?\nquero meu boleto");
    }
}
