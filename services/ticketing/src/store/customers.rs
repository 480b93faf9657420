//! Customers' tables: the profiles (contact details as JSON, the flag in `flag_*` columns) and
//! the email addresses each customer holds within its tenant.

use std::collections::HashMap;

use helpdesk_proto::ticketing::v1 as proto;
use helpdesk_runtime::{
    ServiceError,
    db::Database,
    time::{micros_to_timestamp, optional_timestamp, timestamp_to_micros},
};
use sqlx::AnyConnection;

use super::sql::{Param, Sql, after_cursor, insert_many};
use crate::model::{from_json, to_json};

const SELECT_CUSTOMER: &str = "SELECT id, tenant_id, name, emails, phones, external_ids, language, time_zone, \
    organization, tier, vip, notes, flag_kind, flag_reason, flag_by, flag_at, version, created_at, updated_at \
    FROM customers c";

/// A customer's `flag_*` columns, NULL when a join found no customer.
#[derive(sqlx::FromRow)]
pub(super) struct FlagColumns {
    flag_kind: Option<i64>,
    flag_reason: Option<String>,
    flag_by: Option<String>,
    flag_at: Option<i64>,
}

impl FlagColumns {
    pub(super) fn flag(self) -> Option<proto::CustomerFlag> {
        match self.flag_kind {
            Some(kind) if kind != 0 => Some(proto::CustomerFlag {
                kind: kind as i32,
                reason: self.flag_reason.unwrap_or_default(),
                flagged_by: self.flag_by.unwrap_or_default(),
                flagged_at: optional_timestamp(self.flag_at),
            }),
            _ => None,
        }
    }
}

/// A row of [`SELECT_CUSTOMER`]: the emails, phones and external ids as JSON.
#[derive(sqlx::FromRow)]
struct CustomerRow {
    id: String,
    tenant_id: String,
    name: String,
    emails: String,
    phones: String,
    external_ids: String,
    language: String,
    time_zone: String,
    organization: String,
    tier: String,
    vip: i64,
    notes: String,
    #[sqlx(flatten)]
    flag: FlagColumns,
    version: i64,
    created_at: i64,
    updated_at: i64,
}

impl TryFrom<CustomerRow> for proto::Customer {
    type Error = ServiceError;

    fn try_from(row: CustomerRow) -> Result<Self, ServiceError> {
        Ok(proto::Customer {
            id: row.id,
            tenant_id: row.tenant_id,
            name: row.name,
            emails: from_json(&row.emails)?,
            phones: from_json(&row.phones)?,
            language: row.language,
            time_zone: row.time_zone,
            organization: row.organization,
            external_ids: from_json(&row.external_ids)?,
            tier: row.tier,
            vip: row.vip != 0,
            notes: row.notes,
            flag: row.flag.flag(),
            version: row.version,
            created_at: Some(micros_to_timestamp(row.created_at)),
            updated_at: Some(micros_to_timestamp(row.updated_at)),
        })
    }
}

pub(crate) async fn customer_by_id(
    conn: &mut AnyConnection,
    tenant_id: &str,
    id: &str,
) -> Result<Option<proto::Customer>, ServiceError> {
    let row: Option<CustomerRow> = sqlx::query_as(&format!("{SELECT_CUSTOMER} WHERE tenant_id = $1 AND id = $2"))
        .bind(tenant_id)
        .bind(id)
        .fetch_optional(conn)
        .await?;
    row.map(proto::Customer::try_from).transpose()
}

/// What [`customers_page`] looks a customer up by: lowercased name, emails, phones and external ids.
fn search_text(customer: &proto::Customer) -> String {
    let mut parts = vec![customer.name.to_lowercase()];
    parts.extend(customer.emails.iter().cloned());
    parts.extend(customer.phones.iter().cloned());
    parts.extend(customer.external_ids.values().map(|id| id.to_lowercase()));
    parts.join(" ")
}

/// Writes the customer: a new one (no `seen_version`), or a change to the one at `seen_version`;
/// whether a row was written.
pub(crate) async fn save_customer(
    conn: &mut AnyConnection,
    tenant_id: &str,
    customer: &proto::Customer,
    seen_version: Option<i64>,
) -> Result<bool, ServiceError> {
    let flag = customer.flag.clone().unwrap_or_default();
    let values = sqlx::query(if seen_version.is_some() {
        "UPDATE customers SET name = $3, emails = $4, phones = $5, external_ids = $6, language = $7, time_zone = $8, \
         organization = $9, tier = $10, vip = $11, notes = $12, flag_kind = $13, flag_reason = $14, flag_by = $15, \
         flag_at = $16, search_text = $17, version = $18, created_at = $19, updated_at = $20 \
         WHERE tenant_id = $1 AND id = $2 AND version = $21"
    } else {
        "INSERT INTO customers (tenant_id, id, name, emails, phones, external_ids, language, time_zone, \
         organization, tier, vip, notes, flag_kind, flag_reason, flag_by, flag_at, search_text, version, \
         created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)"
    })
    .bind(tenant_id)
    .bind(&customer.id)
    .bind(&customer.name)
    .bind(to_json(&customer.emails)?)
    .bind(to_json(&customer.phones)?)
    .bind(to_json(&customer.external_ids)?)
    .bind(&customer.language)
    .bind(&customer.time_zone)
    .bind(&customer.organization)
    .bind(&customer.tier)
    .bind(i64::from(customer.vip))
    .bind(&customer.notes)
    .bind(i64::from(flag.kind))
    .bind(flag.reason)
    .bind(flag.flagged_by)
    .bind(flag.flagged_at.as_ref().map(timestamp_to_micros))
    .bind(search_text(customer))
    .bind(customer.version)
    .bind(customer.created_at.as_ref().map(timestamp_to_micros).unwrap_or_default())
    .bind(customer.updated_at.as_ref().map(timestamp_to_micros).unwrap_or_default());
    let values = match seen_version {
        Some(version) => values.bind(version),
        None => values,
    };
    Ok(values.execute(conn).await?.rows_affected() == 1)
}

