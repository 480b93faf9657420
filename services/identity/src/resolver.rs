use helpdesk_proto::identity::v1::{AuthenticateRequest, identity_service_client::IdentityServiceClient};
use helpdesk_runtime::{
    ServiceError,
    auth::{ApiKeyResolver, ApiKeySecret, BoxFuture, Principal},
};
use tonic::transport::Channel;

use crate::IdentityStore;

/// Resolves keys from the identity database in the same process.
pub struct LocalResolver(pub IdentityStore);

impl ApiKeyResolver for LocalResolver {
    fn resolve<'a>(&'a self, key: &'a ApiKeySecret) -> BoxFuture<'a, Result<Option<Principal>, ServiceError>> {
        Box::pin(self.0.resolve(key))
    }
}

/// Resolves keys by asking the identity service, for services deployed on their own.
pub struct RemoteResolver {
    client: IdentityServiceClient<Channel>,
}

impl RemoteResolver {
    pub fn new(channel: Channel) -> Self {
        Self { client: IdentityServiceClient::new(channel) }
    }
}

impl ApiKeyResolver for RemoteResolver {
    fn resolve<'a>(&'a self, key: &'a ApiKeySecret) -> BoxFuture<'a, Result<Option<Principal>, ServiceError>> {
        let mut client = self.client.clone();
        Box::pin(async move {
            match client.authenticate(AuthenticateRequest { api_key: key.token() }).await {
                Ok(response) => Ok(Principal::from_proto(response.into_inner())),
                Err(status) if status.code() == tonic::Code::NotFound => Ok(None),
                Err(status) => {
                    tracing::warn!(code = ?status.code(), message = status.message(), "identity service failed");
                    Err(ServiceError::new(helpdesk_runtime::ErrorKind::Unavailable, "identity service unavailable"))
                }
            }
        })
    }
}
