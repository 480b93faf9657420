//! The OpenAPI paths and schemas of the derived routes, from the same descriptors that drive
//! them: one schema per message and enum (named as in the protos), descriptions from the protos'
//! comments, responses with every field present.

use std::collections::{BTreeMap, HashMap};

use axum::http::{Method, StatusCode};
use prost_reflect::{EnumDescriptor, FieldDescriptor, FileDescriptor, Kind, MessageDescriptor};
use utoipa::openapi::{
    ContentBuilder, OpenApi, Ref, RefOr, Required, ResponseBuilder,
    path::{HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn},
    request_body::RequestBodyBuilder,
    schema::{
        AdditionalProperties, AllOfBuilder, ArrayBuilder, ObjectBuilder, OneOfBuilder, Schema, SchemaFormat,
        SchemaType, Type,
    },
};

use super::contract::{Binding, Body, Contract, WellKnown, field_at, route_variable, well_known};

/// Adds every binding's operation and the schemas they use to `openapi`.
pub(crate) fn document(contract: &Contract, openapi: &mut OpenApi) {
    let mut schemas = Schemas { contract, names: short_names(contract), wanted: Vec::new(), done: BTreeMap::new() };
    for binding in &contract.bindings {
        let operation = schemas.operation(binding);
        openapi.paths.add_path_operation(&binding.path, vec![http_method(&binding.http_method)], operation);
    }
    schemas.complete();
    let components = openapi.components.get_or_insert_with(Default::default);
    components.schemas.extend(schemas.done);
}

fn http_method(method: &Method) -> HttpMethod {
    match *method {
        Method::POST => HttpMethod::Post,
        Method::PUT => HttpMethod::Put,
        Method::DELETE => HttpMethod::Delete,
        Method::PATCH => HttpMethod::Patch,
        _ => HttpMethod::Get,
    }
}

enum Wanted {
    /// A message, as a response (true) or as a request gives it.
    Message(MessageDescriptor, bool),
    Enum(EnumDescriptor),
}

struct Schemas<'a> {
    contract: &'a Contract,
    /// Schema names: a type's own name, or with its package in front where two packages share it.
    names: HashMap<String, String>,
    wanted: Vec<Wanted>,
    done: BTreeMap<String, RefOr<Schema>>,
}

