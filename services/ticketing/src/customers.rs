//! Customer profiles: contact details, language and time zone, CRM ids, tier, and the flag that
//! warns every later handler (abusive, legal threat…).

use std::collections::HashMap;

use helpdesk_events::outbox;
use helpdesk_proto::{
    events::v1::{CustomerFlagged, event::Payload},
    ticketing::v1::{self as proto, FlagKind},
};
use helpdesk_runtime::{
    ErrorKind, ServiceError,
    auth::Principal,
    time::{micros_to_timestamp, now_micros, optional_timestamp, timestamp_to_micros},
};
use sqlx::{AnyConnection, Row, any::AnyRow};

use crate::{
    Ticketing,
    model::{self, from_json, new_id, to_json},
    query::{Param, Sql, after_cursor, insert_many},
    tickets::{remember, replay},
};

const SELECT_CUSTOMER: &str = "SELECT id, tenant_id, name, emails, phones, external_ids, language, time_zone, \
    organization, tier, vip, notes, flag_kind, flag_reason, flag_by, flag_at, version, created_at, updated_at \
    FROM customers c";

/// The flag in a row's `flag_*` columns (NULL when a join found no customer).
pub(crate) fn flag_from_row(row: &AnyRow) -> Result<Option<proto::CustomerFlag>, ServiceError> {
    let kind: Option<i64> = row.try_get("flag_kind")?;
    match kind {
        Some(kind) if kind != 0 => Ok(Some(proto::CustomerFlag {
            kind: kind as i32,
            reason: row.try_get("flag_reason")?,
            flagged_by: row.try_get("flag_by")?,
            flagged_at: optional_timestamp(row.try_get("flag_at")?),
        })),
        _ => Ok(None),
    }
}

fn customer_from_row(row: &AnyRow) -> Result<proto::Customer, ServiceError> {
    Ok(proto::Customer {
        id: row.try_get("id")?,
        tenant_id: row.try_get("tenant_id")?,
        name: row.try_get("name")?,
        emails: from_json(&row.try_get::<String, _>("emails")?)?,
        phones: from_json(&row.try_get::<String, _>("phones")?)?,
        language: row.try_get("language")?,
        time_zone: row.try_get("time_zone")?,
        organization: row.try_get("organization")?,
        external_ids: from_json(&row.try_get::<String, _>("external_ids")?)?,
        tier: row.try_get("tier")?,
        vip: row.try_get::<i64, _>("vip")? != 0,
        notes: row.try_get("notes")?,
        flag: flag_from_row(row)?,
        version: row.try_get("version")?,
        created_at: Some(micros_to_timestamp(row.try_get("created_at")?)),
        updated_at: Some(micros_to_timestamp(row.try_get("updated_at")?)),
    })
}

/// The minimal profile of a customer who authenticated by token, for [`insert_provisioned`].
pub(crate) fn provisioned_row(tenant_id: &str, id: &str, now: i64) -> Vec<Param> {
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
}

