//! Messages to and from REST JSON, driven by the descriptors: field names as the protos spell
//! them (or their `rest_name`), enums as lowercase words without their type's prefix, timestamps
//! in RFC 3339, 64-bit integers as JSON numbers. Responses carry every field (an unset message,
//! enum or optional field, and an empty string, is `null`); requests may omit any, and unknown fields, wrong types and
//! unknown words are refused with the path of the field.

use prost_reflect::{DynamicMessage, FieldDescriptor, Kind, MapKey, MessageDescriptor, ReflectMessage, Value};
use serde::{Serialize, de::DeserializeOwned};
use serde_json::{Number, Value as Json};

use super::contract::{Contract, WellKnown, well_known};
use crate::{
    dto::{format_time, parse_time},
    error::ApiError,
};

impl Contract {
    /// The JSON of a response message.
    pub(crate) fn to_json(&self, message: &DynamicMessage) -> Json {
        let descriptor = message.descriptor();
        if let Some(kind) = well_known(&descriptor) {
            return well_known_to_json(kind, message);
        }
        let shape = self.shape(&descriptor);
        if shape.unwrap
            && let Some(only) = shape.fields.first()
        {
            return self.field_to_json(message, &only.field);
        }
        let mut object = serde_json::Map::new();
        for field in shape.fields.iter().filter(|field| !field.services_only) {
            match self.field_to_json(message, &field.field) {
                Json::Object(inner) if field.flatten => object.extend(inner),
                value => {
                    object.insert(field.name.clone(), value);
                }
            }
        }
        Json::Object(object)
    }

    fn field_to_json(&self, message: &DynamicMessage, field: &FieldDescriptor) -> Json {
        let absent = !message.has_field(field);
        let singular = !field.is_list() && !field.is_map();
        if absent && singular && (field.supports_presence() || matches!(field.kind(), Kind::Message(_))) {
            return Json::Null;
        }
        let value = message.get_field(field);
        if field.is_map() {
            let Kind::Message(entry) = field.kind() else { return Json::Null };
            let value_field = entry.map_entry_value_field();
            let object = value
                .as_map()
                .into_iter()
                .flatten()
                .map(|(key, value)| (map_key(key), self.value_to_json(&value_field.kind(), value)))
                .collect();
            return Json::Object(object);
        }
        if let Some(items) = value.as_list() {
            return Json::Array(items.iter().map(|item| self.value_to_json(&field.kind(), item)).collect());
        }
        // An empty string means "none" in proto3 (no assignee, the last page): REST says null.
        if value.as_str().is_some_and(str::is_empty) {
            return Json::Null;
        }
        self.value_to_json(&field.kind(), &value)
    }

    fn value_to_json(&self, kind: &Kind, value: &Value) -> Json {
        match (kind, value) {
            (Kind::Message(_), Value::Message(message)) => self.to_json(message),
            (Kind::Enum(descriptor), Value::EnumNumber(number)) => self
                .enum_words(descriptor)
                .and_then(|words| words.word(*number))
                .map_or(Json::Null, |word| Json::String(word.to_owned())),
            (_, Value::Bool(value)) => Json::Bool(*value),
            (_, Value::I32(value)) => Json::from(*value),
            (_, Value::I64(value)) => Json::from(*value),
            (_, Value::U32(value)) => Json::from(*value),
            (_, Value::U64(value)) => Json::from(*value),
            (_, Value::F32(value)) => Number::from_f64(f64::from(*value)).map_or(Json::Null, Json::Number),
            (_, Value::F64(value)) => Number::from_f64(*value).map_or(Json::Null, Json::Number),
            (_, Value::String(value)) => Json::String(value.clone()),
            (_, Value::Bytes(value)) => Json::String(hex::encode(value)),
            _ => Json::Null,
        }
    }