impl Schemas<'_> {
    fn operation(&mut self, binding: &Binding) -> utoipa::openapi::path::Operation {
        let method = &binding.method;
        let input = method.input();
        let (summary, description) = split_comment(comment(&method.parent_file(), method.path()));
        let mut operation = OperationBuilder::new()
            .operation_id(Some(binding.operation_id.clone()))
            .tag(binding.tag.clone())
            .summary(summary)
            .description(description);
        for name in &binding.path_fields {
            let field = field_at(&input, name);
            operation = operation.parameter(
                ParameterBuilder::new()
                    .name(route_variable(name))
                    .parameter_in(ParameterIn::Path)
                    .required(Required::True)
                    .description(match name.contains('.') {
                        true => Some(format!("The request's `{name}`.")),
                        false => field.as_ref().and_then(|field| self.field_comment(field)),
                    })
                    .schema(field.as_ref().map(|field| self.value_schema(field, false))),
            );
        }
        let shape = self.contract.shape(&input);
        for field in &shape.fields {
            if let Some(header) = &field.header {
                operation = operation.parameter(
                    ParameterBuilder::new()
                        .name(header)
                        .parameter_in(ParameterIn::Header)
                        .required(Required::False)
                        .description(self.field_comment(&field.field))
                        .schema(Some(ObjectBuilder::new().schema_type(Type::String))),
                );
            }
        }
        let in_path = |field: &FieldDescriptor| binding.path_fields.iter().any(|name| name == field.name());
        let body_field = binding.body.field();
        if !matches!(binding.body, Body::All) {
            for field in shape.fields.iter().filter(|field| field.settable()) {
                if in_path(&field.field) || Some(field.field.name()) == body_field || field.field.is_map() {
                    continue;
                }
                let schema = self.value_schema(&field.field, false);
                operation = operation.parameter(
                    ParameterBuilder::new()
                        .name(&field.name)
                        .parameter_in(ParameterIn::Query)
                        .required(if field.required { Required::True } else { Required::False })
                        .description(self.field_comment(&field.field))
                        .schema(Some(schema)),
                );
            }
        }
        let body_schema = match &binding.body {
            Body::None => None,
            Body::All => Some(self.request_schema(&input, &binding.path_fields)),
            Body::Field { name, from_path } => input.get_field_by_name(name).map(|field| match field.kind() {
                Kind::Message(message) => self.request_schema(&message, from_path),
                _ => self.value_schema(&field, false),
            }),
        };
        if let Some(schema) = body_schema {
            operation = operation.request_body(Some(
                RequestBodyBuilder::new()
                    .required(Some(Required::True))
                    .content("application/json", ContentBuilder::new().schema(Some(schema)).build())
                    .build(),
            ));
        }
        let mut response = ResponseBuilder::new().description(binding.success.canonical_reason().unwrap_or("OK"));
        if binding.success != StatusCode::NO_CONTENT {
            let schema = self.reference_message(&method.output(), true);
            response = response.content("application/json", ContentBuilder::new().schema(Some(schema)).build());
        }
        let response = response.build();
        operation.response(binding.success.as_u16().to_string(), response).build()
    }

    /// A request body: the message's fields but those filled from the path or headers, all
    /// optional, nothing else allowed.
    fn request_schema(&mut self, message: &MessageDescriptor, excluded: &[String]) -> RefOr<Schema> {
        let shape = self.contract.shape(message);
        let mut object = ObjectBuilder::new()
            .schema_type(Type::Object)
            .description(comment(&message.parent_file(), message.path()))
            .additional_properties(Some(AdditionalProperties::FreeForm(false)));
        for field in &shape.fields {
            if !field.settable() || excluded.iter().any(|name| name == field.field.name()) {
                continue;
            }
            let schema = with_description(self.value_schema(&field.field, false), self.field_comment(&field.field));
            object = object.property(&field.name, schema);
            if field.required {
                object = object.required(&field.name);
            }
        }
        RefOr::T(Schema::Object(object.build()))
    }

    /// A message's schema by reference: as responses show it, or (`…Input`) as requests give it.
    fn reference_message(&mut self, message: &MessageDescriptor, response: bool) -> RefOr<Schema> {
        if let Some(kind) = well_known(message) {
            return well_known_schema(kind);
        }
        let shape = self.contract.shape(message);
        if shape.unwrap
            && let Some(only) = shape.fields.first()
        {
            return self.value_schema(&only.field.clone(), response);
        }
        self.wanted.push(Wanted::Message(message.clone(), response));
        RefOr::Ref(Ref::from_schema_name(self.message_name(message, response)))
    }

    fn reference_enum(&mut self, descriptor: &EnumDescriptor) -> RefOr<Schema> {
        self.wanted.push(Wanted::Enum(descriptor.clone()));
        RefOr::Ref(Ref::from_schema_name(self.name(descriptor.full_name())))
    }

    fn message_name(&self, message: &MessageDescriptor, response: bool) -> String {
        let name = self.name(message.full_name());
        if response { name } else { name + "Input" }
    }

    fn name(&self, full_name: &str) -> String {
        self.names.get(full_name).cloned().unwrap_or_else(|| full_name.replace('.', "_"))
    }

    /// The schema of a field's value; in responses an unset message, enum or optional is null.
    fn value_schema(&mut self, field: &FieldDescriptor, response: bool) -> RefOr<Schema> {
        if field.is_map() {
            let Kind::Message(entry) = field.kind() else { return RefOr::T(Schema::default()) };
            let value = self.single_schema(&entry.map_entry_value_field().kind(), response);
            return RefOr::T(Schema::Object(
                ObjectBuilder::new()
                    .schema_type(Type::Object)
                    .additional_properties(Some(AdditionalProperties::RefOr(value)))
                    .build(),
            ));
        }
        let single = self.single_schema(&field.kind(), response);
        if field.is_list() {
            return RefOr::T(Schema::Array(ArrayBuilder::new().items(single).build()));
        }
        let nullable = field.supports_presence() || matches!(field.kind(), Kind::Enum(_) | Kind::String);
        if response && matches!(field.kind(), Kind::String) {
            let schema_type = SchemaType::from_iter([Type::String, Type::Null]);
            return RefOr::T(Schema::Object(ObjectBuilder::new().schema_type(schema_type).build()));
        }
        if response && nullable && !is_free_form(&field.kind()) {
            return RefOr::T(Schema::OneOf(
                OneOfBuilder::new().item(single).item(ObjectBuilder::new().schema_type(Type::Null)).build(),
            ));
        }
        single
    }

    fn single_schema(&mut self, kind: &Kind, response: bool) -> RefOr<Schema> {
        let scalar = |schema_type: Type, format: Option<SchemaFormat>| {
            RefOr::T(Schema::Object(ObjectBuilder::new().schema_type(schema_type).format(format).build()))
        };
        use utoipa::openapi::schema::KnownFormat;
        match kind {
            Kind::Message(message) => self.reference_message(message, response),
            Kind::Enum(descriptor) => self.reference_enum(descriptor),
            Kind::String | Kind::Bytes => scalar(Type::String, None),
            Kind::Bool => scalar(Type::Boolean, None),
            Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 | Kind::Uint32 | Kind::Fixed32 => {
                scalar(Type::Integer, Some(SchemaFormat::KnownFormat(KnownFormat::Int32)))
            }
            Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 | Kind::Uint64 | Kind::Fixed64 => {
                scalar(Type::Integer, Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
            }
            Kind::Double | Kind::Float => scalar(Type::Number, Some(SchemaFormat::KnownFormat(KnownFormat::Double))),
        }
    }

    fn field_comment(&self, field: &FieldDescriptor) -> Option<String> {
        comment(&field.parent_file(), field.path())
    }

    /// Builds the schema of every type referenced so far, and of those they reference.
    fn complete(&mut self) {
        while let Some(wanted) = self.wanted.pop() {
            match wanted {
                Wanted::Message(message, response) => {
                    let name = self.message_name(&message, response);
                    if self.done.contains_key(&name) {
                        continue;
                    }
                    self.done.insert(name.clone(), RefOr::T(Schema::default()));
                    let schema =
                        if response { self.response_schema(&message) } else { self.request_schema(&message, &[]) };
                    self.done.insert(name, schema);
                }
                Wanted::Enum(descriptor) => {
                    let name = self.name(descriptor.full_name());
                    if self.done.contains_key(&name) {
                        continue;
                    }
                    let words = self.contract.enum_words(&descriptor);
                    let values: Vec<String> = words
                        .map(|words| words.words.iter().map(|(_, word)| word.clone()).collect())
                        .unwrap_or_default();
                    let schema = ObjectBuilder::new()
                        .schema_type(Type::String)
                        .enum_values(Some(values))
                        .description(comment(&descriptor.parent_file(), descriptor.path()));
                    self.done.insert(name, RefOr::T(Schema::Object(schema.build())));
                }
            }
        }
    }

    /// A response message: every field present (unset ones null).
    fn response_schema(&mut self, message: &MessageDescriptor) -> RefOr<Schema> {
        let shape = self.contract.shape(message);
        let mut object =
            ObjectBuilder::new().schema_type(Type::Object).description(comment(&message.parent_file(), message.path()));
        let mut flattened = Vec::new();
        for field in shape.fields.iter().filter(|field| !field.services_only) {
            if let (true, Kind::Message(inner)) = (field.flatten, field.field.kind()) {
                flattened.push(self.reference_message(&inner, true));
                continue;
            }
            let schema = with_description(self.value_schema(&field.field, true), self.field_comment(&field.field));
            object = object.property(&field.name, schema).required(&field.name);
        }
        let object = RefOr::T(Schema::Object(object.build()));
        if flattened.is_empty() {
            return object;
        }
        // A flattened field's properties sit beside the message's own.
        let all = flattened.into_iter().chain([object]).fold(AllOfBuilder::new(), AllOfBuilder::item);
        RefOr::T(Schema::AllOf(all.build()))
    }
}

