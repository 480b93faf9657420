//! Demo data: a small Korean and English support desk, created through the public gRPC API with
//! idempotency keys, so starting with `--demo` twice does not duplicate anything.

use std::collections::HashMap;

use helpdesk_proto::{
    common::v1::{Channel, Priority},
    ticketing::v1::{
        self as proto, CustomFieldType, FlagKind, Visibility, custom_field_service_client::CustomFieldServiceClient,
        customer_service_client::CustomerServiceClient, saved_reply_service_client::SavedReplyServiceClient,
        ticket_service_client::TicketServiceClient,
    },
};
use helpdesk_runtime::grpc::outgoing;
use tonic::transport::Channel as GrpcChannel;

struct DemoCustomer {
    key: &'static str,
    name: &'static str,
    email: &'static str,
    language: &'static str,
    time_zone: &'static str,
    tier: &'static str,
    vip: bool,
}

const CUSTOMERS: &[DemoCustomer] = &[
    DemoCustomer {
        key: "minsu",
        name: "김민수",
        email: "minsu.kim@example.kr",
        language: "ko",
        time_zone: "Asia/Seoul",
        tier: "gold",
        vip: true,
    },
    DemoCustomer {
        key: "emily",
        name: "Emily Clark",
        email: "emily.clark@example.com",
        language: "en",
        time_zone: "America/New_York",
        tier: "standard",
        vip: false,
    },
    DemoCustomer {
        key: "jiyoung",
        name: "박지영",
        email: "jiyoung.park@example.kr",
        language: "ko",
        time_zone: "Asia/Seoul",
        tier: "standard",
        vip: false,
    },
];

struct DemoTicket {
    key: &'static str,
    customer: &'static str,
    subject: &'static str,
    description: &'static str,
    priority: Priority,
    channel: Channel,
    tags: &'static [&'static str],
    order_id: Option<&'static str>,
}

const TICKETS: &[DemoTicket] = &[
    DemoTicket {
        key: "refund",
        customer: "minsu",
        subject: "환불 요청: 주문 A-1024 배송 지연",
        description: "주문한 노트북이 일주일째 배송되지 않았습니다. 환불을 요청합니다.",
        priority: Priority::High,
        channel: Channel::Email,
        tags: &["refund", "shipping"],
        order_id: Some("A-1024"),
    },
    DemoTicket {
        key: "password",
        customer: "emily",
        subject: "Cannot reset my password",
        description: "The reset link in the email says it has expired, even right after I request it.",
        priority: Priority::Normal,
        channel: Channel::Web,
        tags: &["account"],
        order_id: None,
    },
    DemoTicket {
        key: "vat",
        customer: "emily",
        subject: "Invoice shows the wrong VAT amount",
        description: "My October invoice charges 20% VAT but I am a registered business in the EU.",
        priority: Priority::Normal,
        channel: Channel::Email,
        tags: &["billing"],
        order_id: Some("INV-2026-10-331"),
    },
    DemoTicket {
        key: "double-charge",
        customer: "jiyoung",
        subject: "결제 오류로 두 번 청구되었습니다",
        description: "카드 결제가 두 번 승인되었습니다. 오늘 안에 해결되지 않으면 소비자원에 신고하겠습니다.",
        priority: Priority::Urgent,
        channel: Channel::Chat,
        tags: &["billing", "payment"],
        order_id: Some("B-2048"),
    },
];

/// The demo's support address: mail to it over the built-in SMTP listener becomes tickets.
pub const DEMO_MAILBOX_ADDRESS: &str = "support@demo.helpdesk.test";

/// A mailbox for the demo, replaced on every start (the same settings each time).
async fn seed_mailbox(channel: GrpcChannel, auth: Option<&str>) -> Result<(), tonic::Status> {
    use helpdesk_proto::email::v1::{Mailbox, UpsertMailboxRequest, email_service_client::EmailServiceClient};
    let mailbox = Mailbox {
        id: "support".into(),
        address: DEMO_MAILBOX_ADDRESS.into(),
        display_name: "Demo 고객센터".into(),
        default_language: "ko".into(),
        group: "support".into(),
        enabled: true,
        acknowledge: true,
        ..Mailbox::default()
    };
    let request = UpsertMailboxRequest { mailbox: Some(mailbox), secrets: None };
    EmailServiceClient::new(channel).upsert_mailbox(outgoing(request, auth)).await?;
    Ok(())
}

