//! The identity service over gRPC: the adapter that authenticates, checks the role of every call
//! (admins manage keys), and announces revocations so that every process forgets them at once.

use std::sync::Arc;

use helpdesk_events::EventBus;
use helpdesk_proto::{
    common::v1::{AuthorKind, Role as RoleProto},
    events::v1::{CredentialRevoked, Event, event::Payload},
    identity::v1::{self as proto, identity_service_server::IdentityService},
};
use helpdesk_runtime::{
    ServiceError,
    auth::{Principal, Role, principal},
    time::{micros_to_timestamp, now_micros, optional_timestamp},
};
use tonic::{Request, Response, Status};

use crate::{
    IdentityStore,
    store::ApiKeyRecord,
    tokens::{NewSigningKey, SigningAlgorithm, SigningKey},
};

pub(crate) struct IdentityGrpc {
    store: IdentityStore,
    bus: Arc<dyn EventBus>,
}

impl IdentityGrpc {
    /// Revocations are announced on `bus`, so every process forgets them at once.
    pub(crate) fn new(store: IdentityStore, bus: Arc<dyn EventBus>) -> Self {
        Self { store, bus }
    }

    /// Tells every process that credentials of `tenant` changed. Best effort: should the bus be
    /// away, caches still forget within `auth.credential_cache_seconds`.
    async fn announce_revocation(&self, caller: &Principal, kind: &str, key_id: &str) {
        let event = Event {
            id: uuid::Uuid::now_v7().to_string(),
            tenant_id: caller.tenant_id.clone(),
            aggregate_type: "credential".to_owned(),
            aggregate_id: key_id.to_owned(),
            sequence: 1,
            occurred_at: Some(micros_to_timestamp(now_micros())),
            actor_kind: AuthorKind::Agent as i32,
            actor_id: caller.subject.clone(),
            payload: Some(Payload::CredentialRevoked(CredentialRevoked {
                kind: kind.to_owned(),
                key_id: key_id.to_owned(),
            })),
        };
        if let Err(error) = self.bus.publish(&[event]).await {
            tracing::warn!(%error, key_id, "revocation not announced; caches forget it when their entries expire");
        }
    }

    pub(crate) fn into_server(self) -> proto::identity_service_server::IdentityServiceServer<Self> {
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

fn account_to_proto(account: crate::Account) -> proto::Account {
    proto::Account {
        id: account.id,
        tenant_id: account.tenant_id,
        email: account.email,
        display_name: account.display_name,
        role: Role::parse(&account.role).map_or(RoleProto::Unspecified, Role::to_proto).into(),
        language: account.language,
        time_zone: account.time_zone,
        disabled: account.disabled != 0,
        locked_until: optional_timestamp(account.locked_until.filter(|until| *until > now_micros())),
        created_at: Some(micros_to_timestamp(account.created_at)),
    }
}

fn signing_key_to_proto(key: SigningKey) -> proto::SigningKey {
    proto::SigningKey {
        id: key.id,
        tenant_id: key.tenant_id,
        name: key.name,
        algorithm: match key.algorithm {
            SigningAlgorithm::Hs256 => proto::SigningAlgorithm::Hs256,
            SigningAlgorithm::Rs256 => proto::SigningAlgorithm::Rs256,
        }
        .into(),
        roles: key.roles.iter().map(|role| role.to_proto().into()).collect(),
        issuer: key.issuer,
        audience: key.audience,
        public_key_pem: key.public_key_pem,
        created_at: Some(micros_to_timestamp(key.created_at)),
        retires_at: optional_timestamp(key.retires_at),
    }
}

/// The longest a retiring signing key keeps verifying.
const MAX_OVERLAP_SECONDS: u32 = 30 * 24 * 3600;

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
        self.announce_revocation(&caller, "api_key", &record.id).await;
        Ok(Response::new(to_proto(record)))
    }

