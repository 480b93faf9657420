//! Publishes committed outbox events to the bus in order. One relay runs per service database:
//! on PostgreSQL an advisory lock elects it among replicas, on SQLite there is only one process.

use std::{sync::Arc, time::Duration};

use helpdesk_runtime::{
    db::{Backend, Database},
    shutdown::Shutdown,
};
use tokio::sync::Notify;

use crate::{EventBus, outbox};

const BATCH: i64 = 256;
const IDLE_POLL: Duration = Duration::from_millis(500);
const COALESCE: Duration = Duration::from_millis(20);
const RETRY_DELAY: Duration = Duration::from_secs(1);

pub struct Relay {
    db: Database,
    bus: Arc<dyn EventBus>,
    wake: Arc<Notify>,
    lock_key: i64,
}

impl Relay {
    /// `wake` is notified by writers after a commit so events leave at once instead of at the
    /// next poll; `lock_key` names this service's relay lock on PostgreSQL.
    pub fn new(db: Database, bus: Arc<dyn EventBus>, wake: Arc<Notify>, lock_key: i64) -> Self {
        Self { db, bus, wake, lock_key }
    }

    pub async fn run(self, shutdown: Shutdown) {
        let leading = std::sync::atomic::AtomicBool::new(false);
        tokio::select! {
            () = self.run_forever(&leading) => {}
            () = shutdown.wait() => {}
        }
        // One last pass, by the leader only, so events committed just before the signal are not
        // left for the next start.
        if leading.load(std::sync::atomic::Ordering::Relaxed)
            && let Err(error) = self.drain_once().await
        {
            tracing::warn!(%error, "final outbox drain failed; events stay queued for the next start");
        }
    }

    async fn run_forever(&self, leading: &std::sync::atomic::AtomicBool) {
        let _leader = loop {
            match self.acquire_leadership().await {
                Ok(Some(lease)) => break lease,
                Ok(None) => tokio::time::sleep(RETRY_DELAY * 5).await,
                Err(error) => {
                    tracing::warn!(%error, "relay cannot reach the database");
                    tokio::time::sleep(RETRY_DELAY).await;
                }
            }
        };
        leading.store(true, std::sync::atomic::Ordering::Relaxed);
        loop {
            match self.drain_once().await {
                Ok(0) => {
                    if tokio::time::timeout(IDLE_POLL, self.wake.notified()).await.is_ok() {
                        // Let a burst of commits accumulate: fewer, larger relay passes keep the
                        // service's writer free (SQLite has one).
                        tokio::time::sleep(COALESCE).await;
                    }
                }
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(%error, "publishing events failed; retrying");
                    tokio::time::sleep(RETRY_DELAY).await;
                }
            }
        }
    }

    /// Publishes one batch; returns how many events left the outbox.
    async fn drain_once(&self) -> Result<usize, Box<dyn std::error::Error + Send + Sync>> {
        // Reading on the reader pool keeps the (SQLite) writer free for the service's own writes.
        let (batch, undecodable) = outbox::oldest(self.db.reader(), BATCH).await?;
        if batch.is_empty() && undecodable.is_empty() {
            return Ok(0);
        }
        let events: Vec<_> = batch.iter().map(|stored| stored.event.clone()).collect();
        self.bus.publish(&events).await?;
        let positions: Vec<i64> = batch.iter().map(|stored| stored.position).chain(undecodable).collect();
        outbox::remove(self.db.writer(), &positions).await?;
        Ok(positions.len())
    }

    /// On PostgreSQL, holds a session advisory lock on a dedicated connection for as long as the
    /// returned lease lives; `None` while another replica holds it.
    async fn acquire_leadership(&self) -> Result<Option<Option<sqlx::pool::PoolConnection<sqlx::Any>>>, sqlx::Error> {
        if self.db.backend() == Backend::Sqlite {
            return Ok(Some(None));
        }
        let mut conn = self.db.writer().acquire().await?;
        let locked: bool =
            sqlx::query_scalar("SELECT pg_try_advisory_lock($1)").bind(self.lock_key).fetch_one(&mut *conn).await?;
        Ok(locked.then_some(Some(conn)))
    }
}
