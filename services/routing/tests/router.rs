//! The router on a real SQLite database: capacity under concurrent load, timers that fire after a
//! restart, and escalations that fire once per trigger.

#![allow(clippy::unwrap_used)]

use std::{sync::Arc, time::Duration};

use helpdesk_proto::{
    common::v1::{Channel, Priority},
    routing::v1::{
        Agent, BusinessCalendar, ChannelCapacity, EscalationRule, Presence, Queue, RouteTicketRequest, SlaKind,
        SlaPolicy, Strategy, TargetState, Trigger, WeeklyShift, WorkState,
    },
};
use helpdesk_routing::{Router, RouterSettings, open_router};
use helpdesk_runtime::config::DatabaseConfig;

const TENANT: &str = "demo";

async fn open(dir: &std::path::Path) -> Arc<Router> {
    let config = DatabaseConfig::new(None, 4);
    open_router(&config, dir, RouterSettings::default()).await.unwrap()
}

fn agent(id: &str, language: &str, email: i32) -> Agent {
    Agent {
        id: id.into(),
        languages: vec![language.into()],
        capacities: vec![ChannelCapacity { channel: Channel::Email as i32, capacity: email }],
        supervisor_id: "lead".into(),
        ..Agent::default()
    }
}

fn ticket(id: &str, language: &str) -> RouteTicketRequest {
    RouteTicketRequest {
        ticket_id: id.into(),
        channel: Channel::Email as i32,
        priority: Priority::Normal as i32,
        language: language.into(),
        ..RouteTicketRequest::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_routing_never_exceeds_capacity_or_mixes_languages() {
    let dir = tempfile::tempdir().unwrap();
    let router = open(dir.path()).await;
    router
        .upsert_queue(TENANT, Queue { id: "all".into(), strategy: Strategy::LeastLoaded as i32, ..Queue::default() })
        .await
        .unwrap();
    for n in 0..20 {
        let language = if n % 2 == 0 { "ko" } else { "en" };
        router.upsert_agent(TENANT, agent(&format!("a{n}"), language, 3)).await.unwrap();
        router.set_presence(TENANT, &format!("a{n}"), Presence::Online as i32).await.unwrap();
    }
    let calls: Vec<_> = (0..200)
        .map(|n| {
            let router = router.clone();
            tokio::spawn(async move {
                let language = if n % 4 == 0 { "en" } else { "ko" };
                router.route_ticket(TENANT, ticket(&format!("t{n}"), language)).await.unwrap()
            })
        })
        .collect();
    let mut items = Vec::new();
    for call in calls {
        items.push(call.await.unwrap());
    }
    let agents = router.agents(TENANT, 0);
    for agent in &agents {
        let load: i32 = agent.load.iter().map(|load| load.active).sum();
        assert!(load <= 3, "{} holds {load}", agent.id);
    }
    let assigned: Vec<_> = items.iter().filter(|item| item.state == WorkState::Assigned as i32).collect();
    // 10 Korean agents × 3 take 30 of the 150 Korean tickets; 10 English × 3 take 30 of 50.
    assert_eq!(assigned.len(), 60);
    for item in assigned {
        let agent = agents.iter().find(|agent| agent.id == item.assignee_id).unwrap();
        assert_eq!(agent.languages, std::slice::from_ref(&item.language));
    }
    // After a restart the loads are the same.
    drop(router);
    let router = open(dir.path()).await;
    let total: i32 = router.agents(TENANT, 0).iter().flat_map(|agent| agent.load.iter()).map(|load| load.active).sum();
    assert_eq!(total, 60);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sla_timers_fire_after_a_restart_and_escalate_once() {
    let dir = tempfile::tempdir().unwrap();
    let router = open(dir.path()).await;
    let round_the_clock = (1..=7).map(|weekday| WeeklyShift { weekday, start: "00:00".into(), end: "24:00".into() });
    router
        .upsert_calendar(
            TENANT,
            BusinessCalendar {
                id: "always".into(),
                time_zone: "Asia/Seoul".into(),
                shifts: round_the_clock.collect(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    router
        .upsert_policy(
            TENANT,
            SlaPolicy {
                id: "p".into(),
                calendar_id: "always".into(),
                first_response_minutes: 4,
                ..SlaPolicy::default()
            },
        )
        .await
        .unwrap();
    router.upsert_queue(TENANT, Queue { id: "l1".into(), tier: "L1".into(), ..Queue::default() }).await.unwrap();
    router
        .upsert_queue(TENANT, Queue { id: "l2".into(), tier: "L2".into(), position: 9, ..Queue::default() })
        .await
        .unwrap();
    let rule = EscalationRule {
        id: "breach".into(),
        trigger: Trigger::SlaBreach as i32,
        raise_priority_to: Priority::Urgent as i32,
        move_to_tier: "L2".into(),
        notify: true,
        enabled: true,
        ..EscalationRule::default()
    };
    router.upsert_rule(TENANT, rule).await.unwrap();
    let routed = router.route_ticket(TENANT, ticket("t1", "en")).await.unwrap();
    assert_eq!(routed.queue_id, "l1");
    drop(router);
    tokio::time::sleep(Duration::from_millis(50)).await;

    let router = open(dir.path()).await;
    assert_eq!(router.pending_timers(), 1);
    let in_five_minutes = chrono::Utc::now().timestamp_millis() + 5 * 60_000;
    let lags = router.fire_due(in_five_minutes).await.unwrap();
    assert_eq!(lags.len(), 1, "warning and breach are due on the same timer pass");
    let sla = router.ticket_sla(TENANT, "t1").await.unwrap();
    let first = sla.targets.iter().find(|target| target.kind == SlaKind::FirstResponse as i32).unwrap();
    assert_eq!(first.state, TargetState::Breached as i32);
    let item = router.work_item(TENANT, "t1").await.unwrap();
    assert_eq!((item.priority, item.queue_id.as_str(), item.tier.as_str()), (Priority::Urgent as i32, "l2", "L2"));
    assert!(router.fire_due(in_five_minutes + 60_000).await.unwrap().is_empty());

    drop(router);
    let router = open(dir.path()).await;
    assert!(router.fire_due(in_five_minutes + 120_000).await.unwrap().is_empty(), "nothing fires twice");
    let escalations = router.escalations(TENANT, "t1").await.unwrap();
    assert_eq!(escalations.len(), 1);
    assert_eq!(escalations[0].trigger, Trigger::SlaBreach as i32);
    assert_eq!(escalations[0].actions, ["priority urgent", "queue l2", "notified"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_configuration_is_refused_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let router = open(dir.path()).await;
    let zero = Agent {
        capacities: vec![ChannelCapacity { channel: Channel::Chat as i32, capacity: 0 }],
        ..agent("a", "ko", 1)
    };
    let error = router.upsert_agent(TENANT, zero).await.unwrap_err();
    assert_eq!(error.field_violations[0].field, "agent.capacities[0].capacity");
    let negative = SlaPolicy { id: "p".into(), first_response_minutes: -5, ..SlaPolicy::default() };
    assert_eq!(
        router.upsert_policy(TENANT, negative).await.unwrap_err().field_violations[0].field,
        "policy.first_response_minutes"
    );
    let unknown =
        SlaPolicy { id: "p".into(), calendar_id: "nope".into(), first_response_minutes: 5, ..SlaPolicy::default() };
    assert_eq!(
        router.upsert_policy(TENANT, unknown).await.unwrap_err().field_violations[0].field,
        "policy.calendar_id"
    );
    let bad_zone = BusinessCalendar {
        id: "c".into(),
        time_zone: "Mars/Olympus".into(),
        shifts: vec![WeeklyShift { weekday: 1, start: "09:00".into(), end: "18:00".into() }],
        ..Default::default()
    };
    assert_eq!(
        router.upsert_calendar(TENANT, bad_zone).await.unwrap_err().field_violations[0].field,
        "calendar.time_zone"
    );
    assert!(
        router.agents(TENANT, 0).is_empty()
            && router.policies(TENANT).is_empty()
            && router.calendars(TENANT).is_empty()
    );
    assert!(router.assign(TENANT, "missing", "a").await.is_err());
}
