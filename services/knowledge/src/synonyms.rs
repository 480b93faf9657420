//! Synonyms: groups of terms a tenant's search treats as one, per locale, stored and then put in
//! that tenant's search index at once (other replicas pick them up through [`crate::follow`]).

use helpdesk_proto::knowledge::v1 as proto;
use helpdesk_runtime::{ServiceError, time::now_micros};

use crate::{index::Synonyms, model, service::Knowledge, store};

const MAX_SYNONYM_GROUPS: usize = 1_000;

impl Knowledge {
    pub async fn set_synonyms(
        &self,
        tenant: &str,
        request: proto::SetSynonymsRequest,
    ) -> Result<proto::Synonyms, ServiceError> {
        model::check_locale("locale", &request.locale)?;
        if request.groups.len() > MAX_SYNONYM_GROUPS {
            return Err(ServiceError::invalid_field("groups", format!("at most {MAX_SYNONYM_GROUPS} groups")));
        }
        let mut groups = Vec::with_capacity(request.groups.len());
        for group in &request.groups {
            let terms = model::labels("groups", &group.terms)?;
            if terms.len() < 2 {
                return Err(ServiceError::invalid_field("groups", "each group needs two terms or more"));
            }
            groups.push(terms);
        }
        let mut conn = self.db.writer().acquire().await?;
        store::set_synonyms(&mut conn, tenant, &request.locale, &groups, now_micros()).await?;
        self.indexes.set_synonyms(tenant, &request.locale, Synonyms::new(&groups));
        Ok(proto::Synonyms {
            locale: request.locale,
            groups: groups.into_iter().map(|terms| proto::SynonymGroup { terms }).collect(),
        })
    }

    pub async fn synonyms(&self, tenant: &str, locale: &str) -> Result<proto::Synonyms, ServiceError> {
        model::check_locale("locale", locale)?;
        let mut conn = self.db.reader().acquire().await?;
        let groups = store::synonyms(&mut conn, tenant, locale).await?;
        Ok(proto::Synonyms {
            locale: locale.to_owned(),
            groups: groups.into_iter().map(|terms| proto::SynonymGroup { terms }).collect(),
        })
    }
}
