//! Database access for both backends through one SQL dialect: `$N` placeholders, `RETURNING`,
//! integers for booleans and microsecond timestamps, text for ids and JSON. SQLite (embedded
//! default) gets one file per service and a single writer connection, so writers queue instead of
//! failing with `SQLITE_BUSY`; PostgreSQL gets one schema per service.

use std::{path::Path, time::Duration};

use sqlx::{
    AnyPool, Executor,
    any::{AnyPoolOptions, install_default_drivers},
    migrate::{MigrateError, Migrator},
};

use crate::{
    config::{DatabaseConfig, SqliteSynchronous},
    error::ServiceError,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A service's embedded schema, merged by version when it runs: the files whose SQL is the same on
/// both backends, the pairs whose types differ (`BLOB` / `BYTEA`), and the tables that a shared
/// crate owns and the service keeps beside its own (the outbox).
pub struct Migrations {
    pub portable: &'static Migrator,
    pub sqlite: &'static Migrator,
    pub postgres: &'static Migrator,
    pub shared: &'static [&'static Migrations],
    /// Released migrations whose SQL was since moved elsewhere without changing the schema.
    pub rebaselined: &'static [Rebaselined],
}

/// A checksum, in hex, that a database may hold for `version` from before the migration's SQL
/// moved (the outbox into `helpdesk-events`): accepted and rewritten to the current checksum, as
/// the tables it made are the same.
pub struct Rebaselined {
    pub version: i64,
    pub checksum: &'static str,
}

impl Rebaselined {
    /// The first migration of a service whose outbox tables were in it, as it was on SQLite and
    /// on PostgreSQL.
    pub const fn outbox_in_first(sqlite: &'static str, postgres: &'static str) -> [Self; 2] {
        [Self { version: 1, checksum: sqlite }, Self { version: 1, checksum: postgres }]
    }
}

impl Migrations {
    /// No migrations: for a service whose schema is all portable, as its missing backend sets.
    pub const NONE: Migrator = Migrator::DEFAULT;

    /// Every migration for `backend`, in version order; a version defined twice is an error.
    fn resolve(&self, backend: Backend) -> Result<Migrator, MigrateError> {
        let mut migrations = Vec::new();
        self.collect(backend, &mut migrations);
        migrations.sort_by_key(|migration| migration.version);
        if let Some(pair) = migrations.windows(2).find(|pair| pair[0].version == pair[1].version) {
            return Err(MigrateError::Source(format!("migration {} is defined twice", pair[0].version).into()));
        }
        Ok(Migrator { migrations: migrations.into(), ..Migrator::DEFAULT })
    }

    fn collect(&self, backend: Backend, into: &mut Vec<sqlx::migrate::Migration>) {
        for shared in self.shared {
            shared.collect(backend, into);
        }
        let own = match backend {
            Backend::Sqlite => self.sqlite,
            Backend::Postgres => self.postgres,
        };
        into.extend(self.portable.iter().chain(own.iter()).cloned());
    }

    /// Points the applied migrations that were rebaselined at their current checksum.
    async fn rebaseline(&self, db: &AnyPool, current: &Migrator) -> Result<(), MigrateError> {
        use sqlx::migrate::Migrate;
        let mut conn = db.acquire().await?;
        conn.ensure_migrations_table().await?;
        for old in self.rebaselined {
            let (Some(migration), Ok(checksum)) =
                (current.iter().find(|migration| migration.version == old.version), hex::decode(old.checksum))
            else {
                continue;
            };
            sqlx::query("UPDATE _sqlx_migrations SET checksum = $1 WHERE version = $2 AND checksum = $3")
                .bind(migration.checksum.to_vec())
                .bind(old.version)
                .bind(checksum)
                .execute(&mut *conn)
                .await?;
        }
        Ok(())
    }
}

#[derive(Clone, Debug)]
pub struct Database {
    writer: AnyPool,
    reader: AnyPool,
    backend: Backend,
}