    /// Fills `message` from a JSON object, leaving out `excluded` fields (those the path or a
    /// header fills), which are then unknown in the body like any other.
    pub(crate) fn merge_json(
        &self,
        message: &mut DynamicMessage,
        json: Json,
        path: &str,
        excluded: &[String],
    ) -> Result<(), ApiError> {
        let descriptor = message.descriptor();
        if let Some(kind) = well_known(&descriptor) {
            *message = well_known_from_json(kind, &descriptor, json, path)?;
            return Ok(());
        }
        let shape = self.shape(&descriptor);
        if shape.unwrap
            && let Some(only) = shape.fields.first()
        {
            let value = self.field_from_json(&only.field, json, path)?;
            message.set_field(&only.field, value);
            return Ok(());
        }
        let Json::Object(object) = json else {
            return Err(ApiError::field(body_path(path), "must be a JSON object"));
        };
        for field in shape
            .fields
            .iter()
            .filter(|field| field.required && !excluded.iter().any(|name| name == field.field.name()))
        {
            if !object.get(&field.name).is_some_and(given) {
                return Err(ApiError::field(join(path, &field.name), "is required"));
            }
        }
        for (key, value) in object {
            let field_path = join(path, &key);
            let field = shape
                .fields
                .iter()
                .find(|field| field.name == key && !field.services_only && field.header.is_none())
                .filter(|field| !excluded.iter().any(|name| name == field.field.name()))
                .ok_or_else(|| ApiError::field(field_path.clone(), "unknown field"))?;
            if field.output_only {
                return Err(ApiError::field(field_path, "is set by the service"));
            }
            if value.is_null() {
                continue;
            }
            let value = self.field_from_json(&field.field, value, &field_path)?;
            message.set_field(&field.field, value);
        }
        Ok(())
    }

    fn field_from_json(&self, field: &FieldDescriptor, json: Json, path: &str) -> Result<Value, ApiError> {
        if field.is_map() {
            let Kind::Message(entry) = field.kind() else { return Err(ApiError::field(path, "unsupported map")) };
            let Json::Object(object) = json else { return Err(ApiError::field(path, "must be a JSON object")) };
            let key_field = entry.map_entry_key_field();
            let value_field = entry.map_entry_value_field();
            let mut map = std::collections::HashMap::new();
            for (key, value) in object {
                let item_path = join(path, &key);
                let key = match key_field.kind() {
                    Kind::String => MapKey::String(key),
                    _ => return Err(ApiError::field(item_path, "unsupported map key")),
                };
                if value.is_null() && !is_json_value(&value_field.kind()) {
                    return Err(ApiError::field(item_path, "must not be null"));
                }
                map.insert(key, self.value_from_json(&value_field.kind(), value, &item_path)?);
            }
            return Ok(Value::Map(map));
        }
        if field.is_list() {
            let Json::Array(items) = json else { return Err(ApiError::field(path, "must be a JSON array")) };
            let items = items
                .into_iter()
                .enumerate()
                .map(|(index, item)| self.value_from_json(&field.kind(), item, &format!("{path}[{index}]")))
                .collect::<Result<_, _>>()?;
            return Ok(Value::List(items));
        }
        self.value_from_json(&field.kind(), json, path)
    }

    fn value_from_json(&self, kind: &Kind, json: Json, path: &str) -> Result<Value, ApiError> {
        let wrong = |expected: &str| ApiError::field(path, format!("must be {expected}"));
        Ok(match kind {
            Kind::Message(descriptor) => {
                let mut message = DynamicMessage::new(descriptor.clone());
                self.merge_json(&mut message, json, path, &[])?;
                Value::Message(message)
            }
            Kind::Enum(descriptor) => {
                let words = self.enum_words(descriptor).ok_or_else(|| wrong("a known word"))?;
                let word = json.as_str().ok_or_else(|| wrong(&words.expected()))?;
                Value::EnumNumber(words.number(word.trim()).ok_or_else(|| wrong(&words.expected()))?)
            }
            Kind::String => Value::String(json.as_str().ok_or_else(|| wrong("a string"))?.to_owned()),
            Kind::Bool => Value::Bool(json.as_bool().ok_or_else(|| wrong("true or false"))?),
            Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => Value::I32(
                json.as_i64().and_then(|value| i32::try_from(value).ok()).ok_or_else(|| wrong("a 32-bit integer"))?,
            ),
            Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => {
                Value::I64(json.as_i64().ok_or_else(|| wrong("an integer"))?)
            }
            Kind::Uint32 | Kind::Fixed32 => Value::U32(
                json.as_u64()
                    .and_then(|value| u32::try_from(value).ok())
                    .ok_or_else(|| wrong("a non-negative 32-bit integer"))?,
            ),
            Kind::Uint64 | Kind::Fixed64 => Value::U64(json.as_u64().ok_or_else(|| wrong("a non-negative integer"))?),
            Kind::Double => Value::F64(json.as_f64().ok_or_else(|| wrong("a number"))?),
            Kind::Float => Value::F32(json.as_f64().ok_or_else(|| wrong("a number"))? as f32),
            Kind::Bytes => Value::Bytes(
                json.as_str().and_then(|text| hex::decode(text).ok()).ok_or_else(|| wrong("hexadecimal bytes"))?.into(),
            ),
        })
    }

