//! Thin gRPC adapters: authenticate, check the role, call the service, map errors. The help
//! center needs no credentials and names its tenant in each request.

use std::sync::Arc;

use helpdesk_proto::knowledge::v1::{
    self as proto, ArticleStatus,
    help_center_service_server::{HelpCenterService, HelpCenterServiceServer},
    knowledge_service_server::{KnowledgeService, KnowledgeServiceServer},
};
use helpdesk_runtime::{
    ServiceError,
    auth::{Principal, Role},
    grpc::{Needs, handle_as},
};
use tonic::{Request, Response, Status};

use crate::{model::Audience, segments::Segments, service::Knowledge};

pub(crate) fn add_routes(
    knowledge: &Arc<Knowledge>,
    segments: &Arc<Segments>,
    routes: &mut tonic::service::RoutesBuilder,
) {
    routes
        .add_service(KnowledgeServiceServer::new(Api(knowledge.clone(), segments.clone())))
        .add_service(HelpCenterServiceServer::new(HelpCenter(knowledge.clone())));
}

struct Api(Arc<Knowledge>, Arc<Segments>);

/// Agents write drafts and send them for review; only admins put articles live or take them down.
fn may_set_status(caller: &Principal, status: i32) -> Result<(), ServiceError> {
    let publishes = status == ArticleStatus::Published as i32 || status == ArticleStatus::Archived as i32;
    if publishes && caller.role != Role::Admin {
        return Err(ServiceError::permission_denied("only admins publish and archive articles"));
    }
    Ok(())
}

/// Anyone on staff imports drafts; only admins import articles published at once.
fn may_import(caller: &Principal, request: &proto::ImportArticlesRequest) -> Result<(), ServiceError> {
    if request.publish && caller.role != Role::Admin {
        return Err(ServiceError::permission_denied("only admins publish articles"));
    }
    Ok(())
}

impl Api {
    /// Staff see every article; customers the published ones meant for them: public ones, and
    /// restricted ones for their segments.
    async fn audience(&self, caller: &Principal) -> Audience {
        if caller.is_customer() {
            Audience::Customer(self.1.of(&caller.tenant_id, &caller.subject).await)
        } else {
            Audience::Staff
        }
    }
}

#[tonic::async_trait]
impl KnowledgeService for Api {
    async fn create_article(
        &self,
        request: Request<proto::CreateArticleRequest>,
    ) -> Result<Response<proto::Article>, Status> {
        handle_as(request, Needs::Staff, |caller, request| async move {
            self.0.create_article(&caller.tenant_id, &caller.subject, request).await
        })
        .await
    }

    async fn update_article(
        &self,
        request: Request<proto::UpdateArticleRequest>,
    ) -> Result<Response<proto::Article>, Status> {
        handle_as(request, Needs::Staff, |caller, request| async move {
            self.0.update_article(&caller.tenant_id, (&caller.subject, caller.role == Role::Admin), request).await
        })
        .await
    }

    async fn get_article(
        &self,
        request: Request<proto::GetArticleRequest>,
    ) -> Result<Response<proto::Article>, Status> {
        handle_as(request, Needs::Anyone, |caller, request| async move {
            self.0.get_article(&caller.tenant_id, &request.id, &self.audience(&caller).await).await
        })
        .await
    }

    async fn list_articles(
        &self,
        request: Request<proto::ListArticlesRequest>,
    ) -> Result<Response<proto::ListArticlesResponse>, Status> {
        handle_as(request, Needs::Staff, |caller, request| async move {
            self.0.list_articles(&caller.tenant_id, request).await
        })
        .await
    }

    async fn set_article_status(
        &self,
        request: Request<proto::SetArticleStatusRequest>,
    ) -> Result<Response<proto::Article>, Status> {
        handle_as(request, Needs::Staff, |caller, request| async move {
            may_set_status(&caller, request.status)?;
            self.0.set_status(&caller.tenant_id, request).await
        })
        .await
    }

    async fn list_versions(
        &self,
        request: Request<proto::ListVersionsRequest>,
    ) -> Result<Response<proto::ListVersionsResponse>, Status> {
        handle_as(request, Needs::Staff, |caller, request| async move {
            self.0.versions(&caller.tenant_id, &request.article_id).await
        })
        .await
    }

    async fn get_version(
        &self,
        request: Request<proto::GetVersionRequest>,
    ) -> Result<Response<proto::ArticleVersion>, Status> {
        handle_as(request, Needs::Staff, |caller, request| async move {
            self.0.version(&caller.tenant_id, &request.article_id, request.version).await
        })
        .await
    }