impl Database {
    /// Connects the pools of `service`: the PostgreSQL schema of that name when a URL is
    /// configured, otherwise `<data_dir>/<service>.db`.
    pub async fn connect(config: &DatabaseConfig, data_dir: &Path, service: &'static str) -> Result<Self, sqlx::Error> {
        install_default_drivers();
        match &config.url {
            Some(url) => Self::connect_postgres(url, config.max_connections, service).await,
            None => {
                std::fs::create_dir_all(data_dir).map_err(sqlx::Error::Io)?;
                let path = data_dir.join(format!("{service}.db"));
                Self::connect_sqlite(&path, config.max_connections, config.sqlite_synchronous).await
            }
        }
    }

    async fn connect_postgres(url: &str, max: u32, schema: &'static str) -> Result<Self, sqlx::Error> {
        let bootstrap = AnyPoolOptions::new().max_connections(1).connect(url).await?;
        bootstrap.execute(format!("CREATE SCHEMA IF NOT EXISTS {schema}").as_str()).await?;
        bootstrap.close().await;
        let pool = AnyPoolOptions::new()
            .max_connections(max)
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    conn.execute(format!("SET search_path TO {schema}").as_str()).await?;
                    Ok(())
                })
            })
            .connect(url)
            .await?;
        Ok(Self { writer: pool.clone(), reader: pool, backend: Backend::Postgres })
    }

    async fn connect_sqlite(
        path: &Path,
        max_readers: u32,
        synchronous: SqliteSynchronous,
    ) -> Result<Self, sqlx::Error> {
        let url = format!("sqlite://{}?mode=rwc", path.display());
        // WAL: readers never block the writer. synchronous=NORMAL: a committed transaction
        // survives a killed process; FULL: a power loss too.
        let synchronous = match synchronous {
            SqliteSynchronous::Normal => "NORMAL",
            SqliteSynchronous::Full => "FULL",
        };
        let pragmas = format!(
            "PRAGMA busy_timeout = 10000; PRAGMA journal_mode = WAL; PRAGMA synchronous = {synchronous}; \
             PRAGMA foreign_keys = ON;"
        );
        let options = |max, pragmas: String| {
            AnyPoolOptions::new().max_connections(max).acquire_timeout(Duration::from_secs(30)).after_connect(
                move |conn, _| {
                    let pragmas = pragmas.clone();
                    Box::pin(async move {
                        conn.execute(pragmas.as_str()).await?;
                        Ok(())
                    })
                },
            )
        };
        // The writer never checkpoints itself: a checkpoint copies pages back and fsyncs, which
        // would stall every commit queued behind it. A background task checkpoints instead.
        let writer = options(1, format!("{pragmas} PRAGMA wal_autocheckpoint = 0;")).connect(&url).await?;
        let reader = options(max_readers, pragmas).connect(&url).await?;
        tokio::spawn(checkpoint_periodically(reader.clone()));
        Ok(Self { writer, reader, backend: Backend::Sqlite })
    }

    pub async fn migrate(&self, migrations: &Migrations) -> Result<(), MigrateError> {
        let migrator = migrations.resolve(self.backend)?;
        if !migrations.rebaselined.is_empty() {
            migrations.rebaseline(&self.writer, &migrator).await?;
        }
        migrator.run(&self.writer).await
    }

    /// The pool for transactions that write.
    pub fn writer(&self) -> &AnyPool {
        &self.writer
    }

    /// The pool for reads; on SQLite these run beside the single writer.
    pub fn reader(&self) -> &AnyPool {
        &self.reader
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Whether the database answers within two seconds.
    pub async fn ping(&self) -> bool {
        let query = sqlx::query("SELECT 1").execute(&self.reader);
        matches!(tokio::time::timeout(Duration::from_secs(2), query).await, Ok(Ok(_)))
    }
}

/// How often committed WAL pages are copied back into the database file. A checkpoint copies each
/// page once however often it changed, so a longer interval copies hot pages (index roots, the
/// newest leaves) fewer times; the WAL holds at most this long's writes.
const CHECKPOINT_INTERVAL: Duration = Duration::from_secs(5);

