//! A contact's other WhatsApp id: the phone number and the `@lid` alias
//! that Evolution named together in one message. Conversations are keyed on
//! the phone number when it is known, else on the LID, so rows written
//! while only the LID was known stay under it; a contact's history and its
//! erasure follow these links to reach them.

use switchyard_engine::ids::{Contact, InstanceId};
use switchyard_engine::store::StoreError;
use switchyard_engine::time::Timestamp;

use crate::backend::{both, Backend};
use crate::codec::corrupt;

/// A `WITH` clause naming `ids`: `$1` and every id linked to it through any
/// chain of links (a number that got a new LID keeps both), the same text on
/// both backends.
macro_rules! linked_ids {
    () => {
        "WITH RECURSIVE ids(id) AS (SELECT CAST($1 AS TEXT) UNION \
         SELECT CASE WHEN a.phone = ids.id THEN a.lid ELSE a.phone END \
         FROM contact_aliases a JOIN ids ON a.phone = ids.id OR a.lid = ids.id) "
    };
}
pub(crate) use linked_ids;

pub(crate) const LINKED: &str = concat!(linked_ids!(), "SELECT id FROM ids ORDER BY id");
const KNOWN: &str = "SELECT COUNT(*) FROM contact_aliases WHERE phone = $1 AND lid = $2";
/// A redelivered message (already in the inbox) links nothing: after an
/// erasure, Evolution's retry of an old message must not bring the number back.
const LINK: &str = "INSERT INTO contact_aliases (phone, lid, seen_at) SELECT $1, $2, $3 \
                    WHERE NOT EXISTS (SELECT 1 FROM inbox WHERE instance = $4 AND message_id = $5) ON CONFLICT (phone, lid) DO NOTHING";

pub(crate) fn contacts(ids: Vec<String>) -> Result<Vec<Contact>, StoreError> {
    ids.iter().map(|id| Contact::parse(id).map_err(|err| corrupt("contact_aliases", err))).collect()
}

both! {
    /// Records that `phone` and `lid` are the same contact, as the message
    /// `message_id` on `instance` says, unless that message was stored
    /// before. Most messages repeat a known link, so it is looked up on the
    /// read pool first and only a new one takes the writer.
    pub async fn link_alias(&self, phone: &Contact, lid: &Contact, instance: &InstanceId, message_id: &str, at: Timestamp) -> Result<(), StoreError> {
        let known: i64 = sqlx::query_scalar(KNOWN).bind(phone.as_str()).bind(lid.as_str()).fetch_one(self.reads()).await.map_err(Self::map_err)?;
        if known == 0 {
            sqlx::query(LINK)
                .bind(phone.as_str())
                .bind(lid.as_str())
                .bind(at.as_millis())
                .bind(instance.as_str())
                .bind(message_id)
                .execute(self.writes())
                .await
                .map_err(Self::map_err)?;
        }
        Ok(())
    }

    /// `contact` and every id linked to it.
    pub async fn aliases_of(&self, contact: &Contact) -> Result<Vec<Contact>, StoreError> {
        contacts(sqlx::query_scalar(LINKED).bind(contact.as_str()).fetch_all(self.reads()).await.map_err(Self::map_err)?)
    }
}

#[cfg(test)]
mod tests {
    use switchyard_engine::queue::{InboxEntry, InboxKind, Queue};

    use super::*;

    #[tokio::test]
    async fn links_chain_both_ways_and_repeat_harmlessly() {
        for db in crate::testing::every_backend("aliases").await {
            let [phone, lid, new_lid, other] = ["5511933332222", "204837561234567", "304837561234567", "5511900000001"].map(|id| Contact::parse(id).unwrap());
            let vendas = InstanceId::parse("vendas").unwrap();
            db.link_alias(&phone, &lid, &vendas, "M1", Timestamp::from_millis(1)).await.unwrap();
            db.link_alias(&phone, &lid, &vendas, "M2", Timestamp::from_millis(2)).await.unwrap();
            db.link_alias(&phone, &new_lid, &vendas, "M3", Timestamp::from_millis(3)).await.unwrap();
            let all = vec![lid.clone(), new_lid.clone(), phone.clone()];
            for start in [&phone, &lid, &new_lid] {
                assert_eq!(db.aliases_of(start).await.unwrap(), all, "{} on {}", start.masked(), db.backend());
            }
            assert_eq!(db.aliases_of(&other).await.unwrap(), vec![other.clone()], "an unlinked contact is only itself");
            // A message already in the inbox (a redelivery) links nothing.
            let entry = InboxEntry {
                instance: vendas.clone(),
                contact: other.clone(),
                message_id: "M4".to_owned(),
                reply_to: other.as_str().to_owned(),
                kind: InboxKind::Operator,
                sent_at: None,
                received_at: Timestamp::from_millis(4),
            };
            db.accept(&entry).await.unwrap();
            db.link_alias(&other, &lid, &vendas, "M4", Timestamp::from_millis(5)).await.unwrap();
            assert_eq!(db.aliases_of(&other).await.unwrap(), vec![other.clone()], "on {}", db.backend());
        }
    }
}
