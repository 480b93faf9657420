//! The learning loop: searches, suggestions and views are counted in memory and written in
//! batches (analytics may lose the last second on a crash; articles and votes never are), and
//! tickets no article answered are grouped into topics worth writing about. The content-gap
//! report ([`Knowledge::content_gaps`]) names the queries that found nothing or were seldom
//! opened, and those topics.

use std::sync::{Arc, Mutex};

use helpdesk_proto::knowledge::v1 as proto;
use helpdesk_runtime::{ServiceError, db::Database, shutdown::Shutdown, time::now_micros};
use tokio::sync::Notify;

use crate::{
    Map, analysis,
    model::{self, Audience},
    service::{Knowledge, limit},
    store,
    suggest::MIN_CONFIDENCE,
};

const FLUSH_EVERY: std::time::Duration = std::time::Duration::from_secs(1);
/// Logs kept while the database is slow; beyond this, new ones are dropped (and counted).
const MAX_PENDING: usize = 100_000;

#[derive(Default)]
struct Pending {
    searches: Vec<store::SearchLog>,
    views: Map<(String, String), i64>,
    dropped: u64,
}

/// Search logs and view counts waiting to be written. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Activity {
    pending: Arc<Mutex<Pending>>,
    db: Database,
    flushed: Arc<Notify>,
    /// Searches and clicks older than this are deleted.
    retention: std::time::Duration,
}

/// How often searches and clicks past their retention are deleted.
const PURGE_EVERY: std::time::Duration = std::time::Duration::from_secs(3600);

impl Activity {
    pub(crate) fn new(db: Database) -> Self {
        Self { pending: Arc::default(), db, flushed: Arc::new(Notify::new()), retention: std::time::Duration::MAX }
    }

    /// The same pending logs, kept `days` once written.
    pub(crate) fn with_retention(self, days: u32) -> Self {
        Self { retention: std::time::Duration::from_secs(u64::from(days) * 86_400), ..self }
    }

    /// Logs a search or suggestion; returns its id, for click tracking.
    pub(crate) fn log_search(
        &self,
        tenant: &str,
        kind: &'static str,
        query: &str,
        locale: &str,
        results: usize,
    ) -> String {
        let id = uuid::Uuid::now_v7().to_string();
        if let Ok(mut pending) = self.pending.lock() {
            if pending.searches.len() >= MAX_PENDING {
                pending.dropped += 1;
            } else {
                pending.searches.push(store::SearchLog {
                    tenant_id: tenant.to_owned(),
                    id: id.clone(),
                    kind,
                    query: normalize_query(query),
                    locale: locale.to_owned(),
                    results: results as i64,
                    at: now_micros(),
                });
            }
        }
        id
    }

    pub(crate) fn count_view(&self, tenant: &str, article: &str) {
        if let Ok(mut pending) = self.pending.lock() {
            *pending.views.entry((tenant.to_owned(), article.to_owned())).or_default() += 1;
        }
    }

    /// Writes what is pending now.
    pub(crate) async fn flush(&self) {
        let Pending { searches, views, dropped } = match self.pending.lock() {
            Ok(mut pending) => std::mem::take(&mut *pending),
            Err(_) => return,
        };
        if dropped > 0 {
            tracing::warn!(dropped, "search logs dropped while the database was behind");
        }
        if searches.is_empty() && views.is_empty() {
            return;
        }
        let result = async {
            let mut tx = self.db.writer().begin().await?;
            store::log_searches(&mut tx, &searches).await?;
            let views: Vec<_> = views.into_iter().collect();
            store::add_views(&mut tx, &views, now_micros()).await?;
            tx.commit().await?;
            Ok::<_, ServiceError>(())
        }
        .await;
        if let Err(error) = result {
            tracing::warn!(error = %error.message, "search logs not written");
        }
        self.flushed.notify_waiters();
    }

    /// Deletes searches and clicks older than the retention.
    pub(crate) async fn purge(&self) -> Result<u64, ServiceError> {
        let before = now_micros() - i64::try_from(self.retention.as_micros()).unwrap_or(i64::MAX);
        store::delete_activity_before(self.db.writer(), before).await
    }

    /// Flushes every second until shutdown, then once more; purges what is past retention every
    /// hour (not at start-up, where the writer is busiest).
    pub(crate) async fn run(self, shutdown: Shutdown) {
        let mut purge = tokio::time::interval_at(tokio::time::Instant::now() + PURGE_EVERY, PURGE_EVERY);
        loop {
            tokio::select! {
                _ = tokio::time::sleep(FLUSH_EVERY) => self.flush().await,
                _ = purge.tick() => match self.purge().await {
                    Ok(0) => {}
                    Ok(deleted) => tracing::info!(deleted, "searches and clicks past their retention deleted"),
                    Err(error) => tracing::warn!(error = %error.message, "old searches not deleted; retrying in an hour"),
                },
                _ = shutdown.clone().wait() => break,
            }
        }
        self.flush().await;
    }
}