/// Creates the profiles that do not exist yet.
pub(crate) async fn insert_provisioned(conn: &mut AnyConnection, rows: Vec<Vec<Param>>) -> Result<(), ServiceError> {
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

fn emails(values: &[String]) -> Result<Vec<String>, ServiceError> {
    if values.len() > 10 {
        return Err(ServiceError::invalid_field("emails", "at most 10"));
    }
    let mut out: Vec<String> = Vec::new();
    for (index, email) in values.iter().enumerate() {
        let email = email.trim().to_lowercase();
        let valid = email.len() <= 254
            && !email.chars().any(|c| c.is_whitespace() || c.is_control())
            && email
                .split_once('@')
                .is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.') && !domain.contains('@'));
        if !valid {
            return Err(ServiceError::invalid_field(format!("emails[{index}]"), "not an email address"));
        }
        if !out.contains(&email) {
            out.push(email);
        }
    }
    Ok(out)
}

fn phones(values: &[String]) -> Result<Vec<String>, ServiceError> {
    if values.len() > 10 {
        return Err(ServiceError::invalid_field("phones", "at most 10"));
    }
    values
        .iter()
        .enumerate()
        .map(|(index, phone)| {
            let phone = phone.trim();
            let valid = (3..=32).contains(&phone.len())
                && phone.chars().any(|c| c.is_ascii_digit())
                && phone.chars().all(|c| c.is_ascii_digit() || " +-().".contains(c));
            if valid {
                Ok(phone.to_owned())
            } else {
                Err(ServiceError::invalid_field(format!("phones[{index}]"), "digits, spaces and + - ( ) only"))
            }
        })
        .collect()
}

fn language(value: &str) -> Result<String, ServiceError> {
    let value = value.trim();
    let mut parts = value.split('-');
    let primary_ok =
        parts.next().is_some_and(|p| (2..=3).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphabetic()));
    let rest_ok = parts.all(|p| (2..=8).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphanumeric()));
    if value.is_empty() || (primary_ok && rest_ok) {
        Ok(value.to_owned())
    } else {
        Err(ServiceError::invalid_field("language", "a BCP 47 tag such as ko or en-US"))
    }
}

fn time_zone(value: &str) -> Result<String, ServiceError> {
    let value = value.trim();
    if value.is_empty() || value.parse::<chrono_tz::Tz>().is_ok() {
        Ok(value.to_owned())
    } else {
        Err(ServiceError::invalid_field("time_zone", "an IANA time zone such as Asia/Seoul"))
    }
}

fn search_text(customer: &proto::Customer) -> String {
    let mut parts = vec![customer.name.to_lowercase()];
    parts.extend(customer.emails.iter().cloned());
    parts.extend(customer.phones.iter().cloned());
    parts.extend(customer.external_ids.values().map(|id| id.to_lowercase()));
    parts.join(" ")
}

async fn claim_emails(
    conn: &mut AnyConnection,
    tenant_id: &str,
    customer_id: &str,
    emails: &[String],
) -> Result<(), ServiceError> {
    sqlx::query("DELETE FROM customer_emails WHERE tenant_id = $1 AND customer_id = $2")
        .bind(tenant_id)
        .bind(customer_id)
        .execute(&mut *conn)
        .await?;
    for (index, email) in emails.iter().enumerate() {
        let result = sqlx::query("INSERT INTO customer_emails (tenant_id, email, customer_id) VALUES ($1, $2, $3)")
            .bind(tenant_id)
            .bind(email)
            .bind(customer_id)
            .execute(&mut *conn)
            .await;
        if let Err(error) = result {
            let error = ServiceError::from(error);
            return Err(if error.kind == ErrorKind::AlreadyExists {
                ServiceError::new(ErrorKind::AlreadyExists, format!("{email} belongs to another customer"))
                    .with_field(format!("emails[{index}]"))
            } else {
                error
            });
        }
    }
    Ok(())
}

