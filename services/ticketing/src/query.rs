//! Builds SQL with a variable number of `$N` parameters, for filters and batched inserts.

use sqlx::{Any, any::AnyArguments, query::Query};

enum Param {
    Text(String),
    Int(i64),
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

    /// Binds a text value and returns its placeholder.
    pub(crate) fn text(&mut self, value: impl Into<String>) -> String {
        self.params.push(Param::Text(value.into()));
        format!("${}", self.params.len())
    }

    pub(crate) fn int(&mut self, value: i64) -> String {
        self.params.push(Param::Int(value));
        format!("${}", self.params.len())
    }

    pub(crate) fn query(&self) -> Query<'_, Any, AnyArguments<'_>> {
        let mut query = sqlx::query(&self.text);
        for param in &self.params {
            query = match param {
                Param::Text(value) => query.bind(value.as_str()),
                Param::Int(value) => query.bind(*value),
            };
        }
        query
    }
}
