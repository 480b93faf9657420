//! The agent workspace under load: a tenant filled with tickets (and a page of messages on the
//! ones opened), agents signed in through the real sign-in form, then the inbox and ticket pages
//! rendered by `/app` beside the bare gRPC calls each page makes, in the same run.

use std::sync::Arc;

use helpdesk_proto::{
    common::v1::Role,
    identity::v1::{Account, UpsertAccountRequest, identity_service_client::IdentityServiceClient},
    knowledge::v1::{SuggestRequest, knowledge_service_client::KnowledgeServiceClient},
    routing::v1::{
        GetTicketSlaRequest, ListAgentsRequest, ListQueuesRequest, routing_service_client::RoutingServiceClient,
        sla_service_client::SlaServiceClient,
    },
    ticketing::v1::{
        AddMessageRequest, CreateCustomerRequest, CreateTicketRequest, GetCustomerRequest, GetTicketRequest,
        ListMessagesRequest, ListSavedRepliesRequest, ListTicketsRequest, Status, TicketOrder,
        customer_service_client::CustomerServiceClient, saved_reply_service_client::SavedReplyServiceClient,
        ticket_service_client::TicketServiceClient,
    },
};
use helpdesk_runtime::grpc::outgoing;
use tonic::transport::Channel;

use crate::{Args, Stats, measure};

const AGENT: &str = "bench-agent";
const PASSWORD: &str = "bench agent password";

/// What the pages need: tickets assigned to the agent (some with messages) and its session.
pub(crate) struct Workspace {
    ticket_ids: Arc<Vec<String>>,
    cookie: Arc<String>,
}

/// Fills the tenant with `count` tickets, 50 at a time side by side, a tenth of them assigned to
/// the agent, and signs the agent in.
pub(crate) async fn prepare(grpc: &[Channel], base: &str, auth: &str, count: usize) -> anyhow::Result<Workspace> {
    let account = Account {
        id: AGENT.into(),
        email: "bench-agent@bench.test".into(),
        display_name: "Bench Agent".into(),
        role: Role::Agent as i32,
        language: "ko".into(),
        time_zone: "Asia/Seoul".into(),
        ..Default::default()
    };
    let request = UpsertAccountRequest { account: Some(account), password: PASSWORD.into() };
    IdentityServiceClient::new(grpc[0].clone()).upsert_account(outgoing(request, Some(auth))).await?;
    let customer = CustomerServiceClient::new(grpc[0].clone())
        .create_customer(outgoing(
            CreateCustomerRequest {
                name: "김민수".into(),
                emails: vec!["minsu@bench.test".into()],
                ..Default::default()
            },
            Some(auth),
        ))
        .await?
        .into_inner()
        .id;
    let started = std::time::Instant::now();
    let mut mine = Vec::new();
    for chunk in (0..count).collect::<Vec<_>>().chunks(50) {
        let creates = chunk.iter().map(|n| {
            let mut client = TicketServiceClient::new(grpc[n % grpc.len()].clone());
            let request = CreateTicketRequest {
                subject: format!("주문 {n} 배송 문의 / Order {n} delivery question"),
                description: "언제 도착하나요? When will it arrive?".into(),
                requester_id: customer.clone(),
                assignee_id: if n % 10 == 0 { AGENT.into() } else { String::new() },
                external_refs: [("order_id".to_owned(), format!("B-{n}"))].into(),
                ..Default::default()
            };
            async move { client.create_ticket(outgoing(request, Some(auth))).await.map(|t| t.into_inner().id) }
        });
        for (n, created) in chunk.iter().zip(futures::future::join_all(creates).await) {
            if n % 10 == 0 {
                mine.push(created?);
            }
        }
    }
    // A short conversation on the tickets the page scenario opens.
    let opened: Vec<String> = mine.iter().take(200).cloned().collect();
    for id in &opened {
        for body in ["확인 부탁드립니다.", "확인 중입니다. 잠시만 기다려 주세요."] {
            let request = AddMessageRequest { ticket_id: id.clone(), body_text: body.into(), ..Default::default() };
            TicketServiceClient::new(grpc[0].clone()).add_message(outgoing(request, Some(auth))).await?;
        }
    }
    eprintln!(
        "workspace: {count} tickets and {} conversations in {:.1} s",
        opened.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(Workspace { ticket_ids: Arc::new(opened), cookie: Arc::new(sign_in(base).await?) })
}

/// Signs the agent in through the form, as a browser does; returns the session cookie.
async fn sign_in(base: &str) -> anyhow::Result<String> {
    // The session is in the answer to the form itself, not after its redirect.
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build()?;
    let form = http.get(format!("{base}/app/sign-in")).send().await?;
    let form_cookie = cookie(&form, "hd_form")?;
    let csrf = form_cookie.split_once('=').map(|(_, token)| token.to_owned()).unwrap_or_default();
    let signed_in = http
        .post(format!("{base}/app/sign-in"))
        .header("cookie", &form_cookie)
        .form(&[
            ("csrf", csrf.as_str()),
            ("tenant", "demo"),
            ("email", "bench-agent@bench.test"),
            ("password", PASSWORD),
        ])
        .send()
        .await?;
    anyhow::ensure!(signed_in.status().as_u16() == 303, "sign-in answered {}", signed_in.status());
    cookie(&signed_in, "hd_session")
}

fn cookie(response: &reqwest::Response, name: &str) -> anyhow::Result<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find(|value| value.starts_with(&format!("{name}=")))
        .and_then(|value| value.split(';').next())
        .map(str::to_owned)
        .ok_or_else(|| anyhow::anyhow!("no {name} cookie"))
}

