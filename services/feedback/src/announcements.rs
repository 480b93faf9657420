//! "You said, we did": an admin announces a change made about a theme (a ticket tag), and every
//! customer whose recent answer carries that tag is told once, in their language, on their latest
//! such ticket. The notifications are written with the announcement and delivered after.

use std::collections::HashSet;

use helpdesk_proto::feedback::v1 as proto;
use helpdesk_runtime::{
    ServiceError,
    time::{micros_to_timestamp, now_micros, timestamp_to_micros},
};

use crate::{
    Feedback,
    model::{self, MAX_COMMENT_CHARS},
    store::Notification,
};

impl Feedback {
    pub async fn announce_change(
        &self,
        tenant: &str,
        request: proto::AnnounceChangeRequest,
    ) -> Result<proto::Announcement, ServiceError> {
        let theme = request.theme.trim().to_lowercase();
        if theme.is_empty() || theme.chars().count() > 100 {
            return Err(ServiceError::invalid_field("theme", "must be a tag of 1 to 100 characters"));
        }
        let message = request.message.unwrap_or_default();
        if message.en.trim().is_empty() && message.ko.trim().is_empty() {
            return Err(ServiceError::invalid_field("message", "needs English or Korean text"));
        }
        if message.en.chars().count() > MAX_COMMENT_CHARS || message.ko.chars().count() > MAX_COMMENT_CHARS {
            return Err(ServiceError::invalid_field("message", "is longer than 5000 characters"));
        }
        let now = now_micros();
        let since = request.since.as_ref().map_or(now - 90 * 86_400_000_000, timestamp_to_micros);
        let announcement = proto::Announcement {
            id: uuid::Uuid::now_v7().to_string(),
            theme: theme.clone(),
            message: Some(message.clone()),
            recipients: 0,
            created_at: Some(micros_to_timestamp(now)),
        };
        let mut tx = self.store.begin().await?;
        let responses = tx.tagged_responses(tenant, &theme, since, request.only_unhappy).await?;
        let mut told = HashSet::new();
        for response in responses {
            // Newest answer first: each respondent is told once, on their latest ticket.
            if response.customer_id.is_empty() || !told.insert(response.customer_id.clone()) {
                continue;
            }
            let text = model::localized(Some(&message), &response.locale);
            tx.add_notification(tenant, &announcement.id, &response.customer_id, &response.ticket_id, &text).await?;
        }
        let announcement = proto::Announcement { recipients: told.len() as i32, ..announcement };
        tx.save_announcement(tenant, &announcement, now).await?;
        tx.commit().await?;
        self.delivery_wake.notify_one();
        Ok(announcement)
    }

    /// Notifications not yet delivered, of every tenant.
    pub(crate) async fn pending_notifications(&self, limit: i64) -> Result<Vec<Notification>, ServiceError> {
        self.store.pending_notifications(limit).await
    }

    pub(crate) async fn mark_notification(
        &self,
        notification: &Notification,
        delivered: bool,
    ) -> Result<(), ServiceError> {
        self.store
            .mark_notification(&notification.tenant, &notification.announcement, &notification.customer, delivered)
            .await
    }
}
