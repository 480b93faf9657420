//! Categories: a tree per tenant that articles are filed under, named in each locale, which the
//! help center shows parents first.

use helpdesk_proto::knowledge::v1 as proto;
use helpdesk_runtime::ServiceError;

use crate::{
    model,
    service::{Knowledge, check_id},
    store,
};

impl Knowledge {
    pub async fn upsert_category(
        &self,
        tenant: &str,
        category: proto::Category,
    ) -> Result<proto::Category, ServiceError> {
        check_id("category.id", &category.id)?;
        if category.names.is_empty() {
            return Err(ServiceError::invalid_field("category.names", "needs a name in at least one locale"));
        }
        for (locale, name) in &category.names {
            model::check_locale("category.names", locale)?;
            if name.trim().is_empty() || name.chars().count() > 100 {
                return Err(ServiceError::invalid_field("category.names", "names must be 1 to 100 characters"));
            }
        }
        let mut tx = self.db.writer().begin().await?;
        if !category.parent_id.is_empty() {
            let categories = store::categories(&mut tx, tenant).await?;
            // Walking up from the parent must end at the top without meeting this category.
            let mut at = category.parent_id.clone();
            while !at.is_empty() {
                if at == category.id {
                    return Err(ServiceError::invalid_field("category.parent_id", "would make a cycle"));
                }
                let parent = categories.iter().find(|c| c.id == at);
                at = parent
                    .ok_or_else(|| ServiceError::invalid_field("category.parent_id", "no such category"))?
                    .parent_id
                    .clone();
            }
        }
        store::upsert_category(&mut tx, tenant, &category).await?;
        tx.commit().await?;
        Ok(category)
    }

    pub async fn categories(&self, tenant: &str) -> Result<proto::ListCategoriesResponse, ServiceError> {
        let mut conn = self.db.reader().acquire().await?;
        let mut categories = store::categories(&mut conn, tenant).await?;
        // Parents before children: order by depth, then position.
        let depth = |category: &proto::Category| {
            let mut depth = 0;
            let mut at = category.parent_id.clone();
            while let Some(parent) = categories.iter().find(|c| c.id == at && depth < 32) {
                depth += 1;
                at = parent.parent_id.clone();
            }
            depth
        };
        let depths: Vec<usize> = categories.iter().map(depth).collect();
        let mut ordered: Vec<(usize, proto::Category)> = depths.into_iter().zip(categories.drain(..)).collect();
        ordered.sort_by_key(|(depth, category)| (*depth, category.position));
        Ok(proto::ListCategoriesResponse { categories: ordered.into_iter().map(|(_, category)| category).collect() })
    }
}