    async fn create_signing_key(
        &self,
        request: Request<proto::CreateSigningKeyRequest>,
    ) -> Result<Response<proto::CreateSigningKeyResponse>, Status> {
        let caller = principal(&request)?;
        caller.require_admin()?;
        let request = request.into_inner();
        let algorithm = match proto::SigningAlgorithm::try_from(request.algorithm) {
            Ok(proto::SigningAlgorithm::Hs256) => SigningAlgorithm::Hs256,
            Ok(proto::SigningAlgorithm::Rs256) => SigningAlgorithm::Rs256,
            _ => return Err(ServiceError::invalid_field("algorithm", "must be hs256 or rs256").into()),
        };
        let roles = request
            .roles
            .iter()
            .map(|role| RoleProto::try_from(*role).ok().and_then(Role::from_proto))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| ServiceError::invalid_field("roles", "each must be customer, agent or admin"))?;
        let new = NewSigningKey {
            name: request.name,
            algorithm,
            roles,
            issuer: request.issuer,
            audience: request.audience,
            public_key_pem: request.public_key_pem,
        };
        let (key, secret) = self.store.create_signing_key(&caller.tenant_id, new).await?;
        Ok(Response::new(proto::CreateSigningKeyResponse {
            signing_key: Some(signing_key_to_proto(key)),
            secret: secret.unwrap_or_default(),
        }))
    }

    async fn list_signing_keys(
        &self,
        request: Request<proto::ListSigningKeysRequest>,
    ) -> Result<Response<proto::ListSigningKeysResponse>, Status> {
        let caller = principal(&request)?;
        caller.require_admin()?;
        let keys = self.store.list_signing_keys(&caller.tenant_id).await?;
        Ok(Response::new(proto::ListSigningKeysResponse {
            signing_keys: keys.into_iter().map(signing_key_to_proto).collect(),
        }))
    }

    async fn retire_signing_key(
        &self,
        request: Request<proto::RetireSigningKeyRequest>,
    ) -> Result<Response<proto::SigningKey>, Status> {
        let caller = principal(&request)?;
        caller.require_admin()?;
        let request = request.into_inner();
        if request.overlap_seconds > MAX_OVERLAP_SECONDS {
            return Err(ServiceError::invalid_field("overlap_seconds", "at most 2592000 (30 days)").into());
        }
        let at = now_micros() + i64::from(request.overlap_seconds) * 1_000_000;
        let key = self.store.retire_signing_key(&caller.tenant_id, &request.id, at).await?;
        // Cached tokens were trusted until the key's old retirement: resolve them again.
        self.announce_revocation(&caller, "signing_key", &key.id).await;
        Ok(Response::new(signing_key_to_proto(key)))
    }

    async fn authenticate(
        &self,
        request: Request<proto::AuthenticateRequest>,
    ) -> Result<Response<proto::AuthenticateResponse>, Status> {
        let caller = principal(&request)?;
        if !caller.is_service() {
            return Err(ServiceError::permission_denied("services only").into());
        }
        let resolved = self.store.authenticate(&request.into_inner().credential).await?;
        Ok(Response::new(proto::AuthenticateResponse {
            principal: Some(resolved.principal.to_proto()),
            valid_until: optional_timestamp(resolved.valid_until),
        }))
    }

    async fn upsert_account(
        &self,
        request: Request<proto::UpsertAccountRequest>,
    ) -> Result<Response<proto::Account>, Status> {
        let caller = principal(&request)?;
        caller.require_admin()?;
        let request = request.into_inner();
        let account = request.account.unwrap_or_default();
        let role = RoleProto::try_from(account.role)
            .ok()
            .and_then(Role::from_proto)
            .filter(|role| *role != Role::Customer)
            .ok_or_else(|| ServiceError::invalid_field("account.role", "must be agent or admin"))?;
        let change = crate::AccountChange {
            id: account.id,
            email: account.email,
            display_name: account.display_name,
            role,
            language: account.language,
            time_zone: account.time_zone,
            disabled: account.disabled,
            password: request.password,
        };
        let stored = self.store.upsert_account(&caller.tenant_id, change).await?;
        // A disabled account or a changed role must not keep what its open sessions resolved to.
        self.announce_revocation(&caller, "account", &stored.id).await;
        Ok(Response::new(account_to_proto(stored)))
    }

    async fn list_accounts(
        &self,
        request: Request<proto::ListAccountsRequest>,
    ) -> Result<Response<proto::ListAccountsResponse>, Status> {
        let caller = principal(&request)?;
        caller.require_admin()?;
        let accounts = self.store.list_accounts(&caller.tenant_id).await?;
        Ok(Response::new(proto::ListAccountsResponse {
            accounts: accounts.into_iter().map(account_to_proto).collect(),
        }))
    }

    async fn sign_in(&self, request: Request<proto::SignInRequest>) -> Result<Response<proto::SignInResponse>, Status> {
        let caller = principal(&request)?;
        if !caller.is_service() {
            return Err(ServiceError::permission_denied("services only").into());
        }
        let request = request.into_inner();
        let opened = self.store.sign_in(&request.tenant_id, &request.email, &request.password).await?;
        Ok(Response::new(proto::SignInResponse {
            account: Some(account_to_proto(opened.account)),
            session: opened.credential,
            expires_at: Some(micros_to_timestamp(opened.expires_at)),
        }))
    }

    async fn sign_out(
        &self,
        request: Request<proto::SignOutRequest>,
    ) -> Result<Response<proto::SignOutResponse>, Status> {
        let caller = principal(&request)?;
        if !caller.is_service() {
            return Err(ServiceError::permission_denied("services only").into());
        }
        if let Some(id) = self.store.sign_out(&request.into_inner().session).await? {
            self.announce_revocation(&caller, "session", &id).await;
        }
        Ok(Response::new(proto::SignOutResponse {}))
    }
}
