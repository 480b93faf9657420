//! Databases migrated before the outbox table moved into `helpdesk-events` keep opening, with
//! their unpublished events, on SQLite and on PostgreSQL.

#![allow(clippy::unwrap_used)]

use helpdesk_runtime::{
    config::DatabaseConfig,
    db::{Backend, Database, create_scratch_database, drop_scratch_database},
};

/// Migrates, then turns the database back into one from before the move: version 1 with the
/// checksum it had when it held the outbox, version 0 never applied, an event still waiting.
async fn an_old_database_opens_with_its_outbox(db: &Database) {
    let migrations = &helpdesk_routing::MIGRATIONS;
    db.migrate(migrations).await.unwrap();
    let old = match db.backend() {
        Backend::Sqlite => &migrations.rebaselined[0],
        Backend::Postgres => &migrations.rebaselined[1],
    };
    let writer = db.writer();
    sqlx::query("UPDATE _sqlx_migrations SET checksum = $1 WHERE version = 1")
        .bind(hex::decode(old.checksum).unwrap())
        .execute(writer)
        .await
        .unwrap();
    sqlx::query("DELETE FROM _sqlx_migrations WHERE version = 0").execute(writer).await.unwrap();
    sqlx::query(
        "INSERT INTO outbox (tenant_id, event_id, aggregate_type, aggregate_id, sequence, payload) \
         VALUES ('demo', 'e1', 'ticket', 't1', 1, $1)",
    )
    .bind(vec![1u8, 2, 3])
    .execute(writer)
    .await
    .unwrap();

    db.migrate(migrations).await.unwrap();

    let versions: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations ORDER BY version").fetch_all(writer).await.unwrap();
    assert_eq!(versions, vec![0, 1]);
    let waiting: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM outbox").fetch_one(writer).await.unwrap();
    assert_eq!(waiting, 1);
    // A third start finds everything current.
    db.migrate(migrations).await.unwrap();
}

#[tokio::test]
async fn an_sqlite_database_from_before_the_outbox_moved_opens() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::connect(&DatabaseConfig::new(None, 2), dir.path(), "routing").await.unwrap();
    an_old_database_opens_with_its_outbox(&db).await;
}

#[tokio::test]
async fn a_postgres_database_from_before_the_outbox_moved_opens() {
    let Some(base) = std::env::var("HELPDESK_TEST_POSTGRES_URL").ok().filter(|url| !url.is_empty()) else {
        eprintln!("HELPDESK_TEST_POSTGRES_URL is not set: PostgreSQL run not possible here");
        return;
    };
    let url = create_scratch_database(&base, "helpdesk_migrations").await.unwrap();
    let db = Database::connect(&DatabaseConfig::new(Some(url.clone()), 2), std::path::Path::new("."), "routing")
        .await
        .unwrap();
    an_old_database_opens_with_its_outbox(&db).await;
    drop_scratch_database(&base, &url).await.unwrap();
}
