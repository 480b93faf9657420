//! Typed custom ticket fields, defined per tenant, and validation of their values.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use helpdesk_proto::ticketing::v1::{self as proto, CustomFieldType};
use helpdesk_runtime::{ServiceError, auth::Principal};
use pbjson_types::{Value, value::Kind};

use crate::{
    Ticketing,
    model::{optional_text, required_text},
    store,
};

impl Ticketing {
    pub(crate) async fn define_custom_field(
        &self,
        caller: &Principal,
        field: Option<proto::CustomFieldDefinition>,
    ) -> Result<proto::CustomFieldDefinition, ServiceError> {
        let field = field.ok_or_else(|| ServiceError::invalid_field("field", "is required"))?;
        let key_ok = (1..=64).contains(&field.key.len())
            && field.key.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !key_ok {
            return Err(ServiceError::invalid_field("field.key", "1 to 64 of a-z, 0-9 and _"));
        }
        let label = required_text("field.label", &field.label, 200)?;
        let field_type = match CustomFieldType::try_from(field.r#type) {
            Ok(CustomFieldType::Unspecified) | Err(_) => {
                return Err(ServiceError::invalid_field(
                    "field.type",
                    "must be text, number, boolean, date or dropdown",
                ));
            }
            Ok(field_type) => field_type,
        };
        if field_type == CustomFieldType::Dropdown && field.options.is_empty() {
            return Err(ServiceError::invalid_field("field.options", "a dropdown needs options"));
        }
        for (index, option) in field.options.iter().enumerate() {
            required_text(&format!("field.options[{index}]"), option, 200)?;
        }
        let field = proto::CustomFieldDefinition { label, ..field };
        store::save_custom_field(&self.db, &caller.tenant_id, &field).await?;
        self.field_cache.forget(&caller.tenant_id);
        Ok(field)
    }

    /// The tenant's definitions, cached for a few seconds: every ticket create checks them.
    async fn cached_custom_fields(&self, tenant_id: &str) -> Result<Definitions, ServiceError> {
        if let Some(fields) = self.field_cache.get(tenant_id) {
            return Ok(fields);
        }
        let fields = Arc::new(self.custom_fields(tenant_id).await?);
        self.field_cache.put(tenant_id, fields.clone());
        Ok(fields)
    }

    pub(crate) async fn custom_fields(
        &self,
        tenant_id: &str,
    ) -> Result<Vec<proto::CustomFieldDefinition>, ServiceError> {
        store::custom_fields(&self.db, tenant_id).await
    }

    /// Checks `values` against the tenant's definitions. On create, required fields must be set;
    /// on update, a null value removes a field unless it is required.
    pub(crate) async fn check_custom_fields(
        &self,
        tenant_id: &str,
        values: &HashMap<String, Value>,
        creating: bool,
    ) -> Result<(), ServiceError> {
        let definitions = self.cached_custom_fields(tenant_id).await?;
        for (key, value) in values {
            let field = format!("custom_fields.{key}");
            let definition = definitions
                .iter()
                .find(|definition| &definition.key == key)
                .ok_or_else(|| ServiceError::invalid_field(&field, "no such custom field"))?;
            if matches!(value.kind, None | Some(Kind::NullValue(_))) {
                if definition.required {
                    return Err(ServiceError::invalid_field(&field, "is required"));
                }
                continue;
            }
            check_value(&field, definition, value)?;
        }
        if creating {
            for definition in definitions.iter().filter(|definition| definition.required) {
                if !values.contains_key(&definition.key) {
                    return Err(ServiceError::invalid_field(
                        format!("custom_fields.{}", definition.key),
                        "is required",
                    ));
                }
            }
        }
        Ok(())
    }
}

fn check_value(field: &str, definition: &proto::CustomFieldDefinition, value: &Value) -> Result<(), ServiceError> {
    let field_type = CustomFieldType::try_from(definition.r#type).unwrap_or(CustomFieldType::Unspecified);
    let ok = match (field_type, &value.kind) {
        (CustomFieldType::Text, Some(Kind::StringValue(text))) => {
            optional_text(field, text, 10_000)?;
            true
        }
        (CustomFieldType::Number, Some(Kind::NumberValue(number))) => number.is_finite(),
        (CustomFieldType::Boolean, Some(Kind::BoolValue(_))) => true,
        (CustomFieldType::Date, Some(Kind::StringValue(text))) => {
            chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").is_ok()
        }
        (CustomFieldType::Dropdown, Some(Kind::StringValue(text))) => definition.options.contains(text),
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        let expected = match field_type {
            CustomFieldType::Text => "text".to_owned(),
            CustomFieldType::Number => "a finite number".to_owned(),
            CustomFieldType::Boolean => "true or false".to_owned(),
            CustomFieldType::Date => "a date such as 2026-11-22".to_owned(),
            CustomFieldType::Dropdown => format!("one of {}", definition.options.join(", ")),
            CustomFieldType::Unspecified => "a value".to_owned(),
        };
        Err(ServiceError::invalid_field(field, format!("must be {expected}")))
    }
}

/// Per-tenant definitions for [`FIELD_CACHE_TTL`]. Another replica's change is seen within that
/// time; this replica's own changes at once.
#[derive(Default)]
pub(crate) struct FieldCache(Mutex<HashMap<String, (Instant, Definitions)>>);

type Definitions = Arc<Vec<proto::CustomFieldDefinition>>;

const FIELD_CACHE_TTL: Duration = Duration::from_secs(5);

impl FieldCache {
    fn get(&self, tenant_id: &str) -> Option<Definitions> {
        let cache = self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        cache.get(tenant_id).filter(|(at, _)| at.elapsed() < FIELD_CACHE_TTL).map(|(_, fields)| fields.clone())
    }

    fn put(&self, tenant_id: &str, fields: Definitions) {
        let mut cache = self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if cache.len() > 10_000 {
            cache.clear();
        }
        cache.insert(tenant_id.to_owned(), (Instant::now(), fields));
    }

    fn forget(&self, tenant_id: &str) {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).remove(tenant_id);
    }
}
