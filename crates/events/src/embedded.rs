//! The embedded bus, for the platform in one process: every published event is stored in the
//! `events` database (a SQLite file beside the services' own, or a PostgreSQL schema) and kept
//! until every durable consumer has processed it. A consumer's position — every event at or
//! below it is processed — is kept in the same database, so a killed or stopped process resumes
//! each consumer where it was, and the outbox relay may forget an event as soon as it is stored
//! here. Acknowledgements are made durable every [`FLUSH_INTERVAL`]: after a crash a consumer sees
//! again what it had not acknowledged, and at most that much of what it had, which its idempotent
//! handlers absorb.

use std::{
    collections::{BTreeSet, VecDeque},
    path::Path,
    sync::{Arc, Mutex, Weak},
    time::Duration,
};

use futures::StreamExt;
use helpdesk_proto::events::v1::Event;
use helpdesk_runtime::{
    auth::BoxFuture,
    config::DatabaseConfig,
    db::{Database, Migrations, positional, serialize_on},
    time::now_micros,
};
use prost::Message;
use tokio::sync::{broadcast, watch};

use crate::{BusError, DeadLetter, Delivery, EventBus, EventStream, bus::Settle, bus::subject_matches};

static SQLITE: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");
static MIGRATIONS: Migrations =
    Migrations { portable: &Migrations::NONE, sqlite: &SQLITE, postgres: &POSTGRES, shared: &[], rebaselined: &[] };

/// The embedded bus's database (SQLite file or PostgreSQL schema).
const DATABASE: &str = "events";

/// How often acknowledged positions are written down.
const FLUSH_INTERVAL: Duration = Duration::from_millis(100);
/// How often events every consumer has processed are deleted.
const PRUNE_EVERY: u32 = 50;
/// How long an idle consumer waits before looking again (another process may have replayed a
/// dead letter).
const IDLE_POLL: Duration = Duration::from_millis(500);
const READ_BATCH: i64 = 256;

pub struct EmbeddedBus {
    inner: Arc<Inner>,
}

struct Inner {
    db: Database,
    prefix: String,
    /// Taken while storing, so that events join `recent` in the order their positions commit.
    storing: tokio::sync::Mutex<()>,
    /// The events this process stored lately, by position: consumers that keep up read them from
    /// here instead of the database.
    recent: Mutex<Recent>,
    /// Bumped after every commit, to wake idle consumers.
    published: watch::Sender<u64>,
    /// [`EventBus::tail`]s: full subject filters and where their events go.
    tails: Mutex<Vec<(String, broadcast::Sender<Event>)>>,
    consumers: Mutex<Vec<Arc<Progress>>>,
}

/// The newest events by position. Every position after `complete_after` that this process stored
/// is here; positions another process stored (a replay from the command line) are not, which a
/// reader notices as a gap and reads from the database instead.
struct Recent {
    complete_after: i64,
    events: VecDeque<BusRow>,
}

/// An event as the bus keeps it.
#[derive(Clone)]
struct BusRow {
    position: i64,
    subject: String,
    only_for: Option<String>,
    event: Event,
}

/// The most events kept in memory for consumers that lag; beyond it they read the database.
const RECENT: usize = 65_536;

impl Recent {
    /// The rows after `cursor` (at most `limit`), or `None` when memory cannot tell: a slow
    /// reader behind the window, or a gap in the positions.
    fn after(&self, cursor: i64, limit: usize) -> Option<Vec<BusRow>> {
        if cursor < self.complete_after {
            return None;
        }
        let start = self.events.partition_point(|row| row.position <= cursor);
        let rows: Vec<BusRow> = self.events.iter().skip(start).take(limit).cloned().collect();
        let contiguous = rows.iter().enumerate().all(|(i, row)| row.position == cursor + 1 + i as i64);
        contiguous.then_some(rows)
    }

