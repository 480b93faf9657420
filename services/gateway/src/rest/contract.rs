//! The REST contract as the protos declare it: every method's `google.api.http` binding, and the
//! JSON shape of every message and enum (`helpdesk.api.v1` options), read once from the
//! descriptor set so that requests never decode options again.

use std::collections::HashMap;

use axum::http::{Method, StatusCode, uri::PathAndQuery};
use prost_reflect::{
    DescriptorPool, DynamicMessage, EnumDescriptor, ExtensionDescriptor, FieldDescriptor, Kind, MessageDescriptor,
    MethodDescriptor,
};

/// The contracts and what the gateway derives from them.
pub(crate) struct Contract {
    pool: DescriptorPool,
    pub(crate) bindings: Vec<Binding>,
    shapes: HashMap<String, Shape>,
    enums: HashMap<String, EnumWords>,
}

/// One HTTP binding of a unary method.
pub(crate) struct Binding {
    pub(crate) method: MethodDescriptor,
    /// `/package.Service/Method`, the gRPC call it makes.
    pub(crate) grpc_path: PathAndQuery,
    pub(crate) http_method: Method,
    /// The path template, as routes and the OpenAPI document write it: a nested variable's dots
    /// are underscores (`{agent_id}` fills `agent.id`).
    pub(crate) path: String,
    /// The fields the path's variables fill, in order, each a dotted path from the request.
    pub(crate) path_fields: Vec<String>,
    pub(crate) body: Body,
    pub(crate) success: StatusCode,
    pub(crate) tag: String,
    /// The method's name in snake case, numbered for its additional bindings.
    pub(crate) operation_id: String,
}

/// Where the request fields that are not in the path come from.
pub(crate) enum Body {
    /// The query string (GET and DELETE).
    None,
    /// A JSON object of every remaining field.
    All,
    /// A JSON body that is this one message field; the rest come from the query string.
    Field {
        name: String,
        /// Its fields the path fills (`id` of the `agent` body for `{agent.id}`), not the body.
        from_path: Vec<String>,
    },
}

impl Body {
    /// The one field a `Field` body fills.
    pub(crate) fn field(&self) -> Option<&str> {
        match self {
            Self::Field { name, .. } => Some(name),
            Self::None | Self::All => None,
        }
    }
}

/// A path variable's name in routes and in the OpenAPI document: `agent.id` is `agent_id`.
pub(crate) fn route_variable(field_path: &str) -> String {
    field_path.replace('.', "_")
}

/// How one message appears in JSON.
pub(crate) struct Shape {
    pub(crate) fields: Vec<FieldShape>,
    /// Shown as its single field (a list wrapper that proto3 needs for presence).
    pub(crate) unwrap: bool,
}

pub(crate) struct FieldShape {
    pub(crate) field: FieldDescriptor,
    /// The JSON and query-string name.
    pub(crate) name: String,
    pub(crate) services_only: bool,
    /// Shown in responses, refused in requests.
    pub(crate) output_only: bool,
    /// A message whose fields the parent's JSON shows in its place (responses only).
    pub(crate) flatten: bool,
    /// A request must give it.
    pub(crate) required: bool,
    pub(crate) header: Option<String>,
}

impl FieldShape {
    /// Whether a request may set it by name, in a JSON body or the query string.
    pub(crate) fn settable(&self) -> bool {
        !self.services_only && !self.output_only && self.header.is_none()
    }
}

/// An enum's values as REST words: `PRIORITY_HIGH` is `high`; the zero value has no word.
pub(crate) struct EnumWords {
    pub(crate) words: Vec<(i32, String)>,
}

impl EnumWords {
    pub(crate) fn word(&self, number: i32) -> Option<&str> {
        self.words.iter().find(|(value, _)| *value == number).map(|(_, word)| word.as_str())
    }

    pub(crate) fn number(&self, word: &str) -> Option<i32> {
        self.words.iter().find(|(_, name)| name == word).map(|(number, _)| *number)
    }

    pub(crate) fn expected(&self) -> String {
        let words: Vec<&str> = self.words.iter().map(|(_, word)| word.as_str()).collect();
        format!("one of {}", words.join(", "))
    }
}

/// The options this module reads, found in the pool by name.
struct Options {
    http: ExtensionDescriptor,
    rest_name: ExtensionDescriptor,
    services_only: ExtensionDescriptor,
    from_header: ExtensionDescriptor,
    output_only: ExtensionDescriptor,
    flatten: ExtensionDescriptor,
    required: ExtensionDescriptor,
    success_status: ExtensionDescriptor,
    operation_tag: ExtensionDescriptor,
    rest_tag: ExtensionDescriptor,
    unwrap: ExtensionDescriptor,
}

