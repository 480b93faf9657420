//! Surveys and the tenant's settings, as admins set them: a survey is completed from its template
//! and checked ([`model::normalize`]) before it is stored; the settings give reports their time
//! zone and follow-ups each team's lead.

use helpdesk_proto::feedback::v1::{Settings, Survey};
use helpdesk_runtime::{
    ServiceError,
    time::{micros_to_timestamp, now_micros, timestamp_to_micros},
};

use crate::{Feedback, model};

impl Feedback {
    pub async fn upsert_survey(&self, tenant: &str, survey: Option<Survey>) -> Result<Survey, ServiceError> {
        let mut survey = model::normalize(survey.ok_or_else(|| ServiceError::invalid_field("survey", "is required"))?)?;
        let now = now_micros();
        let mut conn = self.store.writer().await?;
        if survey.id.is_empty() {
            survey.id = uuid::Uuid::now_v7().to_string();
            survey.created_at = Some(micros_to_timestamp(now));
        } else {
            let existing = conn.survey(tenant, &survey.id).await?;
            survey.created_at = existing.created_at;
        }
        survey.updated_at = Some(micros_to_timestamp(now));
        let created = survey.created_at.as_ref().map(timestamp_to_micros).unwrap_or(now);
        conn.save_survey(tenant, &survey, created).await?;
        Ok(survey)
    }

    pub async fn list_surveys(&self, tenant: &str) -> Result<Vec<Survey>, ServiceError> {
        self.store.surveys(tenant).await
    }

    pub async fn set_settings(&self, tenant: &str, settings: Option<Settings>) -> Result<Settings, ServiceError> {
        let mut settings = settings.ok_or_else(|| ServiceError::invalid_field("settings", "is required"))?;
        settings.time_zone = settings.time_zone.trim().to_owned();
        if settings.time_zone.is_empty() {
            settings.time_zone = "UTC".to_owned();
        }
        if settings.time_zone.parse::<chrono_tz::Tz>().is_err() {
            return Err(ServiceError::invalid_field("settings.time_zone", "must be an IANA zone such as Asia/Seoul"));
        }
        if settings.team_leads.len() > 1_000
            || settings.team_leads.iter().any(|(team, lead)| team.is_empty() || team.len() > 100 || lead.len() > 100)
        {
            return Err(ServiceError::invalid_field(
                "settings.team_leads",
                "at most 1000 teams, each named and with a lead id of at most 100 characters",
            ));
        }
        self.store.save_settings(tenant, &settings).await?;
        Ok(settings)
    }

    /// The tenant's settings; UTC and no team leads until an admin sets them.
    pub async fn settings(&self, tenant: &str) -> Result<Settings, ServiceError> {
        Ok(self
            .store
            .settings(tenant)
            .await?
            .unwrap_or_else(|| Settings { time_zone: "UTC".to_owned(), ..Settings::default() }))
    }
}