    /// Adds `rows`, and forgets what every consumer has read (everything up to `read_by_all`) or
    /// what is beyond the window.
    fn push(&mut self, rows: Vec<BusRow>, read_by_all: i64) {
        self.events.extend(rows);
        while let Some(oldest) = self.events.front()
            && (oldest.position <= read_by_all || self.events.len() > RECENT)
        {
            self.complete_after = oldest.position;
            self.events.pop_front();
        }
    }
}

/// What one durable consumer has read and processed in this process.
struct Progress {
    name: String,
    state: Mutex<ProgressState>,
}

struct ProgressState {
    /// Positions handed out and not yet acknowledged.
    unacked: BTreeSet<i64>,
    /// Every position up to here has been read (and skipped or handed out).
    read_up_to: i64,
    /// The position last written down.
    flushed: i64,
}

impl ProgressState {
    fn processed(&self) -> i64 {
        self.unacked.first().map_or(self.read_up_to, |first| first - 1)
    }
}

impl EmbeddedBus {
    /// Opens (and migrates) the bus's database, and starts writing down consumers' positions.
    pub async fn open(database: &DatabaseConfig, data_dir: &Path, subject_prefix: &str) -> Result<Self, BusError> {
        let db = Database::connect(database, data_dir, DATABASE).await?;
        db.migrate(&MIGRATIONS).await.map_err(|error| BusError::Unavailable(error.to_string()))?;
        let newest: i64 =
            sqlx::query_scalar("SELECT COALESCE(MAX(position), 0) FROM bus_events").fetch_one(db.reader()).await?;
        let inner = Arc::new(Inner {
            db,
            prefix: subject_prefix.to_owned(),
            storing: tokio::sync::Mutex::new(()),
            recent: Mutex::new(Recent { complete_after: newest, events: VecDeque::new() }),
            published: watch::channel(0).0,
            tails: Mutex::new(Vec::new()),
            consumers: Mutex::new(Vec::new()),
        });
        tokio::spawn(keep_positions(Arc::downgrade(&inner)));
        Ok(Self { inner })
    }
}

/// Writes down acknowledged positions and deletes what every consumer has processed, until the
/// bus is dropped.
async fn keep_positions(inner: Weak<Inner>) {
    let mut ticks = 0u32;
    loop {
        tokio::time::sleep(FLUSH_INTERVAL).await;
        let Some(inner) = inner.upgrade() else { return };
        if let Err(error) = inner.flush().await {
            tracing::warn!(%error, "event bus positions not written; retrying");
        }
        ticks += 1;
        if ticks.is_multiple_of(PRUNE_EVERY)
            && let Err(error) = inner.prune().await
        {
            tracing::warn!(%error, "processed events not deleted; retrying");
        }
    }
}

impl Inner {
    async fn flush(&self) -> Result<(), sqlx::Error> {
        let consumers: Vec<Arc<Progress>> =
            self.consumers.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone();
        let changed: Vec<(Arc<Progress>, i64)> = consumers
            .into_iter()
            .filter_map(|progress| {
                let state = progress.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                let processed = state.processed();
                drop(state);
                (processed > progress.flushed()).then_some((progress, processed))
            })
            .collect();
        if changed.is_empty() {
            return Ok(());
        }
        let mut tx = self.db.writer().begin().await?;
        for (progress, processed) in &changed {
            sqlx::query("UPDATE bus_consumers SET position = $1, updated_at = $2 WHERE name = $3 AND position < $1")
                .bind(processed)
                .bind(now_micros())
                .bind(&progress.name)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        for (progress, processed) in changed {
            progress.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).flushed = processed;
        }
        Ok(())
    }

    async fn prune(&self) -> Result<(), sqlx::Error> {
        sqlx::query("DELETE FROM bus_events WHERE position <= (SELECT MIN(position) FROM bus_consumers)")
            .execute(self.db.writer())
            .await?;
        Ok(())
    }

