//! Routing end to end: a ticket created through the gateway reaches a matching online agent, its
//! assignment is written back to the ticket, and an SLA breach escalates it by the configured
//! rule — visible through the routing API and in the ticket's history and notes.

use std::time::{Duration, Instant};

use helpdesk_proto::{
    common::v1::{Channel, Priority},
    routing::v1::{
        Agent, AssignmentNotice, BusinessCalendar, ChannelCapacity, EscalationRule, GetWorkItemRequest,
        ListEscalationsRequest, NoticeKind, OfferReplyRequest, Presence, Queue, SetPresenceRequest, SlaPolicy, Trigger,
        UpsertAgentRequest, UpsertCalendarRequest, UpsertEscalationRuleRequest, UpsertQueueRequest,
        UpsertSlaPolicyRequest, WatchAssignmentsRequest, WeeklyShift, WorkItem, WorkState,
        routing_service_client::RoutingServiceClient, sla_service_client::SlaServiceClient,
    },
};
use helpdesk_tests::{TestApp, on_both_backends};
use serde_json::json;

async fn configure(app: &TestApp) {
    let key = app.admin_key.clone();
    let mut routing = RoutingServiceClient::new(app.channel().await);
    let mut sla = SlaServiceClient::new(app.channel().await);
    for queue in [
        Queue { id: "ko".into(), language: "ko".into(), position: 1, ..Queue::default() },
        Queue { id: "en".into(), language: "en".into(), position: 2, ..Queue::default() },
        Queue { id: "l2".into(), tier: "L2".into(), position: 9, ..Queue::default() },
    ] {
        routing.upsert_queue(app.grpc_request(&key, UpsertQueueRequest { queue: Some(queue) })).await.unwrap();
    }
    for (id, language, tier) in [("minji", "ko", "L1"), ("sam", "en", "L1"), ("lead", "ko", "L2")] {
        let agent = Agent {
            id: id.into(),
            languages: vec![language.into()],
            capacities: vec![ChannelCapacity { channel: Channel::Email as i32, capacity: 5 }],
            tier: tier.into(),
            supervisor_id: if tier == "L1" { "lead".into() } else { String::new() },
            ..Agent::default()
        };
        routing.upsert_agent(app.grpc_request(&key, UpsertAgentRequest { agent: Some(agent) })).await.unwrap();
        let online = SetPresenceRequest { agent_id: id.into(), presence: Presence::Online as i32 };
        routing.set_presence(app.grpc_request(&key, online)).await.unwrap();
    }
    let calendar = BusinessCalendar {
        id: "seoul".into(),
        time_zone: "Asia/Seoul".into(),
        shifts: (1..=7).map(|weekday| WeeklyShift { weekday, start: "00:00".into(), end: "24:00".into() }).collect(),
        ..Default::default()
    };
    sla.upsert_calendar(app.grpc_request(&key, UpsertCalendarRequest { calendar: Some(calendar) })).await.unwrap();
    let policy =
        SlaPolicy { id: "std".into(), calendar_id: "seoul".into(), first_response_minutes: 60, ..Default::default() };
    sla.upsert_sla_policy(app.grpc_request(&key, UpsertSlaPolicyRequest { policy: Some(policy) })).await.unwrap();
    let rule = EscalationRule {
        id: "breach".into(),
        trigger: Trigger::SlaBreach as i32,
        raise_priority_to: Priority::Urgent as i32,
        move_to_tier: "L2".into(),
        notify: true,
        enabled: true,
        ..Default::default()
    };
    sla.upsert_escalation_rule(app.grpc_request(&key, UpsertEscalationRuleRequest { rule: Some(rule) })).await.unwrap();
}

