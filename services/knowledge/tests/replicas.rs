//! Two replicas of the knowledge service on one database converge: what one publishes, edits
//! or archives, the other's search finds (or stops finding) within a poll or two.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use helpdesk_knowledge::{Audience, Knowledge, KnowledgeService};
use helpdesk_proto::knowledge::v1 as proto;
use helpdesk_runtime::{config::DatabaseConfig, service::Service, shutdown};

const TENANT: &str = "replicas";

async fn hits(knowledge: &Knowledge, query: &str) -> Vec<String> {
    let request = proto::SearchRequest { query: query.into(), locale: "en".into(), ..Default::default() };
    knowledge.search(TENANT, Audience::Public, request).await.unwrap().hits.into_iter().map(|hit| hit.title).collect()
}

/// Waits up to five seconds for `replica`'s search for `query` to return `expected`.
async fn converges(replica: &Knowledge, query: &str, expected: &[&str]) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let found = hits(replica, query).await;
        if found == expected {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "replica still finds {found:?} for {query:?}, not {expected:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn scenario(config: DatabaseConfig, dir: &std::path::Path) {
    let first: KnowledgeService = helpdesk_knowledge::open_database(&config, dir).await.unwrap();
    let second: KnowledgeService = helpdesk_knowledge::open_database(&config, dir).await.unwrap();
    let (one, two) = (first.knowledge().clone(), second.knowledge().clone());
    let (trigger, stop) = shutdown::channel();
    let tasks = [tokio::spawn(first.run(stop.clone())), tokio::spawn(second.run(stop))];

    let create = proto::CreateArticleRequest {
        locale: "en".into(),
        title: "Replacing a lost card".into(),
        body_markdown: "Freeze the card in the app, then order a new one.".into(),
        visibility: proto::Visibility::Public as i32,
        ..Default::default()
    };
    let article = one.create_article(TENANT, "admin", create).await.unwrap();
    let publish = |id: &str, status: proto::ArticleStatus| proto::SetArticleStatusRequest {
        id: id.into(),
        status: status as i32,
        note: String::new(),
    };
    one.set_status(TENANT, publish(&article.id, proto::ArticleStatus::Published)).await.unwrap();
    assert_eq!(hits(&one, "lost card").await, ["Replacing a lost card"], "the writer sees its change at once");
    converges(&two, "lost card", &["Replacing a lost card"]).await;

    let edit = proto::UpdateArticleRequest {
        id: article.id.clone(),
        title: Some("Replacing a stolen card".into()),
        ..Default::default()
    };
    two.update_article(TENANT, ("admin", true), edit).await.unwrap();
    converges(&one, "stolen card", &["Replacing a stolen card"]).await;

    one.set_status(TENANT, publish(&article.id, proto::ArticleStatus::Archived)).await.unwrap();
    converges(&two, "stolen card", &[]).await;

    trigger.trigger();
    for task in tasks {
        task.await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_on_sqlite_converge() {
    let dir = tempfile::tempdir().unwrap();
    scenario(DatabaseConfig::new(None, 4), dir.path()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_on_postgres_converge() {
    let Ok(base) = std::env::var("HELPDESK_TEST_POSTGRES_URL") else {
        eprintln!("HELPDESK_TEST_POSTGRES_URL is not set: PostgreSQL run not possible here");
        return;
    };
    let url = helpdesk_runtime::db::create_scratch_database(&base, "helpdesk_test").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    scenario(DatabaseConfig::new(Some(url.clone()), 4), dir.path()).await;
    helpdesk_runtime::db::drop_scratch_database(&base, &url).await.unwrap();
}