/// The demo agent's sign-in to the workspace (a routing agent of the demo, who answers in Korean).
pub const DEMO_AGENT_EMAIL: &str = "jisoo@demo.helpdesk.test";
pub const DEMO_AGENT_PASSWORD: &str = "demo-agent-password";

/// Workspace accounts for the demo's agents and team lead, each with the demo password.
async fn seed_accounts(channel: GrpcChannel, auth: Option<&str>) -> Result<(), tonic::Status> {
    use helpdesk_proto::{
        common::v1::Role,
        identity::v1::{Account, UpsertAccountRequest, identity_service_client::IdentityServiceClient},
    };
    let mut identity = IdentityServiceClient::new(channel);
    for (id, email, name, role, language, time_zone) in [
        ("agent-jisoo", DEMO_AGENT_EMAIL, "정지수", Role::Agent, "ko", "Asia/Seoul"),
        ("agent-tom", "tom@demo.helpdesk.test", "Tom Baker", Role::Agent, "en", "Asia/Seoul"),
        ("lead-hana", "hana@demo.helpdesk.test", "이하나", Role::Admin, "ko", "Asia/Seoul"),
    ] {
        let account = Account {
            id: id.into(),
            email: email.into(),
            display_name: name.into(),
            role: role as i32,
            language: language.into(),
            time_zone: time_zone.into(),
            ..Default::default()
        };
        let request = UpsertAccountRequest { account: Some(account), password: DEMO_AGENT_PASSWORD.into() };
        identity.upsert_account(outgoing(request, auth)).await?;
    }
    Ok(())
}