/// Queries are grouped as typed, ignoring case and spacing.
fn normalize_query(query: &str) -> String {
    query.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase()
}

/// Besides function words, what says nothing about a ticket's topic: question words and, as
/// bigrams, Korean polite endings and greetings.
const TOPIC_NOISE: &[&str] = &[
    "can", "do", "get", "have", "how", "not", "what", "when", "whi", "니다", "습니", "세요", "해요", "나요", "어요",
    "하고", "있어", "해주", "주세", "안녕", "녕하", "하세", "합니", "는데", "있나", "요청",
];

/// The words of a ticket that can name its topic: its subject's and first lines' terms.
pub(crate) fn topic(subject: &str, body: &str) -> String {
    let text = format!("{subject}\n{}", body.lines().take(3).collect::<Vec<_>>().join("\n"));
    let mut terms: Vec<String> = analysis::terms(&text)
        .into_iter()
        .filter(|term| {
            term.chars().count() >= 2
                && !analysis::FUNCTION_WORDS.contains(&term.as_str())
                && !TOPIC_NOISE.contains(&term.as_str())
        })
        .collect();
    let mut seen = std::collections::HashSet::new();
    terms.retain(|term| seen.insert(term.clone()));
    terms.truncate(24);
    terms.join(" ")
}

/// Groups uncovered tickets by the term most of them share, paired with the term that most often
/// comes with it; each ticket counts once, under its most common term (its first, when none is
/// shared).
pub(crate) fn group_topics(tickets: &[store::Uncovered], limit: usize) -> Vec<proto::TopicStat> {
    let mut frequency: Map<(&str, &str), usize> = Map::default();
    for ticket in tickets {
        for term in ticket.topic.split(' ').filter(|term| !term.is_empty()) {
            *frequency.entry((ticket.locale.as_str(), term)).or_default() += 1;
        }
    }
    let mut groups: Map<(&str, &str), Vec<&store::Uncovered>> = Map::default();
    for ticket in tickets {
        let count = |term: &&str| frequency.get(&(ticket.locale.as_str(), *term)).copied().unwrap_or(0);
        // The most shared term, the same for every ticket that shares it; a ticket that shares
        // none is named by its first term (the subject leads).
        let best = ticket
            .topic
            .split(' ')
            .filter(|term| !term.is_empty())
            .enumerate()
            .max_by_key(|(at, term)| {
                let shared = count(term) > 1;
                (count(term), std::cmp::Reverse(if shared { 0 } else { *at }), std::cmp::Reverse(*term))
            })
            .map(|(_, term)| term);
        if let Some(term) = best {
            groups.entry((ticket.locale.as_str(), term)).or_default().push(ticket);
        }
    }
    let mut topics: Vec<_> = groups
        .into_iter()
        .map(|((locale, term), members)| {
            let mut companions: Map<&str, usize> = Map::default();
            for member in &members {
                for other in member.topic.split(' ').filter(|other| !other.is_empty() && *other != term) {
                    *companions.entry(other).or_default() += 1;
                }
            }
            let companion = companions
                .into_iter()
                .filter(|(_, count)| *count * 2 >= members.len() && members.len() > 1)
                .max_by_key(|(other, count)| (*count, std::cmp::Reverse(*other)))
                .map(|(other, _)| other);
            proto::TopicStat {
                topic: companion.map_or_else(|| term.to_owned(), |other| format!("{term} {other}")),
                locale: locale.to_owned(),
                tickets: members.len() as i64,
                example_ticket_ids: members.iter().take(5).map(|member| member.ticket_id.clone()).collect(),
            }
        })
        .collect();
    topics.sort_by(|a, b| b.tickets.cmp(&a.tickets).then_with(|| a.topic.cmp(&b.topic)));
    topics.truncate(limit);
    topics
}

impl Knowledge {
    /// Checks a new ticket against the articles and records it as uncovered when none answers
    /// it confidently.
    pub async fn note_ticket(&self, tenant: &str, ticket: &str, subject: &str, body: &str) -> Result<(), ServiceError> {
        let text = format!("{}\n{}", subject.trim(), body.trim());
        if text.trim().is_empty() {
            return Ok(());
        }
        let (locale, scored) = self.rank_suggestions(tenant, Audience::Staff, &text, "").await?;
        let confidence = scored.first().map_or(0.0, |best| best.confidence);
        if confidence < MIN_CONFIDENCE {
            self.record_uncovered(tenant, ticket, subject, body, &locale, confidence).await?;
        }
        Ok(())
    }