    async fn diff_versions(
        &self,
        request: Request<proto::DiffVersionsRequest>,
    ) -> Result<Response<proto::VersionDiff>, Status> {
        handle_as(request, Needs::Staff, |caller, request| async move { self.0.diff(&caller.tenant_id, request).await })
            .await
    }

    async fn restore_version(
        &self,
        request: Request<proto::RestoreVersionRequest>,
    ) -> Result<Response<proto::Article>, Status> {
        handle_as(request, Needs::Staff, |caller, request| async move {
            self.0.restore(&caller.tenant_id, (&caller.subject, caller.role == Role::Admin), request).await
        })
        .await
    }

    async fn publish_revision(
        &self,
        request: Request<proto::PublishRevisionRequest>,
    ) -> Result<Response<proto::Article>, Status> {
        handle_as(request, Needs::Admin, |caller, request| async move {
            self.0.publish_revision(&caller.tenant_id, request).await
        })
        .await
    }

    async fn discard_revision(
        &self,
        request: Request<proto::DiscardRevisionRequest>,
    ) -> Result<Response<proto::Article>, Status> {
        handle_as(request, Needs::Staff, |caller, request| async move {
            self.0.discard_revision(&caller.tenant_id, &request.article_id).await
        })
        .await
    }

    async fn upsert_category(
        &self,
        request: Request<proto::UpsertCategoryRequest>,
    ) -> Result<Response<proto::Category>, Status> {
        handle_as(request, Needs::Admin, |caller, request| async move {
            let category = request.category.ok_or_else(|| ServiceError::invalid_field("category", "is required"))?;
            self.0.upsert_category(&caller.tenant_id, category).await
        })
        .await
    }

    async fn list_categories(
        &self,
        request: Request<proto::ListCategoriesRequest>,
    ) -> Result<Response<proto::ListCategoriesResponse>, Status> {
        handle_as(request, Needs::Anyone, |caller, _| async move { self.0.categories(&caller.tenant_id).await }).await
    }

    async fn set_synonyms(
        &self,
        request: Request<proto::SetSynonymsRequest>,
    ) -> Result<Response<proto::Synonyms>, Status> {
        handle_as(request, Needs::Admin, |caller, request| async move {
            self.0.set_synonyms(&caller.tenant_id, request).await
        })
        .await
    }

    async fn get_synonyms(
        &self,
        request: Request<proto::GetSynonymsRequest>,
    ) -> Result<Response<proto::Synonyms>, Status> {
        handle_as(request, Needs::Staff, |caller, request| async move {
            self.0.synonyms(&caller.tenant_id, &request.locale).await
        })
        .await
    }

    async fn search(&self, request: Request<proto::SearchRequest>) -> Result<Response<proto::SearchResponse>, Status> {
        handle_as(request, Needs::Anyone, |caller, request| async move {
            self.0.search(&caller.tenant_id, self.audience(&caller).await, request).await
        })
        .await
    }

    async fn suggest(
        &self,
        request: Request<proto::SuggestRequest>,
    ) -> Result<Response<proto::SuggestResponse>, Status> {
        handle_as(request, Needs::Anyone, |caller, request| async move {
            self.0.suggest(&caller.tenant_id, self.audience(&caller).await, request).await
        })
        .await
    }

    async fn record_click(
        &self,
        request: Request<proto::RecordClickRequest>,
    ) -> Result<Response<proto::RecordClickResponse>, Status> {
        handle_as(request, Needs::Anyone, |caller, request| async move {
            self.0.record_click(&caller.tenant_id, &request.search_id, &request.article_id).await?;
            Ok(proto::RecordClickResponse {})
        })
        .await
    }

    async fn vote(&self, request: Request<proto::VoteRequest>) -> Result<Response<proto::ArticleStats>, Status> {
        handle_as(request, Needs::Anyone, |caller, request| async move {
            let voter = format!("{}:{}", caller.role.as_str(), caller.subject);
            let audience = self.audience(&caller).await;
            self.0.vote(&caller.tenant_id, &audience, &request.article_id, &voter, request.helpful).await
        })
        .await
    }

    async fn content_gaps(
        &self,
        request: Request<proto::ContentGapsRequest>,
    ) -> Result<Response<proto::ContentGapsResponse>, Status> {
        handle_as(request, Needs::Staff, |caller, request| async move {
            self.0.content_gaps(&caller.tenant_id, request).await
        })
        .await
    }

    async fn import_articles(
        &self,
        request: Request<proto::ImportArticlesRequest>,
    ) -> Result<Response<proto::ImportArticlesResponse>, Status> {
        handle_as(request, Needs::Staff, |caller, request| async move {
            may_import(&caller, &request)?;
            self.0.import_articles(&caller.tenant_id, &caller.subject, request).await
        })
        .await
    }

