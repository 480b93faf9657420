//! The gRPC API reference in Markdown, generated from the embedded descriptor set (with the
//! comments of `proto/`), so the document cannot drift from the contracts.

use std::fmt::Write;

use prost::Message;
use prost_types::{
    DescriptorProto, EnumDescriptorProto, FileDescriptorProto, FileDescriptorSet, field_descriptor_proto,
};

// Paths into a FileDescriptorProto, as SourceCodeInfo numbers them.
const MESSAGE: i32 = 4;
const ENUM: i32 = 5;
const SERVICE: i32 = 6;
const FIELD: i32 = 2;
const METHOD: i32 = 2;
const VALUE: i32 = 2;

/// Markdown for every `helpdesk.*` package.
pub fn markdown() -> Result<String, prost::DecodeError> {
    let set = FileDescriptorSet::decode(helpdesk_proto::FILE_DESCRIPTOR_SET)?;
    let mut out = String::from(
        "# gRPC API reference\n\nGenerated from `proto/` by `helpdesk grpc-reference`; do not edit. Every call needs \
         `authorization: Bearer <api key or JWT>` metadata, except health, reflection and \
         `IdentityService/Authenticate`. Errors use standard status codes; invalid fields are named in \
         `google.rpc.BadRequest` details.\n",
    );
    let mut files: Vec<&FileDescriptorProto> = set
        .file
        .iter()
        .filter(|file| file.package().starts_with("helpdesk."))
        // Files of options only (the REST annotations) describe no call.
        .filter(|file| !(file.service.is_empty() && file.message_type.is_empty() && file.enum_type.is_empty()))
        .collect();
    files.sort_by_key(|file| file.name().to_owned());
    for file in files {
        let _ = write!(out, "\n## `{}`\n\n_{}_\n", file.package(), file.name());
        for (index, service) in file.service.iter().enumerate() {
            let _ = write!(out, "\n### service `{}`\n\n{}", service.name(), comment(file, &[SERVICE, index as i32]));
            out.push_str("\n| method | request | response | description |\n| --- | --- | --- | --- |\n");
            for (method_index, method) in service.method.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "| `{}` | `{}` | `{}` | {} |",
                    method.name(),
                    short(method.input_type()),
                    short(method.output_type()),
                    cell(&comment(file, &[SERVICE, index as i32, METHOD, method_index as i32]))
                );
            }
        }
        for (index, message) in file.message_type.iter().enumerate() {
            write_message(&mut out, file, message, index);
        }
        for (index, enumeration) in file.enum_type.iter().enumerate() {
            write_enum(&mut out, file, enumeration, index);
        }
    }
    Ok(out)
}

fn write_message(out: &mut String, file: &FileDescriptorProto, message: &DescriptorProto, index: usize) {
    let path = [MESSAGE, index as i32];
    let _ = write!(out, "\n### message `{}`\n\n{}", message.name(), comment(file, &path));
    if message.field.is_empty() {
        return;
    }
    out.push_str("\n| field | type | description |\n| --- | --- | --- |\n");
    for (field_index, field) in message.field.iter().enumerate() {
        let mut kind = match field.r#type() {
            field_descriptor_proto::Type::Message | field_descriptor_proto::Type::Enum => {
                short(field.type_name()).to_owned()
            }
            other => format!("{other:?}").to_lowercase(),
        };
        if kind.ends_with("Entry") {
            kind = "map".to_owned();
        } else if field.label() == field_descriptor_proto::Label::Repeated {
            kind = format!("repeated {kind}");
        }
        if field.proto3_optional() {
            kind = format!("optional {kind}");
        }
        let description = comment(file, &[MESSAGE, index as i32, FIELD, field_index as i32]);
        let _ = writeln!(out, "| `{}` | `{kind}` | {} |", field.name(), cell(&description));
    }
}

fn write_enum(out: &mut String, file: &FileDescriptorProto, enumeration: &EnumDescriptorProto, index: usize) {
    let _ = write!(out, "\n### enum `{}`\n\n{}", enumeration.name(), comment(file, &[ENUM, index as i32]));
    out.push_str("\n| value | number | description |\n| --- | --- | --- |\n");
    for (value_index, value) in enumeration.value.iter().enumerate() {
        let description = comment(file, &[ENUM, index as i32, VALUE, value_index as i32]);
        let _ = writeln!(out, "| `{}` | {} | {} |", value.name(), value.number(), cell(&description));
    }
}

/// The leading comment of the element at `path`, as a paragraph (empty when there is none).
fn comment(file: &FileDescriptorProto, path: &[i32]) -> String {
    let text = file
        .source_code_info
        .as_ref()
        .and_then(|info| info.location.iter().find(|location| location.path == path))
        .map(|location| location.leading_comments().trim().to_owned())
        .unwrap_or_default();
    if text.is_empty() {
        String::new()
    } else {
        format!("{}\n", text.lines().map(str::trim).collect::<Vec<_>>().join(" "))
    }
}

fn cell(text: &str) -> String {
    text.trim().replace('|', "\\|")
}

fn short(type_name: &str) -> &str {
    type_name.rsplit('.').next().unwrap_or(type_name)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_committed_grpc_reference_matches_the_contracts() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/api/grpc.md");
        let committed = std::fs::read_to_string(path).expect("docs/api/grpc.md exists");
        let generated = super::markdown().expect("descriptor set decodes");
        assert!(generated.contains("### service `TicketService`"));
        assert_eq!(
            committed.trim(),
            generated.trim(),
            "docs/api/grpc.md is stale: cargo run --bin helpdesk -- grpc-reference > docs/api/grpc.md"
        );
    }
}
