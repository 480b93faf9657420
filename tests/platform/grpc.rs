use helpdesk_proto::{
    common::v1::Priority,
    ticketing::v1::{
        CreateCustomerRequest, CreateTicketRequest, GetTicketRequest, ListTicketsRequest,
        customer_service_client::CustomerServiceClient, ticket_service_client::TicketServiceClient,
    },
};
use helpdesk_tests::on_both_backends;
use tonic::Code;
use tonic_types::StatusExt;

on_both_backends! {
    async fn grpc_clients_create_and_read_tickets_with_an_api_key(app: TestApp) {
        let channel = app.channel().await;
        let mut customers = CustomerServiceClient::new(channel.clone());
        let mut tickets = TicketServiceClient::new(channel);
        let customer = customers
            .create_customer(app.grpc_request(&app.admin_key, CreateCustomerRequest { name: "Emily".into(), ..Default::default() }))
            .await
            .expect("customer created")
            .into_inner();
        let request = CreateTicketRequest {
            idempotency_key: "grpc-1".into(),
            subject: "via gRPC".into(),
            requester_id: customer.id,
            priority: Priority::Urgent as i32,
            ..Default::default()
        };
        let first = tickets.create_ticket(app.grpc_request(&app.admin_key, request.clone())).await.expect("created").into_inner();
        let again = tickets.create_ticket(app.grpc_request(&app.admin_key, request)).await.expect("replayed").into_inner();
        assert_eq!(first.id, again.id);
        let read = tickets
            .get_ticket(app.grpc_request(&app.admin_key, GetTicketRequest { id: first.id.clone() }))
            .await
            .expect("read")
            .into_inner();
        assert_eq!(read.priority, Priority::Urgent as i32);
        let (status, rest) = app.get(&format!("/v1/tickets/{}", first.id), &app.admin_key).await;
        assert_eq!(status, 200);
        assert_eq!(rest["priority"], "urgent");
    }

    async fn grpc_errors_carry_codes_and_field_violations(app: TestApp) {
        let mut tickets = TicketServiceClient::new(app.channel().await);
        let unauthenticated = tickets.list_tickets(tonic::Request::new(ListTicketsRequest::default())).await.expect_err("no key");
        assert_eq!(unauthenticated.code(), Code::Unauthenticated);
        let invalid = tickets
            .create_ticket(app.grpc_request(&app.admin_key, CreateTicketRequest { subject: "x".into(), requester_id: "c".into(), priority: 99, ..Default::default() }))
            .await
            .expect_err("unknown priority");
        assert_eq!(invalid.code(), Code::InvalidArgument);
        let violations = invalid.get_details_bad_request().expect("bad request details").field_violations;
        assert_eq!(violations[0].field, "priority");
        let missing = tickets
            .get_ticket(app.grpc_request(&app.admin_key, GetTicketRequest { id: "nope".into() }))
            .await
            .expect_err("missing");
        assert_eq!(missing.code(), Code::NotFound);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_reflection_answer_without_credentials() {
    let app = helpdesk_tests::spawn_app(helpdesk_tests::Backend::Sqlite).await;
    let channel = app.channel().await;
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel.clone());
    let status = health
        .check(tonic_health::pb::HealthCheckRequest { service: "helpdesk.ticketing.v1.TicketService".into() })
        .await
        .expect("health answers")
        .into_inner()
        .status;
    assert_eq!(status, tonic_health::pb::health_check_response::ServingStatus::Serving as i32);

    use tonic_reflection::pb::v1::{
        ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
    };
    let mut reflection = ServerReflectionClient::new(channel);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses =
        reflection.server_reflection_info(futures::stream::iter(vec![request])).await.expect("reflection").into_inner();
    let response = responses.message().await.expect("stream").expect("one response");
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("unexpected reflection answer")
    };
    let names: Vec<_> = list.service.into_iter().map(|service| service.name).collect();
    assert!(names.contains(&"helpdesk.ticketing.v1.TicketService".to_owned()), "{names:?}");
    assert!(names.contains(&"helpdesk.identity.v1.IdentityService".to_owned()));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_services_may_ask_identity_to_resolve_a_credential() {
    use helpdesk_proto::identity::v1::{AuthenticateRequest, identity_service_client::IdentityServiceClient};
    let app = helpdesk_tests::spawn_app(helpdesk_tests::Backend::Sqlite).await;
    let mut identity = IdentityServiceClient::new(app.channel().await);
    let probe = || AuthenticateRequest { credential: app.admin_key.clone() };
    let anonymous = identity.authenticate(probe()).await.expect_err("no credentials");
    assert_eq!(anonymous.code(), Code::Unauthenticated);
    let admin = identity.authenticate(app.grpc_request(&app.admin_key, probe())).await.expect_err("not a service");
    assert_eq!(admin.code(), Code::PermissionDenied);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_services_write_what_only_the_customer_reads() {
    use helpdesk_proto::ticketing::v1::AddMessageRequest;
    let app = helpdesk_tests::spawn_app(helpdesk_tests::Backend::Sqlite).await;
    let customer = app.create_customer(&app.admin_key, "Alice", "alice@example.com").await;
    let ticket =
        app.create_ticket(&app.admin_key, serde_json::json!({ "subject": "x", "requester_id": customer })).await;
    let mut tickets = TicketServiceClient::new(app.channel().await);
    let planted = AddMessageRequest {
        ticket_id: ticket["id"].as_str().unwrap().into(),
        body_text: "Rate us".into(),
        customer_text: "Rate us: https://evil.example/".into(),
        ..Default::default()
    };
    let refused = tickets.add_message(app.grpc_request(&app.admin_key, planted)).await.expect_err("staff");
    assert_eq!(refused.code(), Code::PermissionDenied);
    assert_eq!(refused.get_details_bad_request().unwrap().field_violations[0].field, "customer_text");
    app.stop().await;
}
