//! A row whose JSON columns no longer parse is reported, not read as empty: an article whose tags
//! vanished silently would be saved back without them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use helpdesk_knowledge::Audience;
use helpdesk_proto::knowledge::v1 as proto;
use helpdesk_runtime::{ErrorKind, config::DatabaseConfig};

#[tokio::test]
async fn an_article_with_corrupt_tags_is_an_internal_error() {
    let dir = tempfile::tempdir().unwrap();
    let base = helpdesk_knowledge::open_database(&DatabaseConfig::new(None, 1), dir.path()).await.unwrap();
    let knowledge = base.knowledge().clone();
    let create = proto::CreateArticleRequest {
        locale: "en".into(),
        title: "Lost cards".into(),
        tags: vec!["cards".into()],
        ..Default::default()
    };
    let article = knowledge.create_article("acme", "admin", create).await.unwrap();
    let file = dir.path().join(format!("{}.db", helpdesk_knowledge::DATABASE));
    let options = sqlx::sqlite::SqliteConnectOptions::new().filename(file);
    let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
    sqlx::query("UPDATE articles SET tags = 'not json' WHERE id = $1").bind(&article.id).execute(&pool).await.unwrap();

    let error = knowledge.get_article("acme", &article.id, &Audience::Staff).await.expect_err("corrupt row");

    assert_eq!(error.kind, ErrorKind::Internal, "{error:?}");
}