    pub(crate) async fn record_uncovered(
        &self,
        tenant: &str,
        ticket: &str,
        subject: &str,
        body: &str,
        locale: &str,
        confidence: f32,
    ) -> Result<(), ServiceError> {
        let topic = topic(subject, body);
        let mut conn = self.db.writer().acquire().await?;
        store::record_uncovered(&mut conn, tenant, ticket, locale, &topic, f64::from(confidence), now_micros()).await
    }

    pub async fn content_gaps(
        &self,
        tenant: &str,
        request: proto::ContentGapsRequest,
    ) -> Result<proto::ContentGapsResponse, ServiceError> {
        if !request.locale.is_empty() {
            model::check_locale("locale", &request.locale)?;
        }
        let until = request.until.as_ref().map_or_else(now_micros, helpdesk_runtime::time::timestamp_to_micros);
        let since =
            request.since.as_ref().map_or(until - 30 * 86_400_000_000, helpdesk_runtime::time::timestamp_to_micros);
        if since >= until {
            return Err(ServiceError::invalid_field("since", "must be before until"));
        }
        if until - since > 400 * 86_400_000_000 {
            return Err(ServiceError::invalid_field("since", "the period may span at most 400 days"));
        }
        let limit = limit(request.limit, 20, 200)? as i64;
        self.activity.flush().await;
        let mut conn = self.db.reader().acquire().await?;
        let period = (since, until);
        let zero_result_queries = store::query_stats(&mut conn, tenant, &request.locale, period, true, limit).await?;
        let mut low_click_queries =
            store::query_stats(&mut conn, tenant, &request.locale, period, false, limit).await?;
        // Low click-through: searched more than once, opened at most a quarter of the time.
        low_click_queries.retain(|stat| stat.searches >= 2 && stat.clicks * 4 <= stat.searches);
        let tickets = store::uncovered(&mut conn, tenant, &request.locale, period).await?;
        Ok(proto::ContentGapsResponse {
            zero_result_queries,
            low_click_queries,
            uncovered_topics: group_topics(&tickets, limit as usize),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tickets_about_the_same_thing_form_one_topic() {
        let tickets: Vec<store::Uncovered> = [
            ("t1", "Refund for a duplicate charge", "I was charged twice"),
            ("t2", "Duplicate charge on my card", ""),
            ("t3", "charged twice - duplicate charge", ""),
            ("t4", "How do I change my address?", ""),
        ]
        .iter()
        .map(|(id, subject, body)| store::Uncovered {
            ticket_id: id.to_string(),
            locale: "en".to_owned(),
            topic: topic(subject, body),
        })
        .collect();
        let topics = group_topics(&tickets, 10);
        assert_eq!(topics[0].tickets, 3, "{topics:?}");
        assert!(topics[0].topic.contains("charg") && topics[0].topic.contains("duplic"), "{topics:?}");
        assert_eq!(topics.iter().map(|t| t.tickets).sum::<i64>(), 4);
    }

    #[test]
    fn korean_topics_drop_polite_endings() {
        let topic = topic("환불 요청합니다", "카드 환불은 언제 되나요?");
        assert!(topic.contains("환불"));
        assert!(!topic.contains("니다"));
    }

    #[tokio::test]
    async fn searches_and_clicks_past_their_retention_are_deleted() {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = helpdesk_runtime::config::DatabaseConfig::new(None, 2);
        let db = Database::connect(&config, dir.path(), "knowledge").await.expect("database");
        db.migrate(&crate::MIGRATIONS).await.expect("migrations");
        let day = 86_400_000_000;
        let log = |id: &str, at: i64| store::SearchLog {
            tenant_id: "demo".into(),
            id: id.into(),
            kind: "search",
            query: "refund".into(),
            locale: "en".into(),
            results: 1,
            at,
        };
        let mut conn = db.writer().acquire().await.expect("connection");
        store::log_searches(&mut conn, &[log("old", now_micros() - 3 * day), log("new", now_micros())])
            .await
            .expect("logs");
        store::record_click(&mut conn, "demo", "old", "a-1", now_micros() - 3 * day).await.expect("click");
        drop(conn);

        let deleted = Activity::new(db.clone()).with_retention(2).purge().await.expect("purge");

        assert_eq!(deleted, 2, "the old search and its click");
        let kept: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM searches").fetch_one(db.reader()).await.expect("count");
        assert_eq!(kept, 1);
    }
}