/// What the ticket page asks for: the ticket, then the rest side by side.
async fn page_calls(channel: Channel, auth: &str, id: String) -> anyhow::Result<()> {
    let mut tickets = TicketServiceClient::new(channel.clone());
    let ticket = tickets.get_ticket(outgoing(GetTicketRequest { id: id.clone() }, Some(auth))).await?.into_inner();
    let requester = ticket.requester_id;
    let (mut customers, mut others, mut replies) = (
        CustomerServiceClient::new(channel.clone()),
        TicketServiceClient::new(channel.clone()),
        SavedReplyServiceClient::new(channel.clone()),
    );
    let (mut sla, mut knowledge, mut queues, mut agents) = (
        SlaServiceClient::new(channel.clone()),
        KnowledgeServiceClient::new(channel.clone()),
        RoutingServiceClient::new(channel.clone()),
        RoutingServiceClient::new(channel),
    );
    let messages = ListMessagesRequest { ticket_id: id.clone(), page_size: 200, page_token: String::new() };
    let other_tickets = ListTicketsRequest { requester_id: requester.clone(), page_size: 10, ..Default::default() };
    let suggest = SuggestRequest { subject: ticket.subject, body: ticket.description, limit: 3, ..Default::default() };
    let (customer, messages, other_tickets, saved, clocks, suggested, queue_list, agent_list) = tokio::join!(
        customers.get_customer(outgoing(GetCustomerRequest { id: requester }, Some(auth))),
        tickets.list_messages(outgoing(messages, Some(auth))),
        others.list_tickets(outgoing(other_tickets, Some(auth))),
        replies.list_saved_replies(outgoing(ListSavedRepliesRequest {}, Some(auth))),
        sla.get_ticket_sla(outgoing(GetTicketSlaRequest { ticket_id: id }, Some(auth))),
        knowledge.suggest(outgoing(suggest, Some(auth))),
        queues.list_queues(outgoing(ListQueuesRequest::default(), Some(auth))),
        agents.list_agents(outgoing(ListAgentsRequest::default(), Some(auth))),
    );
    customer?;
    messages?;
    other_tickets?;
    saved?;
    // A ticket no SLA policy covers has no clocks: the page leaves them out, and so does this.
    if let Err(status) = clocks
        && status.code() != tonic::Code::NotFound
    {
        return Err(status.into());
    }
    suggested?;
    queue_list?;
    agent_list?;
    Ok(())
}

/// The inbox and ticket pages, and the gRPC calls behind each, at `concurrency`.
pub(crate) async fn pages(
    args: &Args,
    grpc: Arc<Vec<Channel>>,
    http: reqwest::Client,
    base: Arc<String>,
    auth: Arc<String>,
    workspace: &Workspace,
    concurrency: usize,
) -> Vec<Stats> {
    let inbox_request = || ListTicketsRequest {
        statuses: [Status::New, Status::Open, Status::Pending, Status::OnHold].map(|s| s as i32).to_vec(),
        assignee_id: AGENT.into(),
        order: TicketOrder::UpdatedDesc as i32,
        page_size: 50,
        ..Default::default()
    };
    let mut results = Vec::new();
    {
        let (grpc, auth) = (grpc.clone(), auth.clone());
        results.push(
            measure("inbox: its gRPC call (list 50 of mine)", concurrency, args, move |worker, _| {
                let mut tickets = TicketServiceClient::new(grpc[worker % grpc.len()].clone());
                let request = outgoing(inbox_request(), Some(&auth));
                async move {
                    tickets.list_tickets(request).await?;
                    Ok(())
                }
            })
            .await,
        );
    }
    {
        let (http, base, cookie) = (http.clone(), base.clone(), workspace.cookie.clone());
        results.push(
            measure("inbox page (/app)", concurrency, args, move |_, _| {
                let request = http.get(format!("{base}/app")).header("cookie", cookie.as_str());
                async move {
                    let response = request.send().await?;
                    anyhow::ensure!(response.status().is_success(), "status {}", response.status());
                    response.bytes().await?;
                    Ok(())
                }
            })
            .await,
        );
    }
    {
        let (grpc, auth, ids) = (grpc.clone(), auth.clone(), workspace.ticket_ids.clone());
        results.push(
            measure("ticket: its gRPC calls (9, as the page makes them)", concurrency, args, move |worker, n| {
                let channel = grpc[worker % grpc.len()].clone();
                let (auth, id) = (auth.clone(), ids[n as usize % ids.len()].clone());
                async move { page_calls(channel, &auth, id).await }
            })
            .await,
        );
    }
    {
        let (http, base, cookie, ids) = (http, base, workspace.cookie.clone(), workspace.ticket_ids.clone());
        results.push(
            measure("ticket page (/app/tickets/{id})", concurrency, args, move |_, n| {
                let id = &ids[n as usize % ids.len()];
                let request = http.get(format!("{base}/app/tickets/{id}")).header("cookie", cookie.as_str());
                async move {
                    let response = request.send().await?;
                    anyhow::ensure!(response.status().is_success(), "status {}", response.status());
                    response.bytes().await?;
                    Ok(())
                }
            })
            .await,
        );
    }
    results
}
