//! Thin gRPC adapters: authenticate, check the role, call the router, map errors.

use std::{pin::Pin, sync::Arc};

use futures::Stream;
use helpdesk_proto::routing::v1::{
    self as proto,
    routing_service_server::{RoutingService, RoutingServiceServer},
    sla_service_server::{SlaService, SlaServiceServer},
};
use helpdesk_runtime::{
    ServiceError,
    auth::{Principal, principal},
    grpc::{Needs, handle_as},
};
use tonic::{Request, Response, Status};

use crate::router::Router;

pub(crate) fn add_routes(router: &Arc<Router>, routes: &mut tonic::service::RoutesBuilder) {
    routes
        .add_service(RoutingServiceServer::new(Api(router.clone())))
        .add_service(SlaServiceServer::new(Api(router.clone())));
}

struct Api(Arc<Router>);

fn required<T>(field: &str, value: Option<T>) -> Result<T, ServiceError> {
    value.ok_or_else(|| ServiceError::invalid_field(field, "is required"))
}

/// Agents act for themselves; admins for anyone.
fn acts_for(caller: &Principal, agent: &str) -> Result<(), ServiceError> {
    if caller.role != helpdesk_runtime::auth::Role::Admin && caller.subject != agent {
        return Err(ServiceError::permission_denied("agents may act only for themselves"));
    }
    Ok(())
}

type NoticeStream = Pin<Box<dyn Stream<Item = Result<proto::AssignmentNotice, Status>> + Send>>;

#[tonic::async_trait]
impl RoutingService for Api {
    type WatchAssignmentsStream = NoticeStream;

    async fn upsert_agent(
        &self,
        request: Request<proto::UpsertAgentRequest>,
    ) -> Result<Response<proto::Agent>, Status> {
        handle_as(request, Needs::Admin, |caller, request| async move {
            self.0.upsert_agent(&caller.tenant_id, required("agent", request.agent)?).await
        })
        .await
    }

    async fn get_agent(&self, request: Request<proto::GetAgentRequest>) -> Result<Response<proto::Agent>, Status> {
        handle_as(request, Needs::Staff, |caller, request| async move { self.0.agent(&caller.tenant_id, &request.id) })
            .await
    }

    async fn list_agents(
        &self,
        request: Request<proto::ListAgentsRequest>,
    ) -> Result<Response<proto::ListAgentsResponse>, Status> {
        handle_as(request, Needs::Staff, |caller, request| async move {
            Ok(proto::ListAgentsResponse { agents: self.0.agents(&caller.tenant_id, request.presence) })
        })
        .await
    }

    async fn set_presence(
        &self,
        request: Request<proto::SetPresenceRequest>,
    ) -> Result<Response<proto::Agent>, Status> {
        handle_as(request, Needs::Staff, |caller, request| async move {
            acts_for(&caller, &request.agent_id)?;
            self.0.set_presence(&caller.tenant_id, &request.agent_id, request.presence).await
        })
        .await
    }

    async fn watch_assignments(
        &self,
        request: Request<proto::WatchAssignmentsRequest>,
    ) -> Result<Response<Self::WatchAssignmentsStream>, Status> {
        let caller = principal(&request)?;
        caller.require_staff()?;
        let agent = request.into_inner().agent_id;
        acts_for(&caller, &agent)?;
        self.0.agent(&caller.tenant_id, &agent)?;
        let receiver = self.0.watch(&caller.tenant_id, &agent);
        self.0.touch(&caller.tenant_id, &agent).await?;
        let (router, tenant) = (self.0.clone(), caller.tenant_id);
        let stream = futures::stream::unfold(
            (receiver, router, tenant, agent),
            |(mut receiver, router, tenant, agent)| async move {
                loop {
                    match receiver.recv().await {
                        Ok(notice) => {
                            // A watching agent is active.
                            let _ = router.touch(&tenant, &agent).await;
                            return Some((Ok(notice), (receiver, router, tenant, agent)));
                        }
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
                    }
                }
            },
        );
        Ok(Response::new(Box::pin(stream)))
    }

    async fn accept_offer(
        &self,
        request: Request<proto::OfferReplyRequest>,
    ) -> Result<Response<proto::WorkItem>, Status> {
        handle_as(request, Needs::Staff, |caller, request| async move {
            acts_for(&caller, &request.agent_id)?;
            self.0.reply_to_offer(&caller.tenant_id, &request.ticket_id, &request.agent_id, true).await
        })
        .await
    }

    async fn decline_offer(
        &self,
        request: Request<proto::OfferReplyRequest>,
    ) -> Result<Response<proto::WorkItem>, Status> {
        handle_as(request, Needs::Staff, |caller, request| async move {
            acts_for(&caller, &request.agent_id)?;
            self.0.reply_to_offer(&caller.tenant_id, &request.ticket_id, &request.agent_id, false).await
        })
        .await
    }

