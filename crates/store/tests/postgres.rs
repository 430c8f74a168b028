//! What several processes on one PostgreSQL need beyond the common contract:
//! two store handles on one schema stand for two `serve` processes.

use switchyard_store::conformance;
use switchyard_store::postgres::{PgSettings, PgStore, CLAIM};
use switchyard_store::testing::{fresh_postgres_url, PgSchema};

async fn two_processes() -> Option<(PgStore, PgStore, PgSchema)> {
    let schema = fresh_postgres_url().await?;
    let a = PgStore::open(&schema, &PgSettings::default()).await.expect("open a");
    let b = PgStore::open(&schema, &PgSettings::default()).await.expect("open b");
    assert_ne!(a.node(), b.node());
    Some((a, b, schema))
}

/// One test per two-process check of `conformance`, each on a schema of its
/// own: `(a, b) check(args);` runs `conformance::check(args)` with the two
/// store handles named `a` and `b`.
macro_rules! two_process_tests {
    ($($(#[$meta:meta])* ($a:ident, $b:ident) $name:ident($($arg:expr),*);)*) => {$(
        $(#[$meta])*
        #[tokio::test]
        async fn $name() {
            if let Some(($a, $b, _schema)) = two_processes().await {
                let _ = &$b;
                conformance::$name($($arg),*).await;
            }
        }
    )*};
}

two_process_tests! {
    (a, b) one_process_works_a_contact_at_a_time(&a, &b);
    (a, b) two_processes_racing_commit_an_entry_once(&a, &b);
    (a, b) a_reply_is_claimed_by_one_process(&a, &b, CLAIM);
    /// A batch of send attempts marks only this process's claims: the other
    /// process's batch over the same replies marks none.
    (a, b) a_batch_of_attempts_marks_only_its_own_claims(&a, &b);
    /// A claim that marks attempts marks the fresh replies only, and
    /// answers each as it was before the claim.
    (a, b) a_claim_with_attempts_marks_only_fresh_replies(&a, &b);
    (a, b) a_turn_gives_the_lease_up_with_it_unless_more_waits(&a, &b);
    (a, b) held_contacts_read_together_get_each_their_own(&a);
    (a, b) claims_and_attempts_are_hot_updates(&a);
    (a, b) a_turn_within_its_expiry_bucket_is_a_hot_update(&a);
    (a, b) a_dead_process_leases_are_taken_at_once(a, &b);
    (a, b) a_dead_process_claims_are_taken_at_once(a, &b);
}

#[tokio::test]
async fn a_bad_url_is_refused_with_the_password_hidden() {
    let err = switchyard_store::open("postgres://app:s3cret@127.0.0.1:1/none", &PgSettings { acquire_timeout: std::time::Duration::from_secs(1), ..PgSettings::default() })
        .await
        .expect_err("nothing listens on port 1");
    let message = err.to_string();
    assert!(message.contains("postgres://app:***@127.0.0.1:1/none"), "{message}");
    assert!(!message.contains("s3cret"), "{message}");
    let err = switchyard_store::open("mysql://x", &PgSettings::default()).await.expect_err("unsupported");
    assert!(err.to_string().contains("'mysql'"), "{err}");
}
