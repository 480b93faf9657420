//! A signed-in customer's segments, which restricted articles are meant for: their tier, `vip`
//! when they are one, and their organization, as ticketing knows them. Looked up over gRPC with
//! knowledge's own service token and kept for a minute, so a search costs no extra call.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use helpdesk_proto::ticketing::v1::{Customer, GetCustomerRequest, customer_service_client::CustomerServiceClient};
use helpdesk_runtime::grpc::ServiceLink;

const FRESH_FOR: Duration = Duration::from_secs(60);
const CACHE_LIMIT: usize = 100_000;

/// Segments by (tenant, customer), with when they were looked up.
type Cache = HashMap<(String, String), (Vec<String>, Instant)>;

#[derive(Default)]
pub(crate) struct Segments {
    /// Ticketing, for its customers.
    link: Option<ServiceLink>,
    cache: Mutex<Cache>,
}

impl Segments {
    pub(crate) fn new(link: Option<ServiceLink>) -> Self {
        Self { link, cache: Mutex::default() }
    }

    /// The segments of `customer`; none when ticketing cannot say (restricted articles then stay
    /// hidden: a lookup failure never shows more).
    pub(crate) async fn of(&self, tenant: &str, customer: &str) -> Vec<String> {
        let Some(link) = &self.link else { return Vec::new() };
        let key = (tenant.to_owned(), customer.to_owned());
        if let Some((segments, at)) = self.cache().get(&key)
            && at.elapsed() < FRESH_FOR
        {
            return segments.clone();
        }
        let Ok(request) = link.request(tenant, GetCustomerRequest { id: customer.to_owned() }) else {
            return Vec::new();
        };
        let segments = match CustomerServiceClient::new(link.channel.clone()).get_customer(request).await {
            Ok(found) => segments_of(&found.into_inner()),
            Err(status) if status.code() == tonic::Code::NotFound => Vec::new(),
            Err(status) => {
                tracing::warn!(error = %status.message(), "customer segments unavailable; restricted articles hidden");
                return Vec::new();
            }
        };
        let mut cache = self.cache();
        if cache.len() >= CACHE_LIMIT {
            cache.clear();
        }
        cache.insert(key, (segments.clone(), Instant::now()));
        segments
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, Cache> {
        self.cache.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Segments are compared as articles store them: trimmed and lowercased.
fn segments_of(customer: &Customer) -> Vec<String> {
    let mut segments: Vec<String> =
        [customer.tier.as_str(), if customer.vip { "vip" } else { "" }, customer.organization.as_str()]
            .iter()
            .map(|segment| segment.trim().to_lowercase())
            .filter(|segment| !segment.is_empty())
            .collect();
    segments.dedup();
    segments
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_customer_belongs_to_their_tier_vip_and_organization() {
        let customer =
            Customer { tier: " Gold ".into(), vip: true, organization: "ACME Corp".into(), ..Customer::default() };
        assert_eq!(segments_of(&customer), ["gold", "vip", "acme corp"]);
        assert!(segments_of(&Customer::default()).is_empty());
    }
}
