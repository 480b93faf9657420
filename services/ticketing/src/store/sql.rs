//! Builds SQL with a variable number of `$N` parameters, for filters and multi-row inserts.

use helpdesk_runtime::{ServiceError, db::positional};
use sqlx::{
    Any, AnyConnection, AnyExecutor, FromRow,
    any::{AnyArguments, AnyRow},
    query::Query,
};

pub(super) enum Param {
    Text(String),
    Int(i64),
}

impl From<&str> for Param {
    fn from(value: &str) -> Self {
        Self::Text(value.to_owned())
    }
}

impl From<String> for Param {
    fn from(value: String) -> Self {
        Self::Text(value)
    }
}

impl From<&String> for Param {
    fn from(value: &String) -> Self {
        Self::Text(value.clone())
    }
}

impl From<i64> for Param {
    fn from(value: i64) -> Self {
        Self::Int(value)
    }
}

pub(super) struct Sql {
    text: String,
    params: Vec<Param>,
}

impl Sql {
    pub(super) fn new(text: &str) -> Self {
        Self { text: text.to_owned(), params: Vec::new() }
    }

    pub(super) fn push(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }

    /// Binds a value and returns its placeholder.
    fn bind(&mut self, value: impl Into<Param>) -> String {
        self.params.push(value.into());
        format!("${}", self.params.len())
    }

    pub(super) fn text(&mut self, value: impl Into<String>) -> String {
        self.bind(Param::Text(value.into()))
    }

    pub(super) fn int(&mut self, value: i64) -> String {
        self.bind(Param::Int(value))
    }

    fn query(&self) -> Query<'_, Any, AnyArguments<'_>> {
        let mut query = sqlx::query(&self.text);
        for param in &self.params {
            query = match param {
                Param::Text(value) => query.bind(value.as_str()),
                Param::Int(value) => query.bind(*value),
            };
        }
        query
    }

    /// Runs the query and reads each row into a `T`.
    pub(super) async fn fetch_all<'e, T>(&'e self, executor: impl AnyExecutor<'e>) -> Result<Vec<T>, sqlx::Error>
    where
        T: for<'r> FromRow<'r, AnyRow> + Send + Unpin,
    {
        self.query().try_map(|row: AnyRow| T::from_row(&row)).fetch_all(executor).await
    }
}

/// Keyset pagination: rows strictly after `values` in the order of `columns`.
pub(super) fn after_cursor(
    sql: &mut Sql,
    columns: &[(&str, bool)],
    values: &[String],
    descending: bool,
) -> Result<(), ServiceError> {
    let invalid = || ServiceError::invalid_field("page_token", "not a token this list returned");
    let op = if descending { "<" } else { ">" };
    let mut placeholders = Vec::with_capacity(columns.len());
    for ((_, numeric), value) in columns.iter().zip(values) {
        placeholders.push(if *numeric {
            sql.int(value.parse().map_err(|_| invalid())?)
        } else {
            sql.text(value.as_str())
        });
    }
    // (a, b, c) > (x, y, z) spelled out, which both databases plan well.
    let mut condition = String::new();
    for depth in (0..columns.len()).rev() {
        let strict = format!("{} {op} {}", columns[depth].0, placeholders[depth]);
        condition = if condition.is_empty() {
            strict
        } else {
            format!("{strict} OR ({} = {} AND ({condition}))", columns[depth].0, placeholders[depth])
        };
    }
    sql.push(&format!(" AND ({condition})"));
    Ok(())
}

/// Parameters per statement: below SQLite's limit of 32,766 (PostgreSQL allows 65,535).
const MAX_PARAMS: usize = 30_000;

/// Inserts `rows` (each the same number of values) with as few statements as the parameter limit
/// allows: `{head} VALUES (…), (…) {tail}`.
pub(super) async fn insert_many(
    conn: &mut AnyConnection,
    head: &str,
    tail: &str,
    rows: Vec<Vec<Param>>,
) -> Result<(), sqlx::Error> {
    let Some(width) = rows.first().map(Vec::len).filter(|width| *width > 0) else { return Ok(()) };
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let mut sql = Sql::new(head);
        sql.push(" VALUES ");
        for (index, row) in rows.by_ref().take(MAX_PARAMS / width).enumerate() {
            let placeholders: Vec<String> = row
                .into_iter()
                .map(|value| {
                    sql.bind(value);
                    positional(conn, sql.params.len())
                })
                .collect();
            if index > 0 {
                sql.push(", ");
            }
            sql.push(&format!("({})", placeholders.join(", ")));
        }
        sql.push(" ").push(tail);
        sql.query().execute(&mut *conn).await?;
    }
    Ok(())
}