    async fn upsert_queue(
        &self,
        request: Request<proto::UpsertQueueRequest>,
    ) -> Result<Response<proto::Queue>, Status> {
        handle_as(request, Needs::Admin, |caller, request| async move {
            self.0.upsert_queue(&caller.tenant_id, required("queue", request.queue)?).await
        })
        .await
    }

    async fn list_queues(
        &self,
        request: Request<proto::ListQueuesRequest>,
    ) -> Result<Response<proto::ListQueuesResponse>, Status> {
        handle_as(request, Needs::Staff, |caller, _| async move {
            Ok(proto::ListQueuesResponse { queues: self.0.queues(&caller.tenant_id) })
        })
        .await
    }

    async fn get_queue_stats(
        &self,
        request: Request<proto::GetQueueStatsRequest>,
    ) -> Result<Response<proto::QueueStats>, Status> {
        handle_as(request, Needs::Staff, |caller, request| async move {
            self.0.queue_stats(&caller.tenant_id, &request.queue_id)
        })
        .await
    }

    async fn route_ticket(
        &self,
        request: Request<proto::RouteTicketRequest>,
    ) -> Result<Response<proto::WorkItem>, Status> {
        handle_as(request, Needs::Staff, |caller, request| async move {
            self.0.route_ticket(&caller.tenant_id, request).await
        })
        .await
    }

    async fn get_work_item(
        &self,
        request: Request<proto::GetWorkItemRequest>,
    ) -> Result<Response<proto::WorkItem>, Status> {
        handle_as(request, Needs::Staff, |caller, request| async move {
            self.0.work_item(&caller.tenant_id, &request.ticket_id).await
        })
        .await
    }

    async fn get_ticket_routing(
        &self,
        request: Request<proto::GetTicketRoutingRequest>,
    ) -> Result<Response<proto::TicketRouting>, Status> {
        handle_as(request, Needs::Staff, |caller, request| async move {
            self.0.ticket_routing(&caller.tenant_id, &request.ticket_id).await
        })
        .await
    }

    async fn estimate_wait(
        &self,
        request: Request<proto::EstimateWaitRequest>,
    ) -> Result<Response<proto::WaitEstimate>, Status> {
        handle_as(request, Needs::Staff, |caller, request| async move {
            self.0.estimate_wait(&caller.tenant_id, &request.ticket_id).await
        })
        .await
    }

    async fn assign_ticket(
        &self,
        request: Request<proto::AssignTicketRequest>,
    ) -> Result<Response<proto::WorkItem>, Status> {
        handle_as(request, Needs::Staff, |caller, request| async move {
            self.0.assign(&caller.tenant_id, &request.ticket_id, &request.agent_id).await
        })
        .await
    }

    async fn transfer_ticket(
        &self,
        request: Request<proto::TransferTicketRequest>,
    ) -> Result<Response<proto::WorkItem>, Status> {
        handle_as(request, Needs::Staff, |caller, request| async move {
            self.0.transfer(&caller.tenant_id, &request, &caller.subject).await
        })
        .await
    }

    async fn unassign_ticket(
        &self,
        request: Request<proto::UnassignTicketRequest>,
    ) -> Result<Response<proto::WorkItem>, Status> {
        handle_as(request, Needs::Staff, |caller, request| async move {
            self.0.unassign(&caller.tenant_id, &request.ticket_id).await
        })
        .await
    }

    async fn forecast_staffing(
        &self,
        request: Request<proto::ForecastStaffingRequest>,
    ) -> Result<Response<proto::ForecastStaffingResponse>, Status> {
        // Seconds of arithmetic at most (bounded below): off the threads that serve requests.
        handle_as(request, Needs::Staff, |_, request| async move {
            tokio::task::spawn_blocking(move || forecast(&request))
                .await
                .map_err(|error| ServiceError::internal(&error))?
        })
        .await
    }
}

/// The most agents, summed over the intervals of one forecast, that are searched from: the work
/// is linear in them, and this many take about 10 ms.
const MAX_FORECAST_AGENTS: f64 = 2_000_000.0;

