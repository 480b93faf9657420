//! Thin gRPC adapters: authenticate, check the role, call the service, map errors. The survey
//! answer service needs no credentials: the signed link in each request is the credential.

use std::sync::Arc;

use helpdesk_proto::{
    common::v1::Channel,
    feedback::v1::{
        self as proto, GroupBy, ReportKind,
        feedback_service_server::{FeedbackService, FeedbackServiceServer},
        insights_service_server::{InsightsService, InsightsServiceServer},
        survey_answer_service_server::{SurveyAnswerService, SurveyAnswerServiceServer},
    },
};
use helpdesk_runtime::{
    ServiceError,
    auth::{Principal, Role},
    grpc::{Needs, handle_as},
    time::micros_to_timestamp,
};
use tonic::{Request, Response, Status};

use crate::{
    Feedback,
    insights::{
        Insights,
        reports::{self, Cell, Scope, Table},
    },
};

pub(crate) fn add_routes(
    feedback: &Arc<Feedback>,
    insights: &Arc<Insights>,
    routes: &mut tonic::service::RoutesBuilder,
) {
    routes
        .add_service(FeedbackServiceServer::new(Api(feedback.clone())))
        .add_service(SurveyAnswerServiceServer::new(Answers(feedback.clone())))
        .add_service(InsightsServiceServer::new(Reports { feedback: feedback.clone(), insights: insights.clone() }));
}

struct Api(Arc<Feedback>);

/// A follow-up is closed by its assignee (the team lead) or an admin.
fn may_close(caller: &Principal, follow_up: &proto::FollowUp) -> Result<(), ServiceError> {
    if caller.role != Role::Admin && follow_up.assignee_id != caller.subject {
        return Err(ServiceError::permission_denied("only the follow-up's assignee or an admin may close it"));
    }
    Ok(())
}

#[tonic::async_trait]
impl FeedbackService for Api {
    async fn upsert_survey(
        &self,
        request: Request<proto::UpsertSurveyRequest>,
    ) -> Result<Response<proto::Survey>, Status> {
        handle_as(request, Needs::Admin, |caller, request| async move {
            self.0.upsert_survey(&caller.tenant_id, request.survey).await
        })
        .await
    }

    async fn list_surveys(
        &self,
        request: Request<proto::ListSurveysRequest>,
    ) -> Result<Response<proto::ListSurveysResponse>, Status> {
        handle_as(request, Needs::Staff, |caller, _| async move {
            Ok(proto::ListSurveysResponse { surveys: self.0.list_surveys(&caller.tenant_id).await? })
        })
        .await
    }

    async fn set_settings(
        &self,
        request: Request<proto::SetSettingsRequest>,
    ) -> Result<Response<proto::Settings>, Status> {
        handle_as(request, Needs::Admin, |caller, request| async move {
            self.0.set_settings(&caller.tenant_id, request.settings).await
        })
        .await
    }

    async fn get_settings(
        &self,
        request: Request<proto::GetSettingsRequest>,
    ) -> Result<Response<proto::Settings>, Status> {
        handle_as(request, Needs::Staff, |caller, _| async move { self.0.settings(&caller.tenant_id).await }).await
    }

    async fn list_invitations(
        &self,
        request: Request<proto::ListInvitationsRequest>,
    ) -> Result<Response<proto::ListInvitationsResponse>, Status> {
        handle_as(request, Needs::Staff, |caller, request| async move {
            Ok(proto::ListInvitationsResponse {
                invitations: self.0.list_invitations(&caller.tenant_id, request).await?,
            })
        })
        .await
    }

    async fn list_responses(
        &self,
        request: Request<proto::ListResponsesRequest>,
    ) -> Result<Response<proto::ListResponsesResponse>, Status> {
        handle_as(request, Needs::Staff, |caller, request| async move {
            Ok(proto::ListResponsesResponse { responses: self.0.list_responses(&caller.tenant_id, request).await? })
        })
        .await
    }

    async fn list_follow_ups(
        &self,
        request: Request<proto::ListFollowUpsRequest>,
    ) -> Result<Response<proto::ListFollowUpsResponse>, Status> {
        handle_as(request, Needs::Staff, |caller, request| async move {
            Ok(proto::ListFollowUpsResponse { follow_ups: self.0.list_follow_ups(&caller.tenant_id, request).await? })
        })
        .await
    }

    async fn close_follow_up(
        &self,
        request: Request<proto::CloseFollowUpRequest>,
    ) -> Result<Response<proto::FollowUp>, Status> {
        handle_as(request, Needs::Staff, |caller, request| async move {
            // Checked on the follow-up as it stands when it is closed, locked.
            self.0
                .close_follow_up(&caller.tenant_id, &caller.subject, |follow_up| may_close(&caller, follow_up), request)
                .await
        })
        .await
    }