async fn save(
    conn: &mut AnyConnection,
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
    .bind(&customer.tenant_id)
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

async fn load(conn: &mut AnyConnection, tenant_id: &str, id: &str) -> Result<Option<proto::Customer>, ServiceError> {
    let row = sqlx::query(&format!("{SELECT_CUSTOMER} WHERE tenant_id = $1 AND id = $2"))
        .bind(tenant_id)
        .bind(id)
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(customer_from_row).transpose()
}

impl Ticketing {
    pub(crate) async fn create_customer(
        &self,
        caller: &Principal,
        request: proto::CreateCustomerRequest,
    ) -> Result<proto::Customer, ServiceError> {
        caller.require_staff()?;
        let key = model::idempotency_key(caller, &request.idempotency_key)?;
        let fingerprint = model::fingerprint(&request);
        model::string_map("external_ids", &request.external_ids, 20)?;
        let now = now_micros();
        let customer = proto::Customer {
            id: new_id(),
            tenant_id: caller.tenant_id.clone(),
            name: model::required_text("name", &request.name, 200)?,
            emails: emails(&request.emails)?,
            phones: phones(&request.phones)?,
            language: language(&request.language)?,
            time_zone: time_zone(&request.time_zone)?,
            organization: model::optional_text("organization", request.organization.trim(), 200)?,
            external_ids: request.external_ids,
            tier: model::optional_text("tier", request.tier.trim(), 64)?,
            vip: request.vip,
            notes: model::optional_text("notes", &request.notes, 10_000)?,
            flag: None,
            version: 1,
            created_at: Some(micros_to_timestamp(now)),
            updated_at: Some(micros_to_timestamp(now)),
        };
        let mut tx = self.db.writer().begin().await?;
        if let Some(key) = &key {
            if let Some(id) = replay(&mut tx, &caller.tenant_id, "customer", key, &fingerprint).await? {
                return load(&mut tx, &caller.tenant_id, &id).await?.ok_or_else(|| ServiceError::not_found("customer"));
            }
            remember(&mut tx, &caller.tenant_id, "customer", key, &fingerprint, &customer.id).await?;
        }
        save(&mut tx, &customer, None).await?;
        claim_emails(&mut tx, &caller.tenant_id, &customer.id, &customer.emails).await?;
        tx.commit().await?;
        Ok(customer)
    }

    pub(crate) async fn get_customer(&self, caller: &Principal, id: &str) -> Result<proto::Customer, ServiceError> {
        if caller.is_customer() && caller.subject != id {
            return Err(ServiceError::not_found("customer"));
        }
        let mut conn = self.db.reader().acquire().await?;
        let mut customer =
            load(&mut conn, &caller.tenant_id, id).await?.ok_or_else(|| ServiceError::not_found("customer"))?;
        if caller.is_customer() {
            customer.flag = None;
            customer.notes.clear();
        }
        Ok(customer)
    }

    pub(crate) async fn update_customer(
        &self,
        caller: &Principal,
        request: proto::UpdateCustomerRequest,
    ) -> Result<proto::Customer, ServiceError> {
        caller.require_staff()?;
        if request.expected_version < 1 {
            return Err(ServiceError::invalid_field("expected_version", "send the version you last saw (1 or more)"));
        }
        model::string_map("external_ids", &request.external_ids, 20)?;
        let mut tx = self.db.writer().begin().await?;
        let before =
            load(&mut tx, &caller.tenant_id, &request.id).await?.ok_or_else(|| ServiceError::not_found("customer"))?;
        if before.version != request.expected_version {
            return Err(ServiceError::conflict(format!(
                "customer changed since version {}; it is now at version {}",
                request.expected_version, before.version
            )));
        }
        let mut after = before.clone();
        if let Some(name) = &request.name {
            after.name = model::required_text("name", name, 200)?;
        }
        if let Some(list) = &request.emails {
            after.emails = emails(&list.values)?;
        }
        if let Some(list) = &request.phones {
            after.phones = phones(&list.values)?;
        }
        if let Some(value) = &request.language {
            after.language = language(value)?;
        }
        if let Some(value) = &request.time_zone {
            after.time_zone = time_zone(value)?;
        }
        if let Some(value) = &request.organization {
            after.organization = model::optional_text("organization", value.trim(), 200)?;
        }
        if let Some(value) = &request.tier {
            after.tier = model::optional_text("tier", value.trim(), 64)?;
        }
        if let Some(value) = request.vip {
            after.vip = value;
        }
        if let Some(value) = &request.notes {
            after.notes = model::optional_text("notes", value, 10_000)?;
        }
        merge_ids(&mut after.external_ids, request.external_ids);
        model::string_map("external_ids", &after.external_ids, 20)?;
        if after == before {
            return Ok(before);
        }
        after.version += 1;
        after.updated_at = Some(micros_to_timestamp(now_micros()));
        if !save(&mut tx, &after, Some(before.version)).await? {
            return Err(ServiceError::conflict("customer changed concurrently; reload and retry"));
        }
        if after.emails != before.emails {
            claim_emails(&mut tx, &caller.tenant_id, &after.id, &after.emails).await?;
        }
        tx.commit().await?;
        Ok(after)
    }

    pub(crate) async fn list_customers(
        &self,
        caller: &Principal,
        request: proto::ListCustomersRequest,
    ) -> Result<proto::ListCustomersResponse, ServiceError> {
        caller.require_staff()?;
        let page_size = model::page_size(request.page_size)?;
        let mut sql = Sql::new(SELECT_CUSTOMER);
        let tenant = sql.text(caller.tenant_id.as_str());
        sql.push(&format!(" WHERE tenant_id = {tenant}"));
        let query = model::optional_text("query", request.query.trim(), 200)?.to_lowercase();
        if !query.is_empty() {
            let escaped = query.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
            let pattern = sql.text(format!("%{escaped}%"));
            sql.push(&format!(" AND search_text LIKE {pattern} ESCAPE '\\'"));
        }
        if request.flagged_only {
            sql.push(" AND flag_kind <> 0");
        }
        if !request.page_token.is_empty() {
            let values = model::parse_page_token(&request.page_token, "c", 2)?;
            after_cursor(&mut sql, &[("c.created_at", true), ("c.id", false)], &values, false)?;
        }
        let limit = sql.int(page_size + 1);
        sql.push(&format!(" ORDER BY c.created_at, c.id LIMIT {limit}"));
        let rows = sql.query().fetch_all(self.db.reader()).await?;
        let mut customers = rows.iter().map(customer_from_row).collect::<Result<Vec<_>, _>>()?;
        let next_page_token = model::finish_page(&mut customers, page_size, |last| {
            model::created_cursor("c", last.created_at.as_ref(), &last.id)
        });
        Ok(proto::ListCustomersResponse { customers, next_page_token })
    }

    pub(crate) async fn set_customer_flag(
        &self,
        caller: &Principal,
        request: proto::SetCustomerFlagRequest,
    ) -> Result<proto::Customer, ServiceError> {
        caller.require_staff()?;
        let kind = FlagKind::try_from(request.kind)
            .map_err(|_| ServiceError::invalid_field("kind", format!("unknown flag kind {}", request.kind)))?;
        let now = now_micros();
        let flag = if kind == FlagKind::Unspecified {
            None
        } else {
            Some(proto::CustomerFlag {
                kind: kind as i32,
                reason: model::required_text("reason", &request.reason, 500)?,
                flagged_by: caller.subject.clone(),
                flagged_at: Some(micros_to_timestamp(now)),
            })
        };
        let mut tx = self.db.writer().begin().await?;
        let before = load(&mut tx, &caller.tenant_id, &request.customer_id)
            .await?
            .ok_or_else(|| ServiceError::not_found("customer"))?;
        let mut after = before.clone();
        after.flag = flag.clone();
        after.version += 1;
        after.updated_at = Some(micros_to_timestamp(now));
        if !save(&mut tx, &after, Some(before.version)).await? {
            return Err(ServiceError::conflict("customer changed concurrently; retry"));
        }
        let event = model::event(
            caller,
            "customer",
            &after.id,
            after.version,
            now,
            Payload::CustomerFlagged(CustomerFlagged { customer_id: after.id.clone(), flag }),
        );
        outbox::append(&mut tx, &event).await?;
        tx.commit().await?;
        self.events_written.notify_one();
        Ok(after)
    }
}

fn merge_ids(ids: &mut HashMap<String, String>, changes: HashMap<String, String>) {
    for (key, value) in changes {
        if value.is_empty() {
            ids.remove(&key);
        } else {
            ids.insert(key, value);
        }
    }
}