    /// Fills one field from a query-string or path value: a scalar, an enum word, an RFC 3339
    /// time, or for a repeated field one item (several items may also be comma-separated).
    pub(crate) fn set_text(
        &self,
        message: &mut DynamicMessage,
        field: &FieldDescriptor,
        text: &str,
        name: &str,
    ) -> Result<(), ApiError> {
        if field.is_map() {
            return Err(ApiError::field(name, "cannot be given in the query string"));
        }
        if field.is_list() {
            let mut items = message.get_field(field).as_list().map(<[Value]>::to_vec).unwrap_or_default();
            for item in text.split(',').map(str::trim).filter(|item| !item.is_empty()) {
                items.push(self.value_from_text(&field.kind(), item, name)?);
            }
            message.set_field(field, Value::List(items));
            return Ok(());
        }
        let value = self.value_from_text(&field.kind(), text, name)?;
        message.set_field(field, value);
        Ok(())
    }

    fn value_from_text(&self, kind: &Kind, text: &str, name: &str) -> Result<Value, ApiError> {
        let json = match kind {
            Kind::String | Kind::Enum(_) | Kind::Bytes => Json::String(text.to_owned()),
            Kind::Message(descriptor) if well_known(descriptor) == Some(WellKnown::Timestamp) => {
                Json::String(text.to_owned())
            }
            Kind::Message(_) => return Err(ApiError::field(name, "cannot be given in the query string")),
            _ => serde_json::from_str(text)
                .map_err(|_| ApiError::field(name, format!("must be {}", scalar_name(kind))))?,
        };
        self.value_from_json(kind, json, name)
    }
}

/// Whether a required value is there: not null, and a string not blank.
fn given(value: &Json) -> bool {
    match value {
        Json::Null => false,
        Json::String(text) => !text.trim().is_empty(),
        _ => true,
    }
}

fn scalar_name(kind: &Kind) -> &'static str {
    match kind {
        Kind::Bool => "true or false",
        Kind::Double | Kind::Float => "a number",
        _ => "an integer",
    }
}

fn is_json_value(kind: &Kind) -> bool {
    matches!(kind, Kind::Message(descriptor) if well_known(descriptor) == Some(WellKnown::Value))
}

