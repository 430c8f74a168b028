//! Flow versions published as documents: stored once, never edited. A
//! publish writes the row and its audit record (actor, reason, fingerprint)
//! in one transaction; the audit seq is the revision every `serve` polls,
//! so a new version reaches every process like a policy change.

use serde_json::json;
use switchyard_engine::ids::Version;
use switchyard_engine::store::StoreError;
use switchyard_engine::time::Timestamp;

use crate::backend::{both, Backend};
use crate::codec::Columns;
use crate::policy::AuditRecord;

/// One published version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredDocument {
    pub flow: String,
    pub version: Version,
    /// Hex SHA-256 of the canonical document.
    pub fingerprint: String,
    /// The document as published (TOML).
    pub source: String,
    pub published_at: Timestamp,
    pub actor: String,
    pub reason: String,
}

/// What a publish stores.
#[derive(Clone, Copy, Debug)]
pub struct Publish<'a> {
    pub flow: &'a str,
    pub version: Version,
    pub fingerprint: &'a str,
    pub source: &'a str,
    pub actor: &'a str,
    pub reason: &'a str,
    pub at: Timestamp,
}

impl Publish<'_> {
    fn audit_after(&self) -> String {
        json!({"version": self.version.to_string(), "fingerprint": self.fingerprint}).to_string()
    }
}

const SELECT: &str = "SELECT flow, version, fingerprint, source, published_at, actor, reason FROM flow_documents ORDER BY flow, version";
const EXISTS: &str = "SELECT COUNT(*) FROM flow_documents WHERE flow = $1 AND version = $2";
const INSERT: &str = "INSERT INTO flow_documents (flow, version, fingerprint, source, published_at, actor, reason) VALUES ($1, $2, $3, $4, $5, $6, $7)";

fn taken(publish: &Publish<'_>) -> StoreError {
    StoreError::Conflict(format!("{}@{} is already published (publish again for the next version)", publish.flow, publish.version))
}

fn document_from_row(row: &impl Columns) -> Result<StoredDocument, StoreError> {
    let read = || -> Result<StoredDocument, StoreError> {
        Ok(StoredDocument {
            flow: row.text("flow")?,
            version: row.version("version")?,
            fingerprint: row.text("fingerprint")?,
            source: row.text("source")?,
            published_at: Timestamp::from_millis(row.int("published_at")?),
            actor: row.text("actor")?,
            reason: row.text("reason")?,
        })
    };
    // The column's name, as `flow_documents.<column>: <problem>`.
    read().map_err(|err| match err {
        StoreError::Corrupt(problem) => StoreError::Corrupt(format!("flow_documents.{problem}")),
        other => other,
    })
}

both! {
    /// Stores a published version with its audit record, in one
    /// transaction. `Conflict` when that version exists already.
    pub async fn publish_document(&self, publish: &Publish<'_>) -> Result<AuditRecord, StoreError> {
        let mut tx = self.begin_audit().await?;
        let version = i64::from(publish.version.number());
        let exists: i64 = sqlx::query_scalar(EXISTS).bind(publish.flow).bind(version).fetch_one(&mut *tx).await.map_err(Self::map_err)?;
        if exists > 0 {
            return Err(taken(publish));
        }
        sqlx::query(INSERT)
            .bind(publish.flow)
            .bind(version)
            .bind(publish.fingerprint)
            .bind(publish.source)
            .bind(publish.at.as_millis())
            .bind(publish.actor)
            .bind(publish.reason)
            .execute(&mut *tx)
            .await
            .map_err(Self::map_err)?;
        let after = Some(publish.audit_after());
        let record = Self::insert_audit(&mut tx, publish.at, publish.actor, "publish", Some(publish.flow), publish.reason, None, after).await?;
        tx.commit().await.map_err(Self::map_err)?;
        Ok(record)
    }

    /// Every published version, by flow and version.
    pub async fn documents(&self) -> Result<Vec<StoredDocument>, StoreError> {
        let rows = sqlx::query(SELECT).fetch_all(self.reads()).await.map_err(Self::map_err)?;
        rows.iter().map(document_from_row).collect()
    }
}