    /// Stores `events` (each with the one consumer it is for, if any) and, in the same transaction,
    /// deletes `replayed`'s dead letters of that consumer; then keeps them in `recent` and wakes
    /// the readers. The message id is the event id, or `<event id>:replay:<n>` for a replay.
    async fn store(
        &self,
        events: &[(String, &Event, Option<&str>)],
        replayed: Option<(&str, &[String])>,
    ) -> Result<(), sqlx::Error> {
        let _order = self.storing.lock().await;
        let mut tx = self.db.writer().begin().await?;
        // Positions must commit in order, or a consumer reading past a gap would skip it.
        serialize_on(&mut tx, "helpdesk-embedded-bus").await?;
        let mut stored = Vec::with_capacity(events.len());
        for chunk in events.chunks(500) {
            let values: Vec<String> = (0..chunk.len())
                .map(|row| {
                    let placeholders: Vec<String> = (row * 4 + 1..=row * 4 + 4).map(|n| positional(&tx, n)).collect();
                    format!("({})", placeholders.join(", "))
                })
                .collect();
            let sql = format!(
                "INSERT INTO bus_events (message_id, subject, only_for, payload) VALUES {} RETURNING position",
                values.join(", ")
            );
            let subjects: Vec<String> = chunk.iter().map(|(_, event, _)| crate::subject(&self.prefix, event)).collect();
            let mut query = sqlx::query_scalar(&sql);
            for ((message_id, event, only_for), subject) in chunk.iter().zip(&subjects) {
                query = query.bind(message_id).bind(subject).bind(*only_for).bind(event.encode_to_vec());
            }
            // Rows get positions in the order of the values, which RETURNING need not keep.
            let mut positions: Vec<i64> = query.fetch_all(&mut *tx).await?;
            positions.sort_unstable();
            for ((position, (_, event, only_for)), subject) in positions.into_iter().zip(chunk).zip(subjects) {
                let only_for = only_for.map(str::to_owned);
                stored.push(BusRow { position, subject, only_for, event: (*event).clone() });
            }
        }
        if let Some((consumer, event_ids)) = replayed {
            for event_id in event_ids {
                sqlx::query("DELETE FROM bus_dead_letters WHERE consumer = $1 AND event_id = $2")
                    .bind(consumer)
                    .bind(event_id)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        tx.commit().await?;
        let read_by_all = self
            .consumers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .iter()
            .map(|progress| progress.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).read_up_to)
            .min()
            .unwrap_or(i64::MAX);
        self.recent.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).push(stored, read_by_all);
        self.published.send_modify(|count| *count += 1);
        Ok(())
    }
}

impl Inner {
    /// Hands `events` to the tails whose filters they match; a tail gone away is forgotten.
    fn tell_tails(&self, events: &[Event]) {
        let mut tails = self.tails.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        tails.retain(|(_, sender)| sender.receiver_count() > 0);
        for event in events {
            let subject = crate::subject(&self.prefix, event);
            for (filter, sender) in tails.iter() {
                if subject_matches(filter, &subject) {
                    let _ = sender.send(event.clone());
                }
            }
        }
    }
}

impl Progress {
    fn flushed(&self) -> i64 {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).flushed
    }
}

/// A durable subscription's reader: the next events after `cursor` that match.
struct Reader {
    inner: Arc<Inner>,
    progress: Arc<Progress>,
    filter: Option<String>,
    cursor: i64,
    buffer: VecDeque<Delivery>,
    published: watch::Receiver<u64>,
}

impl Reader {
    async fn next(&mut self) -> Result<Delivery, BusError> {
        loop {
            if let Some(delivery) = self.buffer.pop_front() {
                return Ok(delivery);
            }
            self.published.borrow_and_update();
            if self.read_batch(false).await? {
                continue;
            }
            // Idle: what another process stored (a replay) is in the database only.
            if tokio::time::timeout(IDLE_POLL, self.published.changed()).await.is_err() {
                self.read_batch(true).await?;
            }
        }
    }