/// Agents needed for each interval of the forecast.
fn forecast(request: &proto::ForecastStaffingRequest) -> Result<proto::ForecastStaffingResponse, ServiceError> {
    if request.intervals.is_empty() || request.intervals.len() > 10_000 {
        return Err(ServiceError::invalid_field("intervals", "give 1 to 10000 intervals"));
    }
    let interval_seconds = if request.interval_seconds == 0 { 1800 } else { request.interval_seconds };
    let max_occupancy = if request.max_occupancy == 0.0 { 0.85 } else { request.max_occupancy };
    let demand = |interval: &proto::ForecastInterval| staffing::Demand {
        contacts: interval.contacts,
        interval_seconds: f64::from(interval_seconds),
        handle_seconds: request.average_handle_seconds,
        service_level: request.service_level,
        answer_within_seconds: request.answer_within_seconds,
        max_occupancy,
    };
    let work: f64 = request.intervals.iter().map(|interval| staffing::least_agents(&demand(interval))).sum();
    if work > MAX_FORECAST_AGENTS {
        return Err(ServiceError::invalid_field(
            "intervals",
            "too large a forecast: at most 2000000 agents summed over its intervals; split it",
        ));
    }
    let mut response = proto::ForecastStaffingResponse::default();
    for (index, interval) in request.intervals.iter().enumerate() {
        let demand = demand(interval);
        let plan = staffing::agents_needed(&demand).map_err(|error| match error {
            staffing::StaffingError::Invalid { field, reason } => {
                let field = match field {
                    "contacts" => format!("intervals[{index}].contacts"),
                    "handle_seconds" => "average_handle_seconds".to_owned(),
                    other => other.to_owned(),
                };
                ServiceError::invalid_field(field, reason)
            }
            staffing::StaffingError::Unreachable => ServiceError::invalid_field(
                format!("intervals[{index}].contacts"),
                "needs more agents than can be planned",
            ),
        })?;
        response.peak_agents = response.peak_agents.max(plan.agents as i32);
        response.intervals.push(proto::IntervalStaffing {
            label: interval.label.clone(),
            agents: plan.agents as i32,
            traffic: plan.traffic,
            service_level: plan.service_level,
            occupancy: plan.occupancy,
            probability_of_waiting: plan.probability_of_waiting,
        });
    }
    Ok(response)
}

#[tonic::async_trait]
impl SlaService for Api {
    async fn upsert_calendar(
        &self,
        request: Request<proto::UpsertCalendarRequest>,
    ) -> Result<Response<proto::BusinessCalendar>, Status> {
        handle_as(request, Needs::Admin, |caller, request| async move {
            self.0.upsert_calendar(&caller.tenant_id, required("calendar", request.calendar)?).await
        })
        .await
    }

    async fn list_calendars(
        &self,
        request: Request<proto::ListCalendarsRequest>,
    ) -> Result<Response<proto::ListCalendarsResponse>, Status> {
        handle_as(request, Needs::Staff, |caller, _| async move {
            Ok(proto::ListCalendarsResponse { calendars: self.0.calendars(&caller.tenant_id) })
        })
        .await
    }

    async fn upsert_sla_policy(
        &self,
        request: Request<proto::UpsertSlaPolicyRequest>,
    ) -> Result<Response<proto::SlaPolicy>, Status> {
        handle_as(request, Needs::Admin, |caller, request| async move {
            self.0.upsert_policy(&caller.tenant_id, required("policy", request.policy)?).await
        })
        .await
    }

    async fn list_sla_policies(
        &self,
        request: Request<proto::ListSlaPoliciesRequest>,
    ) -> Result<Response<proto::ListSlaPoliciesResponse>, Status> {
        handle_as(request, Needs::Staff, |caller, _| async move {
            Ok(proto::ListSlaPoliciesResponse { policies: self.0.policies(&caller.tenant_id) })
        })
        .await
    }

    async fn get_ticket_sla(
        &self,
        request: Request<proto::GetTicketSlaRequest>,
    ) -> Result<Response<proto::TicketSla>, Status> {
        handle_as(request, Needs::Staff, |caller, request| async move {
            self.0.ticket_sla(&caller.tenant_id, &request.ticket_id).await
        })
        .await
    }

    async fn upsert_escalation_rule(
        &self,
        request: Request<proto::UpsertEscalationRuleRequest>,
    ) -> Result<Response<proto::EscalationRule>, Status> {
        handle_as(request, Needs::Admin, |caller, request| async move {
            self.0.upsert_rule(&caller.tenant_id, required("rule", request.rule)?).await
        })
        .await
    }

    async fn list_escalation_rules(
        &self,
        request: Request<proto::ListEscalationRulesRequest>,
    ) -> Result<Response<proto::ListEscalationRulesResponse>, Status> {
        handle_as(request, Needs::Staff, |caller, _| async move {
            Ok(proto::ListEscalationRulesResponse { rules: self.0.rules(&caller.tenant_id) })
        })
        .await
    }

    async fn escalate_ticket(
        &self,
        request: Request<proto::EscalateTicketRequest>,
    ) -> Result<Response<proto::Escalation>, Status> {
        handle_as(request, Needs::Staff, |caller, request| async move {
            self.0.escalate_manually(&caller.tenant_id, &request.ticket_id, &request.reason, &caller.subject).await
        })
        .await
    }

    async fn list_escalations(
        &self,
        request: Request<proto::ListEscalationsRequest>,
    ) -> Result<Response<proto::ListEscalationsResponse>, Status> {
        handle_as(request, Needs::Staff, |caller, request| async move {
            Ok(proto::ListEscalationsResponse {
                escalations: self.0.escalations(&caller.tenant_id, &request.ticket_id).await?,
            })
        })
        .await
    }
}