fn is_free_form(kind: &Kind) -> bool {
    matches!(kind, Kind::Message(message) if well_known(message) == Some(WellKnown::Value))
}

fn well_known_schema(kind: WellKnown) -> RefOr<Schema> {
    use utoipa::openapi::schema::KnownFormat;
    let schema = match kind {
        WellKnown::Timestamp => ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
            .description(Some("RFC 3339, such as 2026-11-22T09:00:00+09:00"))
            .build(),
        WellKnown::Value => ObjectBuilder::new().schema_type(SchemaType::AnyValue).build(),
        WellKnown::Struct => ObjectBuilder::new()
            .schema_type(Type::Object)
            .additional_properties(Some(AdditionalProperties::FreeForm(true)))
            .build(),
        WellKnown::List => {
            return RefOr::T(Schema::Array(
                ArrayBuilder::new().items(ObjectBuilder::new().schema_type(SchemaType::AnyValue)).build(),
            ));
        }
    };
    RefOr::T(Schema::Object(schema))
}

fn with_description(schema: RefOr<Schema>, description: Option<String>) -> RefOr<Schema> {
    match (schema, description) {
        (RefOr::T(Schema::Object(mut object)), Some(description)) => {
            object.description = Some(description);
            RefOr::T(Schema::Object(object))
        }
        (RefOr::T(Schema::Array(mut array)), Some(description)) => {
            array.description = Some(description);
            RefOr::T(Schema::Array(array))
        }
        (RefOr::T(Schema::OneOf(mut one_of)), Some(description)) => {
            one_of.description = Some(description);
            RefOr::T(Schema::OneOf(one_of))
        }
        (RefOr::Ref(mut reference), Some(description)) => {
            reference.description = description;
            RefOr::Ref(reference)
        }
        (schema, _) => schema,
    }
}

