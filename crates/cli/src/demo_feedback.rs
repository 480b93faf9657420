//! The demo's feedback settings: reports in Seoul time, the billing team's lead, and a CSAT
//! survey sent as soon as a ticket is solved.

use helpdesk_proto::feedback::v1::{self as feedback, feedback_service_client::FeedbackServiceClient};
use helpdesk_runtime::grpc::outgoing;
use tonic::transport::Channel;

pub(crate) async fn seed(channel: Channel, auth: Option<&str>) -> Result<(), tonic::Status> {
    let mut client = FeedbackServiceClient::new(channel);
    let existing = client.list_surveys(outgoing(feedback::ListSurveysRequest {}, auth)).await?.into_inner();
    if !existing.surveys.is_empty() {
        return Ok(());
    }
    let settings = feedback::Settings {
        time_zone: "Asia/Seoul".into(),
        team_leads: [
            ("billing-l2".to_owned(), "lead-hana".to_owned()),
            ("ko-support".to_owned(), "lead-hana".to_owned()),
        ]
        .into(),
    };
    client.set_settings(outgoing(feedback::SetSettingsRequest { settings: Some(settings) }, auth)).await?;
    let survey = feedback::Survey {
        name: "CSAT after solve / 해결 후 만족도".into(),
        kind: feedback::SurveyKind::Csat as i32,
        trigger: Some(feedback::TriggerRule {
            on_solved: true,
            sampling_percent: 100,
            throttle_days: 7,
            ..Default::default()
        }),
        active: true,
        ..Default::default()
    };
    client.upsert_survey(outgoing(feedback::UpsertSurveyRequest { survey: Some(survey) }, auth)).await?;
    Ok(())
}