    async fn reindex(
        &self,
        request: Request<proto::ReindexRequest>,
    ) -> Result<Response<proto::ReindexResponse>, Status> {
        handle_as(request, Needs::Admin, |caller, _| async move { self.0.reindex(&caller.tenant_id).await }).await
    }
}

struct HelpCenter(Arc<Knowledge>);

fn tenant(tenant_id: &str) -> Result<&str, Status> {
    if tenant_id.is_empty() || tenant_id.len() > 64 {
        return Err(ServiceError::invalid_field("tenant_id", "is required, at most 64 characters").into_status());
    }
    Ok(tenant_id)
}

fn respond<T>(result: Result<T, ServiceError>) -> Result<Response<T>, Status> {
    result.map(Response::new).map_err(ServiceError::into_status)
}

#[tonic::async_trait]
impl HelpCenterService for HelpCenter {
    async fn search_articles(
        &self,
        request: Request<proto::PublicSearchRequest>,
    ) -> Result<Response<proto::SearchResponse>, Status> {
        let request = request.into_inner();
        let search = proto::SearchRequest {
            query: request.query,
            locale: request.locale,
            category_id: request.category_id,
            tag: String::new(),
            limit: request.limit,
        };
        respond(self.0.search(tenant(&request.tenant_id)?, Audience::Public, search).await)
    }

    async fn get_article(
        &self,
        request: Request<proto::PublicGetArticleRequest>,
    ) -> Result<Response<proto::Article>, Status> {
        let request = request.into_inner();
        respond(self.0.public_article(tenant(&request.tenant_id)?, &request.id_or_slug, &request.locale).await)
    }

    async fn list_categories(
        &self,
        request: Request<proto::PublicListCategoriesRequest>,
    ) -> Result<Response<proto::ListCategoriesResponse>, Status> {
        respond(self.0.categories(tenant(&request.into_inner().tenant_id)?).await)
    }

    async fn suggest_articles(
        &self,
        request: Request<proto::PublicSuggestRequest>,
    ) -> Result<Response<proto::SuggestResponse>, Status> {
        let request = request.into_inner();
        let suggest = proto::SuggestRequest {
            subject: request.subject,
            body: request.body,
            locale: request.locale,
            limit: request.limit,
            ticket_id: String::new(),
        };
        respond(self.0.suggest(tenant(&request.tenant_id)?, Audience::Public, suggest).await)
    }

    async fn record_click(
        &self,
        request: Request<proto::PublicClickRequest>,
    ) -> Result<Response<proto::RecordClickResponse>, Status> {
        let request = request.into_inner();
        let result = self.0.record_click(tenant(&request.tenant_id)?, &request.search_id, &request.article_id).await;
        respond(result.map(|()| proto::RecordClickResponse {}))
    }

    /// A visitor's vote: the one the gateway names (from the cookie it issued) when the gateway
    /// calls, else the caller's address, so that nobody picks a fresh identity per vote.
    async fn vote(&self, request: Request<proto::PublicVoteRequest>) -> Result<Response<proto::ArticleStats>, Status> {
        let from_a_service = request.extensions().get::<Principal>().is_some_and(Principal::is_service);
        let address = request.remote_addr().map(|address| address.ip().to_string()).unwrap_or_default();
        let request = request.into_inner();
        let voter = if from_a_service {
            if request.visitor_id.is_empty() {
                return Err(ServiceError::invalid_field("visitor_id", "is required").into_status());
            }
            format!("visitor:{}", request.visitor_id)
        } else {
            format!("address:{address}")
        };
        let tenant = tenant(&request.tenant_id)?;
        respond(self.0.vote(tenant, &Audience::Public, &request.article_id, &voter, request.helpful).await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(role: Role) -> Principal {
        Principal { tenant_id: "acme".into(), subject: "someone".into(), role }
    }

    #[test]
    fn only_admins_publish_and_archive() {
        let (agent, admin) = (caller(Role::Agent), caller(Role::Admin));
        assert!(may_set_status(&agent, ArticleStatus::InReview as i32).is_ok());
        assert!(may_set_status(&agent, ArticleStatus::Published as i32).is_err());
        assert!(may_set_status(&agent, ArticleStatus::Archived as i32).is_err());
        assert!(may_set_status(&admin, ArticleStatus::Published as i32).is_ok());
        let import = |publish| proto::ImportArticlesRequest { articles: Vec::new(), publish };
        assert!(may_import(&agent, &import(false)).is_ok());
        assert!(may_import(&agent, &import(true)).is_err());
        assert!(may_import(&admin, &import(true)).is_ok());
    }
}