/// Schema names for every helpdesk message and enum: the type's name (nested ones prefixed with
/// their parent's), or with its package's name in front when two packages use the same one.
fn short_names(contract: &Contract) -> HashMap<String, String> {
    let pool = contract.pool();
    let full_names: Vec<String> = pool
        .all_messages()
        .map(|message| message.full_name().to_owned())
        .chain(pool.all_enums().map(|descriptor| descriptor.full_name().to_owned()))
        .filter(|name| name.starts_with("helpdesk."))
        .collect();
    let short = |full: &str| -> (String, String) {
        let mut parts = full.split('.').skip(1);
        let package = parts.next().unwrap_or_default().to_owned();
        let rest: String = parts.skip(1).map(capitalized).collect();
        (package, rest)
    };
    let mut uses: HashMap<String, usize> = HashMap::new();
    for full in &full_names {
        *uses.entry(short(full).1).or_default() += 1;
    }
    full_names
        .iter()
        .map(|full| {
            let (package, name) = short(full);
            let name =
                if uses.get(&name).copied().unwrap_or_default() > 1 { capitalized(&package) + &name } else { name };
            (full.clone(), name)
        })
        .collect()
}

fn capitalized(word: &str) -> String {
    let mut characters = word.chars();
    characters.next().map(|first| first.to_uppercase().chain(characters).collect()).unwrap_or_default()
}

/// The leading comment the protos give the element at `path` in `file`, as one paragraph.
fn comment(file: &FileDescriptor, path: &[i32]) -> Option<String> {
    let info = file.file_descriptor_proto().source_code_info.as_ref()?;
    let location = info.location.iter().find(|location| location.path == path)?;
    let text = location.leading_comments.as_deref()?;
    let joined = text.lines().map(str::trim).filter(|line| !line.is_empty()).collect::<Vec<_>>().join(" ");
    (!joined.is_empty()).then_some(joined)
}

/// A method's comment as the operation's summary (its first sentence) and description (the rest).
fn split_comment(comment: Option<String>) -> (Option<String>, Option<String>) {
    let Some(comment) = comment else { return (None, None) };
    match comment.split_once(". ") {
        Some((first, rest)) => (Some(format!("{first}.")), Some(rest.to_owned())),
        None => (Some(comment), None),
    }
}