/// Creates the demo data in the tenant of `admin_key`.
pub async fn seed(channel: GrpcChannel, admin_key: &str) -> Result<(), tonic::Status> {
    let auth = format!("Bearer {admin_key}");
    let auth = Some(auth.as_str());
    seed_routing(channel.clone(), auth).await?;
    seed_accounts(channel.clone(), auth).await?;
    crate::demo_knowledge::seed(channel.clone(), auth).await?;
    crate::demo_feedback::seed(channel.clone(), auth).await?;
    seed_mailbox(channel.clone(), auth).await?;
    let mut customers = CustomerServiceClient::new(channel.clone());
    // Serving the same data directory again: the tenant has its customers and tickets already.
    let existing = customers
        .list_customers(outgoing(proto::ListCustomersRequest { page_size: 1, ..Default::default() }, auth))
        .await?
        .into_inner();
    if !existing.customers.is_empty() {
        return Ok(());
    }
    let mut tickets = TicketServiceClient::new(channel.clone());
    let mut replies = SavedReplyServiceClient::new(channel.clone());
    let mut fields = CustomFieldServiceClient::new(channel);

    fields
        .define_custom_field(outgoing(
            proto::DefineCustomFieldRequest {
                field: Some(proto::CustomFieldDefinition {
                    key: "product".into(),
                    label: "Product / 제품".into(),
                    r#type: CustomFieldType::Dropdown as i32,
                    options: vec!["laptop".into(), "phone".into(), "subscription".into()],
                    required: false,
                }),
            },
            auth,
        ))
        .await?;

    let mut ids = HashMap::new();
    for customer in CUSTOMERS {
        let created = customers
            .create_customer(outgoing(
                proto::CreateCustomerRequest {
                    idempotency_key: format!("demo-customer-{}", customer.key),
                    name: customer.name.into(),
                    emails: vec![customer.email.into()],
                    language: customer.language.into(),
                    time_zone: customer.time_zone.into(),
                    tier: customer.tier.into(),
                    vip: customer.vip,
                    external_ids: HashMap::from([("crm".to_owned(), format!("CRM-{}", customer.key.to_uppercase()))]),
                    ..Default::default()
                },
                auth,
            ))
            .await?
            .into_inner();
        ids.insert(customer.key, created);
    }
    if let Some(jiyoung) = ids.get("jiyoung")
        && jiyoung.flag.is_none()
    {
        customers
            .set_customer_flag(outgoing(
                proto::SetCustomerFlagRequest {
                    customer_id: jiyoung.id.clone(),
                    kind: FlagKind::LegalThreat as i32,
                    reason: "Threatened a complaint to the consumer agency (소비자원 신고 언급)".into(),
                },
                auth,
            ))
            .await?;
    }

    for ticket in TICKETS {
        let requester = ids.get(ticket.customer).map(|c| c.id.clone()).unwrap_or_default();
        let mut external_refs = HashMap::new();
        if let Some(order_id) = ticket.order_id {
            external_refs.insert("order_id".to_owned(), order_id.to_owned());
        }
        let created = tickets
            .create_ticket(outgoing(
                proto::CreateTicketRequest {
                    idempotency_key: format!("demo-ticket-{}", ticket.key),
                    subject: ticket.subject.into(),
                    description: ticket.description.into(),
                    requester_id: requester,
                    priority: ticket.priority as i32,
                    channel: ticket.channel as i32,
                    tags: ticket.tags.iter().map(|tag| (*tag).to_owned()).collect(),
                    external_refs,
                    ..Default::default()
                },
                auth,
            ))
            .await?
            .into_inner();
        if ticket.key == "refund" {
            for (key, visibility, text) in [
                ("demo-message-refund-note", Visibility::Internal, "VIP 고객입니다. 물류팀에 배송 상태 확인 요청함."),
                (
                    "demo-message-refund-reply",
                    Visibility::Public,
                    "김민수님, 불편을 드려 죄송합니다. 배송 상태를 확인하고 오늘 중으로 안내드리겠습니다.",
                ),
            ] {
                tickets
                    .add_message(outgoing(
                        proto::AddMessageRequest {
                            ticket_id: created.id.clone(),
                            idempotency_key: key.into(),
                            visibility: visibility as i32,
                            body_text: text.into(),
                            ..Default::default()
                        },
                        auth,
                    ))
                    .await?;
            }
        }
    }

    let existing = replies.list_saved_replies(outgoing(proto::ListSavedRepliesRequest {}, auth)).await?.into_inner();
    for (title, body) in [
        (
            "환불 안내",
            "{{customer.name}}님, 주문 {{ticket.external_refs.order_id}}의 환불이 접수되었습니다. 3~5 영업일 안에 처리됩니다.",
        ),
        (
            "Password reset",
            "Hi {{customer.first_name}}, I have sent you a fresh reset link; it stays valid for 24 hours.",
        ),
    ] {
        if !existing.saved_replies.iter().any(|reply| reply.title == title) {
            replies
                .create_saved_reply(outgoing(
                    proto::CreateSavedReplyRequest { title: title.into(), body: body.into(), personal: false },
                    auth,
                ))
                .await?;
        }
    }
    Ok(())
}

/// Korean public holidays of 2026, with substitute days. Seollal and Chuseok follow the lunar
/// calendar, so each year's dates are listed rather than computed.
const KOREAN_HOLIDAYS_2026: &[(&str, &str)] = &[
    ("2026-01-01", "신정"),
    ("2026-02-16", "설날 연휴"),
    ("2026-02-17", "설날"),
    ("2026-02-18", "설날 연휴"),
    ("2026-03-02", "삼일절 대체공휴일"),
    ("2026-05-05", "어린이날"),
    ("2026-05-25", "부처님오신날 대체공휴일"),
    ("2026-08-17", "광복절 대체공휴일"),
    ("2026-09-24", "추석 연휴"),
    ("2026-09-25", "추석"),
    ("2026-09-26", "추석 연휴"),
    ("2026-10-05", "개천절 대체공휴일"),
    ("2026-10-09", "한글날"),
    ("2026-12-25", "성탄절"),
];

