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
    time::{micros_to_timestamp, now_micros},
};
use sqlx::AnyConnection;

use crate::{
    Ticketing,
    model::{self, new_id},
    store,
    tickets::replay,
};

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

/// Gives the customer `emails`, and only those; an address another customer holds is refused.
async fn claim_emails(
    conn: &mut AnyConnection,
    tenant_id: &str,
    customer_id: &str,
    emails: &[String],
) -> Result<(), ServiceError> {
    store::delete_customer_emails(conn, tenant_id, customer_id).await?;
    for (index, email) in emails.iter().enumerate() {
        if let Err(error) = store::insert_customer_email(conn, tenant_id, email, customer_id).await {
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

impl Ticketing {
    pub(crate) async fn create_customer(
        &self,
        caller: &Principal,
        request: proto::CreateCustomerRequest,
    ) -> Result<proto::Customer, ServiceError> {
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
                return store::customer_by_id(&mut tx, &caller.tenant_id, &id)
                    .await?
                    .ok_or_else(|| ServiceError::not_found("customer"));
            }
            store::insert_idempotency_key(&mut tx, &caller.tenant_id, "customer", key, &fingerprint, &customer.id)
                .await?;
        }
        store::save_customer(&mut tx, &caller.tenant_id, &customer, None).await?;
        claim_emails(&mut tx, &caller.tenant_id, &customer.id, &customer.emails).await?;
        tx.commit().await?;
        Ok(customer)
    }

    /// The customer behind `request.email`, made if nobody holds the address. Two channels
    /// finding the same new address at once make one customer: the loser of the race to claim
    /// the address reads the winner's.
    pub(crate) async fn find_or_create_customer(
        &self,
        caller: &Principal,
        request: proto::FindOrCreateCustomerRequest,
    ) -> Result<proto::Customer, ServiceError> {
        let email = emails(std::slice::from_ref(&request.email))
            .map_err(|_| ServiceError::invalid_field("email", "not an email address"))?
            .pop()
            .ok_or_else(|| ServiceError::invalid_field("email", "must not be empty"))?;
        let name = match request.name.trim() {
            "" => email.split('@').next().unwrap_or(&email).to_owned(),
            name => name.chars().take(200).collect(),
        };
        // A language the channel guessed is a hint, not input to refuse.
        let language = language(&request.language).unwrap_or_default();
        for _ in 0..2 {
            let mut tx = self.db.writer().begin().await?;
            if let Some(id) = store::customer_id_by_email(&mut tx, &caller.tenant_id, &email).await? {
                return store::customer_by_id(&mut tx, &caller.tenant_id, &id)
                    .await?
                    .ok_or_else(|| ServiceError::internal(&"an address names a customer that is gone"));
            }
            let now = now_micros();
            let customer = proto::Customer {
                id: new_id(),
                tenant_id: caller.tenant_id.clone(),
                name: name.clone(),
                emails: vec![email.clone()],
                language: language.clone(),
                version: 1,
                created_at: Some(micros_to_timestamp(now)),
                updated_at: Some(micros_to_timestamp(now)),
                ..proto::Customer::default()
            };
            store::save_customer(&mut tx, &caller.tenant_id, &customer, None).await?;
            match claim_emails(&mut tx, &caller.tenant_id, &customer.id, &customer.emails).await {
                Ok(()) => {
                    tx.commit().await?;
                    return Ok(customer);
                }
                Err(error) if error.kind == ErrorKind::AlreadyExists => continue,
                Err(error) => return Err(error),
            }
        }
        Err(ServiceError::conflict("the address was claimed concurrently; retry"))
    }

    pub(crate) async fn get_customer(&self, caller: &Principal, id: &str) -> Result<proto::Customer, ServiceError> {
        if caller.is_customer() && caller.subject != id {
            return Err(ServiceError::not_found("customer"));
        }
        let mut conn = self.db.reader().acquire().await?;
        let mut customer = store::customer_by_id(&mut conn, &caller.tenant_id, id)
            .await?
            .ok_or_else(|| ServiceError::not_found("customer"))?;
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
        if request.expected_version < 1 {
            return Err(ServiceError::invalid_field("expected_version", "send the version you last saw (1 or more)"));
        }
        model::string_map("external_ids", &request.external_ids, 20)?;
        let mut tx = self.db.writer().begin().await?;
        let before = store::customer_by_id(&mut tx, &caller.tenant_id, &request.id)
            .await?
            .ok_or_else(|| ServiceError::not_found("customer"))?;
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
        if !store::save_customer(&mut tx, &caller.tenant_id, &after, Some(before.version)).await? {
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
        let page_size = model::page_size(request.page_size)?;
        let query = model::optional_text("query", request.query.trim(), 200)?.to_lowercase();
        let after = model::parse_page_token(&request.page_token, "c", 2)?;
        let mut customers = store::customers_page(
            &self.db,
            &caller.tenant_id,
            &query,
            request.flagged_only,
            after.as_deref(),
            page_size + 1,
        )
        .await?;
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
        let before = store::customer_by_id(&mut tx, &caller.tenant_id, &request.customer_id)
            .await?
            .ok_or_else(|| ServiceError::not_found("customer"))?;
        let mut after = before.clone();
        after.flag = flag.clone();
        after.version += 1;
        after.updated_at = Some(micros_to_timestamp(now));
        if !store::save_customer(&mut tx, &caller.tenant_id, &after, Some(before.version)).await? {
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

/// The most customers who may follow one ticket besides its requester.
pub(crate) const MAX_COLLABORATORS: usize = 50;

/// `ids` as a ticket's collaborators: trimmed, each once, the requester left out (they follow it
/// anyway), and every one a customer of the tenant.
pub(crate) async fn collaborators(
    conn: &mut AnyConnection,
    tenant_id: &str,
    field: &str,
    requester_id: &str,
    ids: impl IntoIterator<Item = String>,
) -> Result<Vec<String>, ServiceError> {
    let mut out: Vec<String> = Vec::new();
    for id in ids {
        let id = id.trim().to_owned();
        if id.is_empty() || id == requester_id || out.contains(&id) {
            continue;
        }
        if out.len() == MAX_COLLABORATORS {
            return Err(ServiceError::invalid_field(field, format!("at most {MAX_COLLABORATORS}")));
        }
        if store::customer_by_id(conn, tenant_id, &id).await?.is_none() {
            return Err(ServiceError::invalid_field(field, format!("no customer {id}")));
        }
        out.push(id);
    }
    Ok(out)
}