fn map_key(key: &MapKey) -> String {
    match key {
        MapKey::Bool(value) => value.to_string(),
        MapKey::I32(value) => value.to_string(),
        MapKey::I64(value) => value.to_string(),
        MapKey::U32(value) => value.to_string(),
        MapKey::U64(value) => value.to_string(),
        MapKey::String(value) => value.clone(),
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() { key.to_owned() } else { format!("{path}.{key}") }
}

fn body_path(path: &str) -> &str {
    if path.is_empty() { "body" } else { path }
}

fn well_known_to_json(kind: WellKnown, message: &DynamicMessage) -> Json {
    match kind {
        WellKnown::Timestamp => {
            message.transcode_to().ok().and_then(|time| format_time(Some(time))).map_or(Json::Null, Json::String)
        }
        WellKnown::Value => to_serde_json::<pbjson_types::Value>(message),
        WellKnown::Struct => to_serde_json::<pbjson_types::Struct>(message),
        WellKnown::List => to_serde_json::<pbjson_types::ListValue>(message),
    }
}

/// A well-known type through its pbjson twin, whose serde impl is proto3 JSON.
fn to_serde_json<T: prost::Message + Default + Serialize>(message: &DynamicMessage) -> Json {
    message.transcode_to::<T>().ok().and_then(|value| serde_json::to_value(value).ok()).unwrap_or(Json::Null)
}

fn from_serde_json<T: prost::Message + DeserializeOwned>(
    message: &mut DynamicMessage,
    json: Json,
    path: &str,
) -> Result<(), ApiError> {
    let value: T = serde_json::from_value(json).map_err(|error| ApiError::field(path, error.to_string()))?;
    message.transcode_from(&value).map_err(|error| ApiError::field(path, error.to_string()))
}

fn well_known_from_json(
    kind: WellKnown,
    descriptor: &MessageDescriptor,
    json: Json,
    path: &str,
) -> Result<DynamicMessage, ApiError> {
    let mut message = DynamicMessage::new(descriptor.clone());
    match kind {
        WellKnown::Timestamp => {
            let text = json.as_str().ok_or_else(|| ApiError::field(path, "must be an RFC 3339 time"))?;
            let time = parse_time(path, text.trim())?;
            message.transcode_from(&time).map_err(|error| ApiError::field(path, error.to_string()))?;
        }
        WellKnown::Value => from_serde_json::<pbjson_types::Value>(&mut message, json, path)?,
        WellKnown::Struct => from_serde_json::<pbjson_types::Struct>(&mut message, json, path)?,
        WellKnown::List => from_serde_json::<pbjson_types::ListValue>(&mut message, json, path)?,
    }
    Ok(message)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn contract() -> Contract {
        Contract::load(helpdesk_proto::FILE_DESCRIPTOR_SET).expect("the contract loads")
    }

    fn message(contract: &Contract, name: &str) -> DynamicMessage {
        DynamicMessage::new(contract.pool().get_message_by_name(name).expect("message"))
    }

    #[test]
    fn a_request_reads_words_times_values_and_refuses_the_unknown() {
        let contract = contract();
        let mut request = message(&contract, "helpdesk.ticketing.v1.CreateTicketRequest");
        let body = json!({"subject": "환불", "priority": "high", "tags": ["a"], "custom_fields": {"n": 3, "x": null}});
        contract.merge_json(&mut request, body, "", &[]).expect("valid");
        let typed: helpdesk_proto::ticketing::v1::CreateTicketRequest = request.transcode_to().expect("typed");
        assert_eq!(typed.subject, "환불");
        assert_eq!(typed.priority, helpdesk_proto::common::v1::Priority::High as i32);
        assert_eq!(typed.custom_fields.len(), 2);

        for (body, field) in [
            (json!({"subject": "x", "nope": 1}), "nope"),
            (json!({"priority": "highest"}), "priority"),
            (json!({"tags": "a"}), "tags"),
            (json!({"custom_fields": []}), "custom_fields"),
            (json!({"idempotency_key": "k"}), "idempotency_key"),
        ] {
            let mut request = message(&contract, "helpdesk.ticketing.v1.CreateTicketRequest");
            let error = contract.merge_json(&mut request, body, "", &[]).expect_err("refused");
            assert!(format!("{error:?}").contains(field), "{field}: {error:?}");
        }
    }

    #[test]
    fn output_only_fields_are_refused_and_required_ones_must_be_given() {
        let contract = contract();
        let mut agent = message(&contract, "helpdesk.routing.v1.Agent");
        let error = contract.merge_json(&mut agent, json!({"presence": "online"}), "", &[]).expect_err("refused");
        assert!(format!("{error:?}").contains("presence"), "{error:?}");

        for body in [json!({}), json!({"helpful": null})] {
            let mut vote = message(&contract, "helpdesk.knowledge.v1.VoteRequest");
            let error = contract.merge_json(&mut vote, body, "", &["article_id".to_owned()]).expect_err("required");
            assert!(format!("{error:?}").contains("helpful"), "{error:?}");
        }
        let mut vote = message(&contract, "helpdesk.knowledge.v1.VoteRequest");
        contract
            .merge_json(&mut vote, json!({"helpful": false}), "", &["article_id".to_owned()])
            .expect("false is given");
    }

    #[test]
    fn a_flattened_field_shows_its_fields_in_its_place() {
        let contract = contract();
        let routing = helpdesk_proto::routing::v1::TicketRouting {
            work_item: Some(helpdesk_proto::routing::v1::WorkItem { ticket_id: "t1".into(), ..Default::default() }),
            sla: Some(Default::default()),
            wait: None,
        };
        let mut message = message(&contract, "helpdesk.routing.v1.TicketRouting");
        message.transcode_from(&routing).expect("transcode");
        let json = contract.to_json(&message);
        assert_eq!(json["ticket_id"], "t1");
        assert!(json.get("work_item").is_none(), "{json}");
        assert_eq!(json["wait"], Json::Null);
        assert_eq!(json["sla"]["targets"], json!([]));
    }

    #[test]
    fn a_response_has_every_field_with_words_and_times() {
        let contract = contract();
        let ticket = helpdesk_proto::ticketing::v1::Ticket {
            id: "t1".into(),
            priority: helpdesk_proto::common::v1::Priority::Urgent as i32,
            created_at: Some(pbjson_types::Timestamp { seconds: 1_764_000_000, nanos: 5_000 }),
            ..Default::default()
        };
        let mut message = message(&contract, "helpdesk.ticketing.v1.Ticket");
        message.transcode_from(&ticket).expect("transcode");
        let json = contract.to_json(&message);
        assert_eq!(json["priority"], "urgent");
        assert_eq!(json["status"], Json::Null);
        assert_eq!(json["created_at"], "2025-11-24T16:00:00.000005Z");
        assert_eq!(json["tags"], json!([]));
        assert_eq!(json["custom_fields"], json!({}), "an empty map is an empty object");
        assert_eq!(json["requester_flag"], Json::Null);
        assert_eq!(json["version"], 0);
        assert_eq!(json["assignee_id"], Json::Null, "an empty string is null");
    }
}
