//! Keyword search over tickets that works for Korean as well as English: the terms of
//! `helpdesk-text` (CJK bigrams, lowercased words), indexed as a term table on SQLite and as a
//! GIN-indexed `tsvector` on the ticket row on PostgreSQL, where twenty index rows per ticket
//! would cost more than the rest of the write. Terms from internal notes are indexed apart, so a
//! customer's search never matches words only agents can see.

use helpdesk_runtime::{
    ServiceError,
    db::{Backend, backend_of},
};
use sqlx::AnyConnection;

use super::sql::{Param, Sql, insert_many};

/// Terms to add to one ticket's index.
pub(crate) struct Document<'a> {
    tenant_id: &'a str,
    ticket_id: &'a str,
    pub(super) terms: Vec<String>,
    /// From an internal note: searchable by agents only.
    internal: bool,
}

impl<'a> Document<'a> {
    pub(crate) fn new(tenant_id: &'a str, ticket_id: &'a str, text: &str, internal: bool) -> Self {
        Self { tenant_id, ticket_id, terms: helpdesk_text::distinct_terms(text), internal }
    }
}

/// The terms as stored on a PostgreSQL ticket row: separated by single spaces.
pub(super) fn joined(terms: &[String]) -> String {
    terms.join(" ")
}

/// Adds `documents` to the index; on PostgreSQL their tickets must exist already.
pub(crate) async fn add_search_terms(conn: &mut AnyConnection, documents: &[Document<'_>]) -> Result<(), ServiceError> {
    match backend_of(conn) {
        Backend::Sqlite => insert_terms(conn, documents).await?,
        Backend::Postgres => {
            for doc in documents.iter().filter(|doc| !doc.terms.is_empty()) {
                sqlx::query(
                    "UPDATE tickets SET \
                     terms_all = CASE WHEN terms_all = '' THEN $3 ELSE terms_all || ' ' || $3 END, \
                     terms_public = CASE WHEN $4 = 1 THEN terms_public \
                         WHEN terms_public = '' THEN $3 ELSE terms_public || ' ' || $3 END \
                     WHERE tenant_id = $1 AND id = $2 AND length(terms_all) < 500000",
                )
                .bind(doc.tenant_id)
                .bind(doc.ticket_id)
                .bind(joined(&doc.terms))
                .bind(i64::from(doc.internal))
                .execute(&mut *conn)
                .await?;
            }
        }
    }
    Ok(())
}

/// Indexes new tickets: their terms went in with their rows on PostgreSQL (see
/// [`super::insert_tickets`]), so only SQLite writes any here.
pub(crate) async fn index_new_tickets(
    conn: &mut AnyConnection,
    documents: &[Document<'_>],
) -> Result<(), ServiceError> {
    if backend_of(conn) == Backend::Sqlite {
        insert_terms(conn, documents).await?;
    }
    Ok(())
}

/// SQLite's term rows for `documents`.
async fn insert_terms(conn: &mut AnyConnection, documents: &[Document<'_>]) -> Result<(), sqlx::Error> {
    let rows = documents
        .iter()
        .flat_map(|doc| {
            doc.terms.iter().map(move |term| {
                vec![
                    Param::from(doc.tenant_id),
                    Param::from(term),
                    Param::from(doc.ticket_id),
                    Param::from(i64::from(doc.internal)),
                ]
            })
        })
        .collect();
    insert_many(conn, "INSERT INTO search_terms (tenant_id, term, ticket_id, internal)", "ON CONFLICT DO NOTHING", rows)
        .await
}

/// Makes `to` findable by every term of `from` (when `from` is merged into `to`).
pub(crate) async fn copy_search_terms(
    conn: &mut AnyConnection,
    tenant_id: &str,
    from: &str,
    to: &str,
) -> Result<(), ServiceError> {
    let sql = match backend_of(conn) {
        Backend::Sqlite => {
            "INSERT INTO search_terms (tenant_id, term, ticket_id, internal) \
             SELECT tenant_id, term, $3, internal FROM search_terms WHERE tenant_id = $1 AND ticket_id = $2 \
             ON CONFLICT DO NOTHING"
        }
        Backend::Postgres => {
            "UPDATE tickets AS t SET \
             terms_all = CASE WHEN s.terms_all = '' THEN t.terms_all WHEN t.terms_all = '' THEN s.terms_all \
                 ELSE t.terms_all || ' ' || s.terms_all END, \
             terms_public = CASE WHEN s.terms_public = '' THEN t.terms_public WHEN t.terms_public = '' THEN s.terms_public \
                 ELSE t.terms_public || ' ' || s.terms_public END \
             FROM tickets AS s WHERE s.tenant_id = $1 AND s.id = $2 AND t.tenant_id = $1 AND t.id = $3"
        }
    };
    sqlx::query(sql).bind(tenant_id).bind(from).bind(to).execute(conn).await?;
    Ok(())
}

/// Restricts a query over tickets `t` of the tenant bound at `tenant` to those containing every
/// one of `terms` (in what the caller may see).
pub(super) fn restrict(sql: &mut Sql, backend: Backend, tenant: &str, terms: &[String], customer: bool) {
    match backend {
        Backend::Sqlite => {
            let placeholders: Vec<String> = terms.iter().map(|term| sql.text(term.as_str())).collect();
            let visibility = if customer { " AND s.internal = 0" } else { "" };
            let count = sql.int(terms.len() as i64);
            sql.push(&format!(
                " AND t.id IN (SELECT s.ticket_id FROM search_terms s WHERE s.tenant_id = {tenant} \
                 AND s.term IN ({}){visibility} GROUP BY s.ticket_id HAVING COUNT(DISTINCT s.term) = {count})",
                placeholders.join(", ")
            ));
        }
        Backend::Postgres => {
            // Quoted lexemes are taken as they are, with no further parsing or stemming.
            let query: Vec<String> =
                terms.iter().map(|term| format!("'{}'", term.replace('\\', "\\\\").replace('\'', "''"))).collect();
            let query = sql.text(query.join(" & "));
            let column = if customer { "search_public" } else { "search_all" };
            sql.push(&format!(" AND t.{column} @@ CAST({query} AS tsquery)"));
        }
    }
}