    /// Reads the next events, from memory when it holds them all, else (or when
    /// `from_database`) from the database; whether there were any.
    async fn read_batch(&mut self, from_database: bool) -> Result<bool, BusError> {
        let remembered = if from_database {
            None
        } else {
            let recent = self.inner.recent.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            recent.after(self.cursor, READ_BATCH as usize)
        };
        let rows = match remembered {
            Some(rows) => rows,
            None => self.read_database().await?,
        };
        let Some(last) = rows.last().map(|row| row.position) else { return Ok(false) };
        let mut state = self.progress.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        for row in rows {
            let wanted = row.only_for.as_ref().is_none_or(|consumer| *consumer == self.progress.name)
                && self.filter.as_deref().is_none_or(|filter| subject_matches(filter, &row.subject));
            if wanted {
                state.unacked.insert(row.position);
                let position = row.position;
                let settle = EmbeddedSettle { inner: self.inner.clone(), progress: self.progress.clone(), position };
                self.buffer.push_back(Delivery::new(row.event, Some(Box::new(settle))));
            }
        }
        state.read_up_to = last;
        self.cursor = last;
        Ok(true)
    }

    async fn read_database(&self) -> Result<Vec<BusRow>, BusError> {
        let rows: Vec<(i64, String, Option<String>, Vec<u8>)> = sqlx::query_as(
            "SELECT position, subject, only_for, payload FROM bus_events WHERE position > $1 ORDER BY position LIMIT $2",
        )
        .bind(self.cursor)
        .bind(READ_BATCH)
        .fetch_all(self.inner.db.reader())
        .await?;
        let mut events = Vec::with_capacity(rows.len());
        for (position, subject, only_for, payload) in rows {
            match Event::decode(payload.as_slice()) {
                Ok(event) => events.push(BusRow { position, subject, only_for, event }),
                // Only the relay writes here, so this is a defect: skip the row rather than stall.
                Err(error) => tracing::error!(position, %error, "undecodable event on the embedded bus skipped"),
            }
        }
        Ok(events)
    }
}

struct EmbeddedSettle {
    inner: Arc<Inner>,
    progress: Arc<Progress>,
    position: i64,
}

impl Settle for EmbeddedSettle {
    fn ack(&self) -> BoxFuture<'_, Result<(), BusError>> {
        self.progress.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).unacked.remove(&self.position);
        Box::pin(async { Ok(()) })
    }

    fn dead_letter<'a>(&'a self, event: &'a Event, error: &'a str) -> BoxFuture<'a, Result<(), BusError>> {
        Box::pin(async move {
            sqlx::query(
                "INSERT INTO bus_dead_letters (consumer, event_id, subject, payload, error, failed_at) \
                 VALUES ($1, $2, $3, $4, $5, $6) \
                 ON CONFLICT (consumer, event_id) DO UPDATE SET error = excluded.error, failed_at = excluded.failed_at",
            )
            .bind(&self.progress.name)
            .bind(&event.id)
            .bind(crate::subject(&self.inner.prefix, event))
            .bind(event.encode_to_vec())
            .bind(error)
            .bind(now_micros())
            .execute(self.inner.db.writer())
            .await?;
            self.ack().await
        })
    }
}

impl EventBus for EmbeddedBus {
    fn publish<'a>(&'a self, events: &'a [Event]) -> BoxFuture<'a, Result<(), BusError>> {
        Box::pin(async move {
            let rows: Vec<_> = events.iter().map(|event| (event.id.clone(), event, None)).collect();
            self.inner.store(&rows, None).await?;
            self.inner.tell_tails(events);
            Ok(())
        })
    }