/// A page of the tenant's customers, oldest first: those whose lookup text contains `search`
/// (lowercase; empty: all), only the flagged ones if asked, after the `(created_at, id)` cursor.
pub(crate) async fn customers_page(
    db: &Database,
    tenant_id: &str,
    search: &str,
    flagged_only: bool,
    after: Option<&[String]>,
    limit: i64,
) -> Result<Vec<proto::Customer>, ServiceError> {
    let mut sql = Sql::new(SELECT_CUSTOMER);
    let tenant = sql.text(tenant_id);
    sql.push(&format!(" WHERE tenant_id = {tenant}"));
    if !search.is_empty() {
        let escaped = search.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
        let pattern = sql.text(format!("%{escaped}%"));
        sql.push(&format!(" AND search_text LIKE {pattern} ESCAPE '\\'"));
    }
    if flagged_only {
        sql.push(" AND flag_kind <> 0");
    }
    if let Some(values) = after {
        after_cursor(&mut sql, &[("c.created_at", true), ("c.id", false)], values, false)?;
    }
    let limit = sql.int(limit);
    sql.push(&format!(" ORDER BY c.created_at, c.id LIMIT {limit}"));
    let rows: Vec<CustomerRow> = sql.fetch_all(db.reader()).await?;
    rows.into_iter().map(proto::Customer::try_from).collect()
}

pub(crate) async fn delete_customer_emails(
    conn: &mut AnyConnection,
    tenant_id: &str,
    customer_id: &str,
) -> Result<(), ServiceError> {
    sqlx::query("DELETE FROM customer_emails WHERE tenant_id = $1 AND customer_id = $2")
        .bind(tenant_id)
        .bind(customer_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// The customer who holds `email` (lowercase), if any.
pub(crate) async fn customer_id_by_email(
    conn: &mut AnyConnection,
    tenant_id: &str,
    email: &str,
) -> Result<Option<String>, ServiceError> {
    Ok(sqlx::query_scalar("SELECT customer_id FROM customer_emails WHERE tenant_id = $1 AND email = $2")
        .bind(tenant_id)
        .bind(email)
        .fetch_optional(conn)
        .await?)
}

/// Gives the address to the customer; fails as already existing if another one holds it.
pub(crate) async fn insert_customer_email(
    conn: &mut AnyConnection,
    tenant_id: &str,
    email: &str,
    customer_id: &str,
) -> Result<(), ServiceError> {
    sqlx::query("INSERT INTO customer_emails (tenant_id, email, customer_id) VALUES ($1, $2, $3)")
        .bind(tenant_id)
        .bind(email)
        .bind(customer_id)
        .execute(conn)
        .await?;
    Ok(())
}

// --- Ticket creation, for requesters of any tenants

#[derive(sqlx::FromRow)]
struct RequesterRow {
    tenant_id: String,
    id: String,
    #[sqlx(flatten)]
    flag: FlagColumns,
}

/// Which of the `(tenant, id)` customers exist: each found one's key and its flag, if any.
pub(crate) async fn customer_flags(
    conn: &mut AnyConnection,
    customers: &[(&str, &str)],
) -> Result<HashMap<(String, String), Option<proto::CustomerFlag>>, ServiceError> {
    let mut found = HashMap::new();
    for chunk in customers.chunks(500) {
        let mut sql = Sql::new("SELECT tenant_id, id, flag_kind, flag_reason, flag_by, flag_at FROM customers WHERE ");
        for (index, (tenant, id)) in chunk.iter().enumerate() {
            let (tenant, id) = (sql.text(*tenant), sql.text(*id));
            sql.push(&format!("{}(tenant_id = {tenant} AND id = {id})", if index > 0 { " OR " } else { "" }));
        }
        for row in sql.fetch_all::<RequesterRow>(&mut *conn).await? {
            found.insert((row.tenant_id, row.id), row.flag.flag());
        }
    }
    Ok(found)
}

/// Creates the minimal profile of each `(tenant, id)` customer who authenticated by token and
/// has none yet, named by their id.
pub(crate) async fn insert_provisioned_customers(
    conn: &mut AnyConnection,
    customers: &[(&str, &str)],
    now: i64,
) -> Result<(), ServiceError> {
    let rows = customers
        .iter()
        .map(|&(tenant_id, id)| {
            let empty = || Param::from("");
            vec![
                Param::from(tenant_id),
                Param::from(id),
                Param::from(id),
                Param::from("[]"),
                Param::from("[]"),
                Param::from("{}"),
                empty(),
                empty(),
                empty(),
                empty(),
                Param::from(0),
                empty(),
                Param::from(id.to_lowercase()),
                Param::from(1),
                Param::from(now),
                Param::from(now),
            ]
        })
        .collect();
    insert_many(
        conn,
        "INSERT INTO customers (tenant_id, id, name, emails, phones, external_ids, language, time_zone, \
         organization, tier, vip, notes, search_text, version, created_at, updated_at)",
        "ON CONFLICT DO NOTHING",
        rows,
    )
    .await?;
    Ok(())
}