/// Checkpoints every [`CHECKPOINT_INTERVAL`] without blocking the writer (PASSIVE), and stops
/// when the pool closes.
async fn checkpoint_periodically(pool: AnyPool) {
    let mut interval = tokio::time::interval(CHECKPOINT_INTERVAL);
    loop {
        interval.tick().await;
        if pool.is_closed() {
            return;
        }
        if let Err(error) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)").execute(&pool).await {
            if pool.is_closed() {
                return;
            }
            tracing::warn!(%error, "sqlite checkpoint failed");
        }
    }
}

/// Creates an empty database named `<prefix>_<random>` on the PostgreSQL server of `base_url` and
/// returns its URL: for tests and benchmarks that must not share state.
pub async fn create_scratch_database(base_url: &str, prefix: &str) -> Result<String, sqlx::Error> {
    install_default_drivers();
    let name = format!("{prefix}_{}", uuid::Uuid::new_v4().simple());
    let pool = AnyPoolOptions::new().max_connections(1).connect(base_url).await?;
    pool.execute(format!("CREATE DATABASE {name}").as_str()).await?;
    pool.close().await;
    let without_query = base_url.split('?').next().unwrap_or(base_url);
    let server = without_query.rsplit_once('/').map_or(without_query, |(server, _)| server);
    Ok(format!("{server}/{name}"))
}

/// Drops a database made by [`create_scratch_database`], closing its connections.
pub async fn drop_scratch_database(base_url: &str, url: &str) -> Result<(), sqlx::Error> {
    install_default_drivers();
    let name = url.rsplit('/').next().unwrap_or_default();
    let pool = AnyPoolOptions::new().max_connections(1).connect(base_url).await?;
    pool.execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str()).await?;
    pool.close().await;
    Ok(())
}

/// The backend a connection talks to.
pub fn backend_of(conn: &sqlx::AnyConnection) -> Backend {
    if conn.backend_name() == "SQLite" { Backend::Sqlite } else { Backend::Postgres }
}

/// Holds the PostgreSQL advisory lock named `name` until the transaction on `conn` ends, so that
/// transactions taking the same name run one at a time, across replicas too. Nothing on SQLite,
/// whose one writer runs write transactions one at a time already.
pub async fn serialize_on(conn: &mut sqlx::AnyConnection, name: &str) -> Result<(), sqlx::Error> {
    if backend_of(conn) == Backend::Postgres {
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))").bind(name).execute(&mut *conn).await?;
    }
    Ok(())
}

/// ` FOR UPDATE` on PostgreSQL, so that a row read in a write transaction stays locked until
/// commit and a concurrent change waits for it; nothing on SQLite, whose one writer serializes
/// write transactions already.
pub fn row_lock(conn: &sqlx::AnyConnection) -> &'static str {
    match backend_of(conn) {
        Backend::Postgres => " FOR UPDATE",
        Backend::Sqlite => "",
    }
}

/// The placeholder for the `n`th (from 1) value of a statement that binds each value once, in
/// order: `$n` on PostgreSQL, an anonymous `?` on SQLite, where every numbered parameter costs a
/// linear name lookup when bound (quadratic for the thousands a multi-row insert has).
pub fn positional(conn: &sqlx::AnyConnection, n: usize) -> String {
    match backend_of(conn) {
        Backend::Sqlite => "?".to_owned(),
        Backend::Postgres => format!("${n}"),
    }
}

/// Maps database failures to domain errors in one place.
pub fn classify(error: sqlx::Error) -> ServiceError {
    use crate::error::ErrorKind;
    match &error {
        sqlx::Error::Database(db) => match db.kind() {
            sqlx::error::ErrorKind::UniqueViolation => ServiceError::new(ErrorKind::AlreadyExists, "already exists"),
            sqlx::error::ErrorKind::ForeignKeyViolation => {
                ServiceError::new(ErrorKind::FailedPrecondition, "refers to a record that does not exist")
            }
            _ if db.code().as_deref() == Some("40001") || db.code().as_deref() == Some("40P01") => {
                ServiceError::conflict("concurrent change, retry")
            }
            _ => ServiceError::internal(&error),
        },
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
            tracing::warn!(%error, "database unavailable");
            ServiceError::new(ErrorKind::Unavailable, "database unavailable")
        }
        _ => ServiceError::internal(&error),
    }
}