    fn subscribe<'a>(&'a self, name: &'a str, filter: Option<&'a str>) -> BoxFuture<'a, Result<EventStream, BusError>> {
        Box::pin(async move {
            let writer = self.inner.db.writer();
            sqlx::query(
                "INSERT INTO bus_consumers (name, position, updated_at) VALUES ($1, 0, $2) ON CONFLICT (name) DO NOTHING",
            )
            .bind(name)
            .bind(now_micros())
            .execute(writer)
            .await?;
            let position: i64 = sqlx::query_scalar("SELECT position FROM bus_consumers WHERE name = $1")
                .bind(name)
                .fetch_one(writer)
                .await?;
            let progress = Arc::new(Progress {
                name: name.to_owned(),
                state: Mutex::new(ProgressState { unacked: BTreeSet::new(), read_up_to: position, flushed: position }),
            });
            {
                let mut consumers = self.inner.consumers.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                // Two readers of one position would each advance it past the other's work.
                consumers.retain(|other| Arc::strong_count(other) > 1);
                if consumers.iter().any(|other| other.name == name) {
                    return Err(BusError::Unavailable(format!("consumer {name} is subscribed already")));
                }
                consumers.push(progress.clone());
            }
            let reader = Reader {
                inner: self.inner.clone(),
                progress,
                filter: filter.map(|filter| format!("{}.{filter}", self.inner.prefix)),
                cursor: position,
                buffer: VecDeque::new(),
                published: self.inner.published.subscribe(),
            };
            let stream = futures::stream::unfold(reader, |mut reader| async move {
                let next = reader.next().await;
                if next.is_err() {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                Some((next, reader))
            });
            Ok(stream.boxed())
        })
    }

    fn tail<'a>(&'a self, filter: &'a str) -> BoxFuture<'a, Result<EventStream, BusError>> {
        Box::pin(async move {
            let (sender, receiver) = broadcast::channel(1024);
            let filter = format!("{}.{filter}", self.inner.prefix);
            self.inner.tails.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).push((filter, sender));
            let stream = tokio_stream::wrappers::BroadcastStream::new(receiver).map(|event| match event {
                Ok(event) => Ok(Delivery::new(event, None)),
                // The tail fell behind: its owner must assume it missed something.
                Err(lagged) => Err(BusError::Unavailable(lagged.to_string())),
            });
            Ok(stream.boxed())
        })
    }

    fn dead_letters<'a>(
        &'a self,
        consumer: Option<&'a str>,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<DeadLetter>, BusError>> {
        Box::pin(async move {
            let rows: Vec<(String, Vec<u8>, String, i64)> = sqlx::query_as(
                "SELECT consumer, payload, error, failed_at FROM bus_dead_letters \
                 WHERE $1 = '' OR consumer = $1 ORDER BY failed_at, consumer, event_id LIMIT $2",
            )
            .bind(consumer.unwrap_or_default())
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(self.inner.db.reader())
            .await?;
            rows.into_iter()
                .map(|(consumer, payload, error, failed_at)| {
                    Ok(DeadLetter { consumer, event: Event::decode(payload.as_slice())?, error, failed_at })
                })
                .collect()
        })
    }

    fn replay<'a>(&'a self, consumer: &'a str, event_ids: &'a [String]) -> BoxFuture<'a, Result<usize, BusError>> {
        Box::pin(async move {
            let letters = self.dead_letters(Some(consumer), usize::MAX).await?;
            let chosen: Vec<DeadLetter> = letters
                .into_iter()
                .filter(|letter| event_ids.is_empty() || event_ids.contains(&letter.event.id))
                .collect();
            if chosen.is_empty() {
                return Ok(0);
            }
            let attempt = now_micros();
            let rows: Vec<_> = chosen
                .iter()
                .map(|letter| (format!("{}:replay:{attempt}", letter.event.id), &letter.event, Some(consumer)))
                .collect();
            let ids: Vec<String> = chosen.iter().map(|letter| letter.event.id.clone()).collect();
            self.inner.store(&rows, Some((consumer, &ids))).await?;
            Ok(chosen.len())
        })
    }

    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            if let Err(error) = self.inner.flush().await {
                tracing::warn!(%error, "event bus positions not written at shutdown; consumers will see some events again");
            }
            if let Err(error) = self.inner.prune().await {
                tracing::warn!(%error, "processed events not deleted at shutdown");
            }
        })
    }
}
