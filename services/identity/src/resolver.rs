use helpdesk_proto::identity::v1::{AuthenticateRequest, identity_service_client::IdentityServiceClient};
use helpdesk_runtime::{
    ServiceError,
    auth::{BoxFuture, CredentialResolver, PLATFORM_TENANT, Principal, Resolved},
    grpc::ServiceLink,
    time::timestamp_to_micros,
};

use crate::IdentityStore;

/// Resolves credentials from the identity database in the same process.
pub struct LocalResolver(pub IdentityStore);

impl CredentialResolver for LocalResolver {
    fn resolve<'a>(&'a self, credential: &'a str) -> BoxFuture<'a, Result<Resolved, ServiceError>> {
        Box::pin(self.0.authenticate(credential))
    }
}

/// Resolves credentials by asking the identity service, for services deployed on their own. The
/// service presents its own token: only services may ask.
pub struct RemoteResolver {
    link: ServiceLink,
}

impl RemoteResolver {
    pub fn new(link: ServiceLink) -> Self {
        Self { link }
    }
}

impl CredentialResolver for RemoteResolver {
    fn resolve<'a>(&'a self, credential: &'a str) -> BoxFuture<'a, Result<Resolved, ServiceError>> {
        let mut client = IdentityServiceClient::new(self.link.channel.clone());
        Box::pin(async move {
            let request =
                self.link.request(PLATFORM_TENANT, AuthenticateRequest { credential: credential.to_owned() })?;
            match client.authenticate(request).await {
                Ok(response) => {
                    let response = response.into_inner();
                    let principal = response
                        .principal
                        .and_then(Principal::from_proto)
                        .ok_or_else(|| ServiceError::internal(&"identity answered without a principal"))?;
                    Ok(Resolved { principal, valid_until: response.valid_until.as_ref().map(timestamp_to_micros) })
                }
                Err(status) if status.code() == tonic::Code::Unauthenticated => {
                    Err(ServiceError::unauthenticated(status.message().to_owned()))
                }
                Err(status) => {
                    tracing::warn!(code = ?status.code(), message = status.message(), "identity service failed");
                    Err(ServiceError::new(helpdesk_runtime::ErrorKind::Unavailable, "identity service unavailable"))
                }
            }
        })
    }
}