async fn work_item(app: &TestApp, ticket: &str, until: impl Fn(&WorkItem) -> bool) -> WorkItem {
    let mut routing = RoutingServiceClient::new(app.channel().await);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let request = app.grpc_request(&app.admin_key, GetWorkItemRequest { ticket_id: ticket.into() });
        if let Ok(item) = routing.get_work_item(request).await.map(tonic::Response::into_inner)
            && until(&item)
        {
            return item;
        }
        assert!(Instant::now() < deadline, "work item of {ticket} never reached the expected state");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Polls the ticket through the gateway until `until` holds.
async fn ticket(app: &TestApp, id: &str, until: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, ticket) = app.get(&format!("/v1/tickets/{id}"), &app.admin_key).await;
        if until(&ticket) {
            return ticket;
        }
        assert!(Instant::now() < deadline, "ticket {id} never reached the expected state: {ticket}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

on_both_backends! {
    async fn a_new_ticket_reaches_a_matching_agent_and_a_breach_escalates_it(app: TestApp) {
        configure(&app).await;
        let key = app.admin_key.clone();
        let customer = app.create_customer(&key, "김민수", "minsu@example.kr").await;
        let created = Instant::now();
        let body = json!({ "subject": "배송이 늦어요", "description": "주문한 지 열흘째입니다", "requester_id": customer, "channel": "email" });
        let id = app.create_ticket(&key, body).await["id"].as_str().unwrap().to_owned();

        let item = work_item(&app, &id, |item| item.state == WorkState::Assigned as i32).await;
        let routed_in = created.elapsed();
        assert_eq!((item.queue_id.as_str(), item.assignee_id.as_str(), item.language.as_str()), ("ko", "minji", "ko"));
        assert!(routed_in < Duration::from_secs(1), "routed in {routed_in:?}");
        ticket(&app, &id, |t| t["assignee_id"] == "minji" && t["group"] == "ko").await;

        // An hour of business time later the first response is overdue.
        let later = chrono::Utc::now().timestamp_millis() + 61 * 60_000;
        assert_eq!(app.router.fire_due(later).await.unwrap().len(), 1);
        assert!(app.router.fire_due(later + 60_000).await.unwrap().is_empty(), "fires once");
        let item = work_item(&app, &id, |item| item.priority == Priority::Urgent as i32).await;
        assert_eq!((item.queue_id.as_str(), item.tier.as_str(), item.assignee_id.as_str()), ("l2", "L2", "lead"));

        let mut sla = SlaServiceClient::new(app.channel().await);
        let escalations = sla
            .list_escalations(app.grpc_request(&key, ListEscalationsRequest { ticket_id: id.clone() }))
            .await
            .unwrap()
            .into_inner()
            .escalations;
        assert_eq!(escalations.len(), 1);
        assert_eq!((escalations[0].trigger, escalations[0].triggered_by.as_str()), (Trigger::SlaBreach as i32, "sla"));

        // Ticketing shows it: the new assignee, queue and priority, changed by routing, and a note.
        ticket(&app, &id, |t| t["assignee_id"] == "lead" && t["priority"] == "urgent" && t["group"] == "l2").await;
        let (_, history) = app.get(&format!("/v1/tickets/{id}/history"), &key).await;
        let by_routing = history["changes"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|change| change["actor_id"] == "service:routing")
            .count();
        assert!(by_routing >= 3, "{history}");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let (_, messages) = app.get(&format!("/v1/tickets/{id}/messages"), &key).await;
            let noted = messages["messages"].as_array().unwrap().iter().any(|message| {
                message["visibility"] == "internal" && message["body_text"].as_str().unwrap_or_default().contains("sla breach")
            });
            if noted {
                break;
            }
            assert!(Instant::now() < deadline, "no escalation note: {messages}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }

        // Solving frees the agent.
        let (status, _) = app.update_ticket(&key, &id, json!({ "status": "solved" })).await;
        assert_eq!(status, 200);
        work_item(&app, &id, |item| item.state == WorkState::Done as i32).await;
    }

    async fn a_threat_in_a_customers_reply_escalates_once_even_when_the_event_comes_again(app: TestApp) {
        configure(&app).await;
        let key = app.admin_key.clone();
        let mut sla = SlaServiceClient::new(app.channel().await);
        let rule = EscalationRule {
            id: "threats".into(),
            trigger: Trigger::ThreatDetected as i32,
            assign_to_supervisor: true,
            notify: true,
            enabled: true,
            ..Default::default()
        };
        sla.upsert_escalation_rule(app.grpc_request(&key, UpsertEscalationRuleRequest { rule: Some(rule) })).await.unwrap();
        let customer = app.create_customer(&key, "박지영", "jiyoung@example.kr").await;
        let body = json!({ "subject": "환불 문의", "description": "결제가 두 번 되었어요", "requester_id": customer, "channel": "email" });
        let id = app.create_ticket(&key, body).await["id"].as_str().unwrap().to_owned();
        work_item(&app, &id, |item| item.assignee_id == "minji").await;

        // The customer replies (as herself) with a legal threat.
        let token = app.customer_token("demo", &customer);
        let (status, message) = app
            .post(&format!("/v1/tickets/{id}/messages"), &token, json!({ "body_text": "오늘까지 환불 안 되면 변호사와 상의하겠습니다." }))
            .await;
        assert_eq!(status, 201, "{message}");
        let item = work_item(&app, &id, |item| item.assignee_id == "lead").await;
        assert_eq!(item.state, WorkState::Assigned as i32);

        // The bus delivers the same event again: nothing more happens.
        let mut events = app.bus.subscribe("replay-probe", None).await.unwrap();
        let (status, _) = app.post(&format!("/v1/tickets/{id}/messages"), &key, json!({ "body_text": "확인 중입니다." })).await;
        assert_eq!(status, 201);
        let replayed = loop {
            let delivery = tokio::time::timeout(Duration::from_secs(10), futures::StreamExt::next(&mut events))
                .await
                .unwrap()
                .unwrap()
                .unwrap();
            if delivery.event.aggregate_id == id && helpdesk_events::event_type(&delivery.event) == "message_added" {
                break delivery.event;
            }
        };
        let mut threat = replayed.clone();
        if let Some(helpdesk_proto::events::v1::event::Payload::MessageAdded(added)) = &mut threat.payload
            && let Some(message_body) = &mut added.message
        {
            message_body.id = message["id"].as_str().unwrap().to_owned();
            message_body.author_kind = helpdesk_proto::common::v1::AuthorKind::Customer as i32;
            message_body.body_text = "오늘까지 환불 안 되면 변호사와 상의하겠습니다.".into();
        }
        threat.id = uuid::Uuid::now_v7().to_string();
        app.bus.publish(&[threat]).await.unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let escalations = sla
            .list_escalations(app.grpc_request(&key, ListEscalationsRequest { ticket_id: id.clone() }))
            .await
            .unwrap()
            .into_inner()
            .escalations;
        assert_eq!(escalations.len(), 1, "{escalations:?}");
        assert_eq!(escalations[0].trigger, Trigger::ThreatDetected as i32);
        assert_eq!(escalations[0].actions, ["assigned to supervisor lead", "notified"]);
    }

    async fn chat_offers_are_pushed_and_go_to_the_next_agent_when_declined_or_left_to_lapse(app: TestApp) {
        let key = app.admin_key.clone();
        let mut routing = RoutingServiceClient::new(app.channel().await);
        let chat = Queue {
            id: "chat".into(),
            channels: vec![Channel::Chat as i32],
            offer_timeout_seconds: 1,
            ..Queue::default()
        };
        routing.upsert_queue(app.grpc_request(&key, UpsertQueueRequest { queue: Some(chat) })).await.unwrap();
        let mut streams = Vec::new();
        for id in ["ana", "ben", "cho"] {
            let agent = Agent {
                id: id.into(),
                languages: vec!["en".into()],
                capacities: vec![ChannelCapacity { channel: Channel::Chat as i32, capacity: 1 }],
                ..Agent::default()
            };
            routing.upsert_agent(app.grpc_request(&key, UpsertAgentRequest { agent: Some(agent) })).await.unwrap();
            let online = SetPresenceRequest { agent_id: id.into(), presence: Presence::Online as i32 };
            routing.set_presence(app.grpc_request(&key, online)).await.unwrap();
            // Each agent signs in with their own token and watches for work.
            let token = app.token("demo", id, "agent", 3600);
            let watch = WatchAssignmentsRequest { agent_id: id.into() };
            streams.push((id, routing.watch_assignments(app.grpc_request(&token, watch)).await.unwrap().into_inner()));
        }
        // An agent may not watch someone else's work.
        let ana = app.token("demo", "ana", "agent", 3600);
        let spying = routing.watch_assignments(app.grpc_request(&ana, WatchAssignmentsRequest { agent_id: "ben".into() })).await;
        assert_eq!(spying.unwrap_err().code(), tonic::Code::PermissionDenied);

        let customer = app.create_customer(&key, "Lee", "lee@example.com").await;
        let body = json!({ "subject": "Chat: where is my order?", "requester_id": customer, "channel": "chat" });
        let id = app.create_ticket(&key, body).await["id"].as_str().unwrap().to_owned();

        /// The next notice on any stream: (agent, kind, ticket).
        async fn next(streams: &mut [(&'static str, tonic::Streaming<AssignmentNotice>)]) -> (String, i32, String) {
            let pending = streams.iter_mut().map(|(agent, stream)| {
                Box::pin(async move {
                    let notice = stream.message().await.unwrap().unwrap();
                    (agent.to_string(), notice.kind, notice.item.unwrap().ticket_id)
                })
            });
            tokio::time::timeout(Duration::from_secs(10), futures::future::select_all(pending)).await.unwrap().0
        }
        let (first, kind, offered) = next(&mut streams).await;
        assert_eq!((kind, offered.as_str()), (NoticeKind::Offered as i32, id.as_str()));

        // The first agent declines: the offer moves on.
        let token = app.token("demo", &first, "agent", 3600);
        let decline = OfferReplyRequest { ticket_id: id.clone(), agent_id: first.clone() };
        routing.decline_offer(app.grpc_request(&token, decline)).await.unwrap();
        let mut offered_to = None;
        for _ in 0..2 {
            let (agent, kind, _) = next(&mut streams).await;
            if kind == NoticeKind::Offered as i32 {
                offered_to = Some(agent);
            }
        }
        let second = offered_to.expect("offered to another agent");
        assert_ne!(second, first);

        // The second lets it lapse (1 s): the third agent gets it and accepts.
        let third = loop {
            let (agent, kind, _) = next(&mut streams).await;
            if kind == NoticeKind::Offered as i32 {
                break agent;
            }
        };
        assert!(third != first && third != second);
        let token = app.token("demo", &third, "agent", 3600);
        let accept = OfferReplyRequest { ticket_id: id.clone(), agent_id: third.clone() };
        let item = routing.accept_offer(app.grpc_request(&token, accept)).await.unwrap().into_inner();
        assert_eq!((item.state, item.assignee_id.as_str()), (WorkState::Assigned as i32, third.as_str()));
        assert_eq!(item.declined_by, [first, second]);
        ticket(&app, &id, |t| t["assignee_id"] == third.as_str()).await;
    }

    async fn customers_and_other_tenants_cannot_use_routing(app: TestApp) {
        configure(&app).await;
        let customer = app.create_customer(&app.admin_key, "Emily", "emily@example.com").await;
        let token = app.customer_token("demo", &customer);
        let mut routing = RoutingServiceClient::new(app.channel().await);
        let denied = routing.get_work_item(app.grpc_request(&token, GetWorkItemRequest { ticket_id: "x".into() })).await;
        assert_eq!(denied.unwrap_err().code(), tonic::Code::PermissionDenied);
        let other = app.new_tenant("other").await;
        let listed = routing
            .list_queues(app.grpc_request(&other, helpdesk_proto::routing::v1::ListQueuesRequest {}))
            .await
            .unwrap()
            .into_inner();
        assert!(listed.queues.is_empty(), "another tenant's queues are invisible");
    }
}
