//! Custom field definitions' table: a dropdown's options as JSON.

use helpdesk_proto::ticketing::v1 as proto;
use helpdesk_runtime::{ServiceError, db::Database};

use crate::model::{from_json, to_json};

/// Creates the field, or replaces the tenant's field of the same key.
pub(crate) async fn save_custom_field(
    db: &Database,
    tenant_id: &str,
    field: &proto::CustomFieldDefinition,
) -> Result<(), ServiceError> {
    sqlx::query(
        "INSERT INTO custom_fields (tenant_id, field_key, label, field_type, options, required) \
         VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (tenant_id, field_key) DO UPDATE SET label = $3, field_type = $4, options = $5, required = $6",
    )
    .bind(tenant_id)
    .bind(&field.key)
    .bind(&field.label)
    .bind(i64::from(field.r#type))
    .bind(to_json(&field.options)?)
    .bind(i64::from(field.required))
    .execute(db.writer())
    .await?;
    Ok(())
}

#[derive(sqlx::FromRow)]
struct CustomFieldRow {
    field_key: String,
    label: String,
    field_type: i64,
    options: String,
    required: i64,
}

/// The tenant's field definitions, by key.
pub(crate) async fn custom_fields(
    db: &Database,
    tenant_id: &str,
) -> Result<Vec<proto::CustomFieldDefinition>, ServiceError> {
    let rows: Vec<CustomFieldRow> = sqlx::query_as(
        "SELECT field_key, label, field_type, options, required FROM custom_fields \
         WHERE tenant_id = $1 ORDER BY field_key",
    )
    .bind(tenant_id)
    .fetch_all(db.reader())
    .await?;
    rows.into_iter()
        .map(|row| {
            Ok(proto::CustomFieldDefinition {
                key: row.field_key,
                label: row.label,
                r#type: row.field_type as i32,
                options: from_json(&row.options)?,
                required: row.required != 0,
            })
        })
        .collect()
}
