use helpdesk_proto::{
    common::v1::{Principal as PrincipalProto, Role as RoleProto},
    identity::v1::{self as proto, identity_service_server::IdentityService},
};
use helpdesk_runtime::{
    ServiceError,
    auth::{ApiKeySecret, Role, principal},
    time::{micros_to_timestamp, optional_timestamp},
};
use tonic::{Request, Response, Status};

use crate::{IdentityStore, store::ApiKeyRecord};

pub struct IdentityGrpc {
    store: IdentityStore,
}

impl IdentityGrpc {
    pub fn new(store: IdentityStore) -> Self {
        Self { store }
    }

    pub fn into_server(self) -> proto::identity_service_server::IdentityServiceServer<Self> {
        proto::identity_service_server::IdentityServiceServer::new(self)
    }
}

fn to_proto(record: ApiKeyRecord) -> proto::ApiKey {
    proto::ApiKey {
        id: record.id,
        tenant_id: record.tenant_id,
        name: record.name,
        role: record.role.to_proto().into(),
        created_at: Some(micros_to_timestamp(record.created_at)),
        revoked_at: optional_timestamp(record.revoked_at),
    }
}

#[tonic::async_trait]
impl IdentityService for IdentityGrpc {
    async fn create_api_key(
        &self,
        request: Request<proto::CreateApiKeyRequest>,
    ) -> Result<Response<proto::CreateApiKeyResponse>, Status> {
        let caller = principal(&request)?;
        caller.require_admin()?;
        let request = request.into_inner();
        let role = RoleProto::try_from(request.role)
            .ok()
            .and_then(Role::from_proto)
            .ok_or_else(|| ServiceError::invalid_field("role", "must be agent or admin"))?;
        let issued = self.store.create_api_key(&caller.tenant_id, &request.name, role).await?;
        Ok(Response::new(proto::CreateApiKeyResponse { api_key: Some(to_proto(issued.record)), secret: issued.token }))
    }

    async fn list_api_keys(
        &self,
        request: Request<proto::ListApiKeysRequest>,
    ) -> Result<Response<proto::ListApiKeysResponse>, Status> {
        let caller = principal(&request)?;
        caller.require_admin()?;
        let keys = self.store.list_api_keys(&caller.tenant_id).await?;
        Ok(Response::new(proto::ListApiKeysResponse { api_keys: keys.into_iter().map(to_proto).collect() }))
    }

    async fn revoke_api_key(
        &self,
        request: Request<proto::RevokeApiKeyRequest>,
    ) -> Result<Response<proto::ApiKey>, Status> {
        let caller = principal(&request)?;
        caller.require_admin()?;
        let record = self.store.revoke_api_key(&caller.tenant_id, &request.into_inner().id).await?;
        Ok(Response::new(to_proto(record)))
    }

    async fn authenticate(
        &self,
        request: Request<proto::AuthenticateRequest>,
    ) -> Result<Response<PrincipalProto>, Status> {
        let key = ApiKeySecret::parse(&request.into_inner().api_key)
            .ok_or_else(|| ServiceError::invalid_field("api_key", "malformed"))?;
        match self.store.resolve(&key).await? {
            Some(principal) => Ok(Response::new(principal.to_proto())),
            None => Err(ServiceError::not_found("api key").into()),
        }
    }
}
