//! Builds SQL with a variable number of `$N` parameters, for filters and multi-row inserts.

use helpdesk_runtime::{ServiceError, db::positional};
use sqlx::{Any, AnyConnection, any::AnyArguments, query::Query};

pub(crate) enum Param {
    Text(String),
    Int(i64),
    OptionalInt(Option<i64>),
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

impl From<Option<i64>> for Param {
    fn from(value: Option<i64>) -> Self {
        Self::OptionalInt(value)
    }
}

#[derive(Default)]
pub(crate) struct Sql {
    text: String,
    params: Vec<Param>,
}

impl Sql {
    pub(crate) fn new(text: &str) -> Self {
        Self { text: text.to_owned(), params: Vec::new() }
    }

    pub(crate) fn push(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }

    /// Binds a value and returns its placeholder.
    pub(crate) fn bind(&mut self, value: impl Into<Param>) -> String {
        self.params.push(value.into());
        format!("${}", self.params.len())
    }

    pub(crate) fn text(&mut self, value: impl Into<String>) -> String {
        self.bind(Param::Text(value.into()))
    }

    pub(crate) fn int(&mut self, value: i64) -> String {
        self.bind(Param::Int(value))
    }

    pub(crate) fn query(&self) -> Query<'_, Any, AnyArguments<'_>> {
        let mut query = sqlx::query(&self.text);
        for param in &self.params {
            query = match param {
                Param::Text(value) => query.bind(value.as_str()),
                Param::Int(value) => query.bind(*value),
                Param::OptionalInt(value) => query.bind(*value),
            };
        }
        query
    }
}

/// Keyset pagination: rows strictly after `values` in the order of `columns`.
pub(crate) fn after_cursor(
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
pub(crate) async fn insert_many(
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