    async fn announce_change(
        &self,
        request: Request<proto::AnnounceChangeRequest>,
    ) -> Result<Response<proto::Announcement>, Status> {
        // A message to every respondent of a theme speaks for the company: admins only.
        handle_as(request, Needs::Admin, |caller, request| async move {
            self.0.announce_change(&caller.tenant_id, request).await
        })
        .await
    }
}

struct Answers(Arc<Feedback>);

#[tonic::async_trait]
impl SurveyAnswerService for Answers {
    async fn get_survey_form(
        &self,
        request: Request<proto::GetSurveyFormRequest>,
    ) -> Result<Response<proto::SurveyForm>, Status> {
        Ok(Response::new(self.0.survey_form(&request.into_inner().token).await?))
    }

    async fn submit_answer(
        &self,
        request: Request<proto::SubmitAnswerRequest>,
    ) -> Result<Response<proto::SurveyResponse>, Status> {
        Ok(Response::new(self.0.submit_answer(request.into_inner()).await?))
    }
}

struct Reports {
    feedback: Arc<Feedback>,
    insights: Arc<Insights>,
}

impl Reports {
    async fn run(&self, tenant: &str, request: proto::ReportRequest) -> Result<(Scope, Table), ServiceError> {
        let zone_name = if request.time_zone.is_empty() {
            self.feedback.settings(tenant).await?.time_zone
        } else {
            request.time_zone.clone()
        };
        let zone = zone_name
            .parse::<chrono_tz::Tz>()
            .map_err(|_| ServiceError::invalid_field("time_zone", "must be an IANA zone such as Asia/Seoul"))?;
        let now = chrono::Utc::now().timestamp();
        let to = request.to.as_ref().map_or(now, |to| to.seconds);
        let from = request.from.as_ref().map_or(to.saturating_sub(30 * 86_400), |from| from.seconds);
        let scope = Scope {
            kind: ReportKind::try_from(request.kind)
                .map_err(|_| ServiceError::invalid_field("kind", "is not a report"))?,
            group_by: GroupBy::try_from(request.group_by)
                .map_err(|_| ServiceError::invalid_field("group_by", "is not a grouping"))?,
            from,
            to,
            zone,
            channel: Channel::try_from(request.channel).map_or(-1, |channel| channel as i32),
            agent: request.agent_id,
            team: request.team,
            tag: request.tag,
        }
        .check()?;
        self.insights.report(tenant, scope).await
    }
}

fn value(cell: Cell) -> pbjson_types::Value {
    use pbjson_types::value::Kind;
    pbjson_types::Value {
        kind: Some(match cell {
            Cell::Text(text) => Kind::StringValue(text),
            Cell::Number(number) => Kind::NumberValue(number),
            Cell::Null => Kind::NullValue(0),
        }),
    }
}

fn report_name(kind: ReportKind) -> String {
    kind.as_str_name().trim_start_matches("REPORT_KIND_").to_lowercase().replace('_', "-")
}

#[tonic::async_trait]
impl InsightsService for Reports {
    async fn get_report(&self, request: Request<proto::ReportRequest>) -> Result<Response<proto::Report>, Status> {
        handle_as(request, Needs::Staff, |caller, request| async move {
            let (scope, table) = self.run(&caller.tenant_id, request).await?;
            Ok(proto::Report {
                kind: scope.kind as i32,
                time_zone: scope.zone.name().to_owned(),
                columns: table.columns.iter().map(|column| (*column).to_owned()).collect(),
                rows: table
                    .rows
                    .into_iter()
                    .map(|row| proto::ReportRow { cells: row.into_iter().map(value).collect() })
                    .collect(),
                from: Some(micros_to_timestamp(scope.from * 1_000_000)),
                to: Some(micros_to_timestamp(scope.to * 1_000_000)),
            })
        })
        .await
    }

    async fn export_report(
        &self,
        request: Request<proto::ReportRequest>,
    ) -> Result<Response<proto::CsvExport>, Status> {
        handle_as(request, Needs::Staff, |caller, request| async move {
            let (scope, table) = self.run(&caller.tenant_id, request).await?;
            let day = |at: i64| {
                chrono::DateTime::from_timestamp(at, 0).map_or_else(String::new, |at| at.format("%Y%m%d").to_string())
            };
            Ok(proto::CsvExport {
                filename: format!("{}-{}-{}.csv", report_name(scope.kind), day(scope.from), day(scope.to)),
                content: reports::csv(&table),
            })
        })
        .await
    }

    async fn rebuild_projections(
        &self,
        request: Request<proto::RebuildProjectionsRequest>,
    ) -> Result<Response<proto::RebuildProjectionsResponse>, Status> {
        handle_as(request, Needs::Admin, |caller, _| async move {
            let rebuilt = self.insights.rebuild(&caller.tenant_id).await?;
            Ok(proto::RebuildProjectionsResponse {
                events: rebuilt.events,
                tickets: rebuilt.tickets,
                seconds: rebuilt.seconds,
            })
        })
        .await
    }
}
