//! Queues: their definitions (overflow chains checked under the lock) and live statistics.

use helpdesk_proto::routing::v1::{self as proto, Queue};
use helpdesk_runtime::error::ServiceError;
use prost::Message;

use crate::{
    router::Router,
    store,
    validate::{self, unknown},
};

impl Router {
    pub async fn upsert_queue(&self, tenant: &str, mut queue: Queue) -> Result<Queue, ServiceError> {
        // Validated under the lock, so two concurrent changes cannot close an overflow loop.
        self.apply(tenant, |t, now, changes| {
            validate::queue(&mut queue, t)?;
            changes.settings.push((store::QUEUE, queue.id.clone(), queue.encode_to_vec()));
            let saved = queue.clone();
            t.upsert_queue(queue, now, changes);
            Ok(saved)
        })
        .await
    }

    pub fn queues(&self, tenant: &str) -> Vec<Queue> {
        let mut queues = self.read(tenant, |t| t.queues.values().map(|queue| queue.spec.clone()).collect::<Vec<_>>());
        queues.sort_by(|a, b| (a.position, &a.id).cmp(&(b.position, &b.id)));
        queues
    }

    pub fn queue_stats(&self, tenant: &str, queue: &str) -> Result<proto::QueueStats, ServiceError> {
        self.read(tenant, |t| t.queue_stats(queue)).ok_or_else(|| unknown("queue_id", "queue"))
    }
}
