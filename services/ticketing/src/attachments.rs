//! Attachments: files uploaded into the blob store under the caller's tenant, named by their
//! SHA-256 on the tickets and messages they belong to, and read back only through a ticket the
//! caller may see. Sizes come from the store, never from the caller, and a message can name only
//! files that were uploaded to its own tenant.

use bytes::Bytes;
use helpdesk_proto::ticketing::v1 as proto;
use helpdesk_runtime::{ServiceError, auth::Principal};

use crate::{Ticketing, model, store};

/// Files on one message or ticket description.
const MAX_ATTACHMENTS: usize = 20;
const DEFAULT_CONTENT_TYPE: &str = "application/octet-stream";

/// The blob store and its limits.
pub(crate) struct Attachments {
    pub(crate) blobs: helpdesk_blobs::BlobStore,
    pub(crate) max_file_bytes: u64,
    pub(crate) max_message_bytes: u64,
}

/// A file name as a sender gave it, without folders or control characters.
fn file_name(field: &str, name: &str) -> Result<String, ServiceError> {
    let name = name.rsplit(['/', '\\']).next().unwrap_or(name);
    let clean: String = name.chars().filter(|c| !c.is_control()).collect();
    let clean = clean.trim();
    if clean.is_empty() || clean == "." || clean == ".." {
        return Err(ServiceError::invalid_field(field, "a file needs a name"));
    }
    model::required_text(field, clean, 255)
}

/// `type/subtype`, lowercased; empty is the generic binary type.
fn content_type(field: &str, value: &str) -> Result<String, ServiceError> {
    let value = value.trim().to_ascii_lowercase();
    if value.is_empty() {
        return Ok(DEFAULT_CONTENT_TYPE.to_owned());
    }
    let essence = value.split(';').next().unwrap_or_default().trim();
    let token =
        |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$&^_.+-".contains(&b));
    match essence.split_once('/') {
        Some((kind, subtype)) if token(kind) && token(subtype) && value.len() <= 255 => Ok(value),
        _ => Err(ServiceError::invalid_field(field, "must be a media type such as image/png")),
    }
}

impl Ticketing {
    pub(crate) async fn upload_attachment(
        &self,
        caller: &Principal,
        request: proto::UploadAttachmentRequest,
    ) -> Result<proto::Attachment, ServiceError> {
        let name = file_name("name", &request.name)?;
        let content_type = content_type("content_type", &request.content_type)?;
        let limit = self.attachments.max_file_bytes;
        if request.content.len() as u64 > limit {
            return Err(ServiceError::invalid_field("content", format!("a file may have at most {limit} bytes")));
        }
        let size_bytes = request.content.len() as i64;
        let (storage_key, sha256) = helpdesk_blobs::key_of(&caller.tenant_id, &request.content);
        self.attachments.blobs.put(&storage_key, Bytes::from(request.content)).await?;
        Ok(proto::Attachment { name, content_type, size_bytes, sha256, storage_key, content_id: String::new() })
    }

    /// The attachments a message or ticket names, each an upload of the caller's tenant, with
    /// their stored sizes; `field` names the list in errors.
    pub(crate) async fn checked_attachments(
        &self,
        tenant_id: &str,
        field: &str,
        attachments: Vec<proto::Attachment>,
    ) -> Result<Vec<proto::Attachment>, ServiceError> {
        if attachments.len() > MAX_ATTACHMENTS {
            return Err(ServiceError::invalid_field(field, format!("at most {MAX_ATTACHMENTS}")));
        }
        let mut total = 0;
        let mut checked = Vec::with_capacity(attachments.len());
        for (index, attachment) in attachments.into_iter().enumerate() {
            let at = |name: &str| format!("{field}[{index}].{name}");
            let name = file_name(&at("name"), &attachment.name)?;
            let content_type = content_type(&at("content_type"), &attachment.content_type)?;
            let sha256 = attachment.sha256.trim().to_ascii_lowercase();
            if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(ServiceError::invalid_field(at("sha256"), "must be 64 hex digits"));
            }
            let storage_key = helpdesk_blobs::key(tenant_id, &sha256);
            if !attachment.storage_key.is_empty() && attachment.storage_key != storage_key {
                return Err(ServiceError::invalid_field(at("storage_key"), format!("must be {storage_key} or empty")));
            }
            let content_id = model::optional_text(&at("content_id"), attachment.content_id.trim(), 255)?;
            let size = self.attachments.blobs.size(&storage_key).await?.ok_or_else(|| {
                ServiceError::invalid_field(at("sha256"), "no file with this hash was uploaded: upload it first")
            })?;
            total += size;
            if total > self.attachments.max_message_bytes {
                let limit = self.attachments.max_message_bytes;
                return Err(ServiceError::invalid_field(field, format!("the files add up to more than {limit} bytes")));
            }
            checked.push(proto::Attachment {
                name,
                content_type,
                size_bytes: size as i64,
                sha256,
                storage_key,
                content_id,
            });
        }
        Ok(checked)
    }

    pub(crate) async fn get_attachment(
        &self,
        caller: &Principal,
        request: proto::GetAttachmentRequest,
    ) -> Result<proto::AttachmentContent, ServiceError> {
        let sha256 = request.sha256.trim().to_ascii_lowercase();
        if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ServiceError::invalid_field("sha256", "must be 64 hex digits"));
        }
        let ticket = self.get_ticket(caller, &request.ticket_id).await?;
        let missing = || ServiceError::not_found("attachment");
        let attachment = match ticket.attachments.into_iter().find(|attachment| attachment.sha256 == sha256) {
            Some(attachment) => attachment,
            None => {
                let public_only = caller.is_customer();
                store::message_attachment(&self.db, &caller.tenant_id, &ticket.id, &sha256, public_only)
                    .await?
                    .ok_or_else(missing)?
            }
        };
        let content = self.attachments.blobs.get(&attachment.storage_key).await?.ok_or_else(|| {
            tracing::error!(storage_key = %attachment.storage_key, "attachment named on a ticket is not in the blob store");
            missing()
        })?;
        Ok(proto::AttachmentContent { attachment: Some(attachment), content: content.to_vec() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_lose_folders_and_control_characters() {
        assert_eq!(file_name("n", "C:\\Users\\kim\\보고서.pdf").expect("a name"), "보고서.pdf");
        assert_eq!(file_name("n", "../../etc/passwd").expect("a name"), "passwd");
        assert_eq!(file_name("n", "a\u{0}b\r\n.txt").expect("a name"), "ab.txt");
        assert!(file_name("n", "..").is_err());
        assert!(file_name("n", " / ").is_err());
    }

    #[test]
    fn content_types_are_media_types() {
        assert_eq!(content_type("t", "").expect("default"), DEFAULT_CONTENT_TYPE);
        assert_eq!(content_type("t", "Image/PNG").expect("a type"), "image/png");
        assert_eq!(content_type("t", "text/plain; charset=euc-kr").expect("a type"), "text/plain; charset=euc-kr");
        for bad in ["image", "text/<script>", "/png", "a b/c"] {
            assert!(content_type("t", bad).is_err(), "{bad}");
        }
    }
}