/// Queues, agents, business hours, SLA policies and escalation rules, before any ticket arrives.
async fn seed_routing(channel: GrpcChannel, auth: Option<&str>) -> Result<(), tonic::Status> {
    use helpdesk_proto::routing::v1::{
        self as routing, routing_service_client::RoutingServiceClient, sla_service_client::SlaServiceClient,
    };
    let mut agents = RoutingServiceClient::new(channel.clone());
    let mut sla = SlaServiceClient::new(channel);

    let office_hours = (1..=5).flat_map(|weekday| {
        [("09:00", "12:00"), ("13:00", "18:00")].map(|(start, end)| routing::WeeklyShift {
            weekday,
            start: start.into(),
            end: end.into(),
        })
    });
    let round_the_clock =
        (1..=7).map(|weekday| routing::WeeklyShift { weekday, start: "00:00".into(), end: "24:00".into() });
    for calendar in [
        routing::BusinessCalendar {
            id: "seoul-office".into(),
            name: "서울 고객센터 (평일 09–18, 점심 12–13)".into(),
            time_zone: "Asia/Seoul".into(),
            shifts: office_hours.collect(),
            holidays: KOREAN_HOLIDAYS_2026
                .iter()
                .map(|(date, name)| routing::Holiday { date: (*date).into(), name: (*name).into() })
                .collect(),
        },
        routing::BusinessCalendar {
            id: "always".into(),
            name: "Round the clock".into(),
            time_zone: "UTC".into(),
            shifts: round_the_clock.collect(),
            holidays: Vec::new(),
        },
    ] {
        sla.upsert_calendar(outgoing(routing::UpsertCalendarRequest { calendar: Some(calendar) }, auth)).await?;
    }

    let queue = |id: &str, position: i32, language: &str, strategy: routing::Strategy| routing::Queue {
        id: id.into(),
        name: id.into(),
        position,
        language: language.into(),
        strategy: strategy as i32,
        ..Default::default()
    };
    let billing = routing::Queue {
        match_tags: vec!["legal".into()],
        required_skills: vec![routing::Skill { name: "billing".into(), level: 7 }],
        tier: "L2".into(),
        ..queue("billing-l2", 9, "", routing::Strategy::BestSkill)
    };
    let chat = routing::Queue {
        channels: vec![Channel::Chat as i32],
        offer_timeout_seconds: 30,
        overflow_queue_id: "billing-l2".into(),
        overflow_after_seconds: 300,
        ..queue("live-chat", 0, "", routing::Strategy::LeastLoaded)
    };
    // The overflow target first, so the chat queue's overflow refers to a known queue.
    for queue in [
        billing,
        chat,
        queue("ko-support", 1, "ko", routing::Strategy::LeastLoaded),
        queue("en-support", 2, "en", routing::Strategy::RoundRobin),
    ] {
        agents.upsert_queue(outgoing(routing::UpsertQueueRequest { queue: Some(queue) }, auth)).await?;
    }

    let capacity = |channel: Channel, capacity: i32| routing::ChannelCapacity { channel: channel as i32, capacity };
    let skill = |name: &str, level: i32| routing::Skill { name: name.into(), level };
    for agent in [
        routing::Agent {
            id: "lead-hana".into(),
            name: "이하나 (팀장)".into(),
            languages: vec!["ko".into(), "en".into()],
            capacities: vec![capacity(Channel::Email, 5), capacity(Channel::Chat, 2)],
            skills: vec![skill("billing", 9), skill("shipping", 6)],
            team: "seoul".into(),
            tier: "L2".into(),
            ..Default::default()
        },
        routing::Agent {
            id: "agent-jisoo".into(),
            name: "정지수".into(),
            languages: vec!["ko".into(), "en".into()],
            capacities: vec![capacity(Channel::Email, 10), capacity(Channel::Chat, 3), capacity(Channel::Web, 10)],
            skills: vec![skill("billing", 5), skill("shipping", 7)],
            team: "seoul".into(),
            tier: "L1".into(),
            supervisor_id: "lead-hana".into(),
            ..Default::default()
        },
        routing::Agent {
            id: "agent-tom".into(),
            name: "Tom Baker".into(),
            languages: vec!["en".into()],
            capacities: vec![capacity(Channel::Email, 10), capacity(Channel::Chat, 2), capacity(Channel::Web, 10)],
            skills: vec![skill("billing", 4)],
            team: "seoul".into(),
            tier: "L1".into(),
            supervisor_id: "lead-hana".into(),
            ..Default::default()
        },
    ] {
        let id = agent.id.clone();
        agents.upsert_agent(outgoing(routing::UpsertAgentRequest { agent: Some(agent) }, auth)).await?;
        let presence = routing::SetPresenceRequest { agent_id: id, presence: routing::Presence::Online as i32 };
        agents.set_presence(outgoing(presence, auth)).await?;
    }

    for policy in [
        routing::SlaPolicy {
            id: "urgent".into(),
            name: "Urgent and high: round the clock".into(),
            position: 1,
            priorities: vec![Priority::Urgent as i32, Priority::High as i32],
            calendar_id: "always".into(),
            first_response_minutes: 30,
            next_response_minutes: 60,
            resolution_minutes: 480,
            warning_percent: 75,
            ..Default::default()
        },
        routing::SlaPolicy {
            id: "standard".into(),
            name: "Standard: Seoul business hours".into(),
            position: 2,
            calendar_id: "seoul-office".into(),
            first_response_minutes: 240,
            next_response_minutes: 480,
            resolution_minutes: 2400,
            warning_percent: 75,
            ..Default::default()
        },
    ] {
        sla.upsert_sla_policy(outgoing(routing::UpsertSlaPolicyRequest { policy: Some(policy) }, auth)).await?;
    }

    let rule = |id: &str, trigger: routing::Trigger| routing::EscalationRule {
        id: id.into(),
        name: id.into(),
        trigger: trigger as i32,
        notify: true,
        enabled: true,
        ..Default::default()
    };
    for rule in [
        routing::EscalationRule {
            raise_priority_to: Priority::Urgent as i32,
            move_to_tier: "L2".into(),
            ..rule("sla-breach", routing::Trigger::SlaBreach)
        },
        rule("sla-warning", routing::Trigger::SlaWarning),
        routing::EscalationRule {
            raise_priority_to: Priority::High as i32,
            assign_to_supervisor: true,
            ..rule("threats", routing::Trigger::ThreatDetected)
        },
        routing::EscalationRule {
            assign_to_supervisor: true,
            ..rule("supervisor", routing::Trigger::SupervisorRequested)
        },
        routing::EscalationRule { move_to_tier: "L2".into(), ..rule("flagged", routing::Trigger::CustomerFlagged) },
        routing::EscalationRule {
            raise_priority_to: Priority::High as i32,
            ..rule("vip", routing::Trigger::VipCustomer)
        },
        routing::EscalationRule {
            reassignment_limit: 3,
            assign_to_supervisor: true,
            ..rule("reassigned", routing::Trigger::ReassignmentLimit)
        },
    ] {
        sla.upsert_escalation_rule(outgoing(routing::UpsertEscalationRuleRequest { rule: Some(rule) }, auth)).await?;
    }
    Ok(())
}

/// The demo tenant's web-widget signing key: HS256, customer tokens only. Made once.
pub async fn ensure_widget_key(identity: &helpdesk_identity::IdentityStore) -> anyhow::Result<()> {
    use helpdesk_identity::tokens::{NewSigningKey, SigningAlgorithm};
    const NAME: &str = "demo web widget";
    if identity.list_signing_keys(crate::DEMO_TENANT).await?.iter().any(|key| key.name == NAME) {
        return Ok(());
    }
    let new = NewSigningKey {
        name: NAME.to_owned(),
        algorithm: SigningAlgorithm::Hs256,
        roles: Vec::new(),
        issuer: String::new(),
        audience: String::new(),
        public_key_pem: String::new(),
    };
    identity.create_signing_key(crate::DEMO_TENANT, new).await?;
    Ok(())
}