impl Options {
    fn find(pool: &DescriptorPool) -> Result<Self, String> {
        let get =
            |name: &str| pool.get_extension_by_name(name).ok_or_else(|| format!("the descriptor set lacks {name}"));
        Ok(Self {
            http: get("google.api.http")?,
            rest_name: get("helpdesk.api.v1.rest_name")?,
            services_only: get("helpdesk.api.v1.services_only")?,
            from_header: get("helpdesk.api.v1.from_header")?,
            output_only: get("helpdesk.api.v1.output_only")?,
            flatten: get("helpdesk.api.v1.flatten")?,
            required: get("helpdesk.api.v1.required")?,
            success_status: get("helpdesk.api.v1.success_status")?,
            operation_tag: get("helpdesk.api.v1.operation_tag")?,
            rest_tag: get("helpdesk.api.v1.rest_tag")?,
            unwrap: get("helpdesk.api.v1.unwrap")?,
        })
    }
}

fn string_option(options: &DynamicMessage, extension: &ExtensionDescriptor) -> Option<String> {
    options
        .has_extension(extension)
        .then(|| options.get_extension(extension).as_str().map(str::to_owned))
        .flatten()
        .filter(|value| !value.is_empty())
}

fn bool_option(options: &DynamicMessage, extension: &ExtensionDescriptor) -> bool {
    options.has_extension(extension) && options.get_extension(extension).as_bool().unwrap_or(false)
}

impl Contract {
    /// Reads the contract from an encoded descriptor set; an error is a broken build, not input.
    pub(crate) fn load(descriptor_set: &[u8]) -> Result<Self, String> {
        let pool = DescriptorPool::decode(descriptor_set).map_err(|error| error.to_string())?;
        let options = Options::find(&pool)?;
        let helpdesk = |name: &str| name.starts_with("helpdesk.");
        let shapes = pool
            .all_messages()
            .filter(|message| helpdesk(message.full_name()))
            .map(|message| (message.full_name().to_owned(), shape(&message, &options)))
            .collect();
        let enums = pool
            .all_enums()
            .filter(|descriptor| helpdesk(descriptor.full_name()))
            .map(|descriptor| (descriptor.full_name().to_owned(), enum_words(&descriptor)))
            .collect();
        let mut bindings = Vec::new();
        for service in pool.services().filter(|service| helpdesk(service.full_name())) {
            let tag = string_option(&service.options(), &options.rest_tag).unwrap_or_else(|| service.name().to_owned());
            for method in service.methods() {
                let method_options = method.options();
                if !method_options.has_extension(&options.http) {
                    continue;
                }
                if method.is_client_streaming() || method.is_server_streaming() {
                    return Err(format!("{} streams and cannot have an HTTP binding", method.full_name()));
                }
                let rule = method_options.get_extension(&options.http);
                let rule = rule.as_message().ok_or("google.api.http is not a message")?;
                let success = method_options
                    .has_extension(&options.success_status)
                    .then(|| method_options.get_extension(&options.success_status).as_u32())
                    .flatten()
                    .map_or(Ok(StatusCode::OK), |code| StatusCode::from_u16(code as u16))
                    .map_err(|error| format!("{}: {error}", method.full_name()))?;
                let tag = string_option(&method_options, &options.operation_tag).unwrap_or_else(|| tag.clone());
                let extra = rule.get_field_by_name("additional_bindings");
                let extra = extra.as_deref().and_then(prost_reflect::Value::as_list).unwrap_or_default();
                let rules = std::iter::once(rule).chain(extra.iter().filter_map(prost_reflect::Value::as_message));
                for (index, rule) in rules.enumerate() {
                    let (operation_id, success) = match index {
                        0 => (snake(method.name()), success),
                        _ => (format!("{}_{}", snake(method.name()), index + 1), StatusCode::OK),
                    };
                    bindings.push(binding(&method, rule, success, &tag, operation_id)?);
                }
            }
        }
        Ok(Self { pool, bindings, shapes, enums })
    }

    pub(crate) fn pool(&self) -> &DescriptorPool {
        &self.pool
    }

    pub(crate) fn shape(&self, message: &MessageDescriptor) -> &Shape {
        static EMPTY: Shape = Shape { fields: Vec::new(), unwrap: false };
        self.shapes.get(message.full_name()).unwrap_or(&EMPTY)
    }

    pub(crate) fn enum_words(&self, descriptor: &EnumDescriptor) -> Option<&EnumWords> {
        self.enums.get(descriptor.full_name())
    }
}

fn shape(message: &MessageDescriptor, options: &Options) -> Shape {
    let fields = message
        .fields()
        .map(|field| {
            let field_options = field.options();
            FieldShape {
                name: string_option(&field_options, &options.rest_name).unwrap_or_else(|| field.name().to_owned()),
                services_only: bool_option(&field_options, &options.services_only),
                output_only: bool_option(&field_options, &options.output_only),
                flatten: bool_option(&field_options, &options.flatten),
                required: bool_option(&field_options, &options.required),
                header: string_option(&field_options, &options.from_header),
                field,
            }
        })
        .collect();
    Shape { fields, unwrap: bool_option(&message.options(), &options.unwrap) }
}

fn enum_words(descriptor: &EnumDescriptor) -> EnumWords {
    let prefix = format!("{}_", screaming_snake(descriptor.name()));
    let words = descriptor
        .values()
        .filter(|value| value.number() != 0)
        .map(|value| {
            let name = value.name();
            (value.number(), name.strip_prefix(&prefix).unwrap_or(name).to_ascii_lowercase())
        })
        .collect();
    EnumWords { words }
}

/// `TicketOrder` → `TICKET_ORDER`, the prefix protobuf style gives an enum's values.
fn screaming_snake(name: &str) -> String {
    snake(name).to_ascii_uppercase()
}

/// `CreateTicket` → `create_ticket`.
fn snake(name: &str) -> String {
    let mut out = String::new();
    for (index, character) in name.chars().enumerate() {
        if character.is_ascii_uppercase() && index > 0 {
            out.push('_');
        }
        out.push(character.to_ascii_lowercase());
    }
    out
}

fn binding(
    method: &MethodDescriptor,
    rule: &DynamicMessage,
    success: StatusCode,
    tag: &str,
    operation_id: String,
) -> Result<Binding, String> {
    let verbs = [
        ("get", Method::GET),
        ("put", Method::PUT),
        ("post", Method::POST),
        ("delete", Method::DELETE),
        ("patch", Method::PATCH),
    ];
    let (http_method, path) = verbs
        .into_iter()
        .find_map(|(field, verb)| {
            rule.get_field_by_name(field)
                .and_then(|value| value.as_str().map(str::to_owned))
                .filter(|path| !path.is_empty())
                .map(|path| (verb, path))
        })
        .ok_or_else(|| format!("{}: the HTTP rule names no method and path", method.full_name()))?;
    let input = method.input();
    let mut path_fields = Vec::new();
    for segment in path.split('/') {
        if let Some(name) = segment.strip_prefix('{').and_then(|rest| rest.strip_suffix('}')) {
            let field = field_at(&input, name)
                .ok_or_else(|| format!("{}: the path names {name}, not a field", method.full_name()))?;
            let scalar = matches!(field.kind(), Kind::String | Kind::Int32 | Kind::Int64 | Kind::Uint32 | Kind::Uint64);
            if !scalar || field.is_list() {
                return Err(format!("{}: path field {name} must be a string or an integer", method.full_name()));
            }
            path_fields.push(name.to_owned());
        }
    }
    let route = path
        .split('/')
        .map(|segment| match segment.strip_prefix('{').and_then(|rest| rest.strip_suffix('}')) {
            Some(name) => format!("{{{}}}", route_variable(name)),
            None => segment.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("/");
    let body = match rule.get_field_by_name("body").and_then(|value| value.as_str().map(str::to_owned)) {
        None => Body::None,
        Some(body) if body.is_empty() => Body::None,
        Some(body) if body == "*" => Body::All,
        Some(name) => {
            let field = input
                .get_field_by_name(&name)
                .ok_or_else(|| format!("{}: the body names {name}", method.full_name()))?;
            if !matches!(field.kind(), Kind::Message(_)) || field.is_list() {
                return Err(format!("{}: the body field {name} must be a message", method.full_name()));
            }
            let prefix = format!("{name}.");
            let from_path =
                path_fields.iter().filter_map(|path| path.strip_prefix(&prefix).map(str::to_owned)).collect();
            Body::Field { name, from_path }
        }
    };
    let grpc_path = format!("/{}/{}", method.parent_service().full_name(), method.name())
        .parse()
        .map_err(|error| format!("{}: {error}", method.full_name()))?;
    Ok(Binding {
        method: method.clone(),
        grpc_path,
        http_method,
        path: route,
        path_fields,
        body,
        success,
        tag: tag.to_owned(),
        operation_id,
    })
}

/// The field a dotted path (`agent.id`) names, through singular message fields.
pub(crate) fn field_at(message: &MessageDescriptor, path: &str) -> Option<FieldDescriptor> {
    let (head, rest) = match path.split_once('.') {
        Some((head, rest)) => (head, Some(rest)),
        None => (path, None),
    };
    let field = message.get_field_by_name(head)?;
    match (rest, field.kind()) {
        (None, _) => Some(field),
        (Some(rest), Kind::Message(inner)) if !field.is_list() && !field.is_map() => field_at(&inner, rest),
        _ => None,
    }
}

/// The value of a proto3 JSON well-known type, or None for any other message.
pub(crate) fn well_known(message: &MessageDescriptor) -> Option<WellKnown> {
    match message.full_name() {
        "google.protobuf.Timestamp" => Some(WellKnown::Timestamp),
        "google.protobuf.Value" => Some(WellKnown::Value),
        "google.protobuf.Struct" => Some(WellKnown::Struct),
        "google.protobuf.ListValue" => Some(WellKnown::List),
        _ => None,
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum WellKnown {
    Timestamp,
    Value,
    Struct,
    List,
}
