//! The agent workspace in a real browser: Chromium, headless, driven over WebDriver
//! (chromedriver, which `.ci/run` installs) against the running platform. Screenshots of the
//! pages go to `target/screenshots`.

use std::{path::PathBuf, process::Stdio, time::Duration};

use fantoccini::{Client, ClientBuilder, Locator};
use helpdesk_runtime::auth::Role;
use helpdesk_tests::{TestApp, spawn_app};
use serde_json::json;

const AGENT_EMAIL: &str = "jisoo@acme.test";
const AGENT_PASSWORD: &str = "a long enough password";

/// chromedriver on a port of its own, stopped when dropped.
struct Driver {
    process: std::process::Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// chromedriver, or `None` (said on stderr) when it is not installed.
async fn chromedriver() -> Option<Driver> {
    let binary = ["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"]
        .into_iter()
        .find(|path| std::path::Path::new(path).exists());
    let Some(binary) = binary else {
        // CI installs it and says so: there, a missing browser is a failure, not a skip.
        assert!(
            std::env::var_os("HELPDESK_TEST_BROWSER").is_none(),
            "HELPDESK_TEST_BROWSER is set but chromedriver is missing"
        );
        eprintln!("chromedriver is not installed (Debian: chromium chromium-driver): browser test not run");
        return None;
    };
    // chromedriver takes a port number only; this one was free a moment ago.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let process = std::process::Command::new(binary)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    // Dropped, it is killed and waited for.
    let driver = Driver { process, url: format!("http://127.0.0.1:{port}") };
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return Some(driver);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("chromedriver did not come up on port {port}");
}

async fn browser(driver: &Driver, language: &str) -> Client {
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".to_owned(),
        json!({ "binary": "/usr/bin/chromium",
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--window-size=1280,1000", format!("--lang={language}")],
                "prefs": { "intl.accept_languages": language } }),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(capabilities)
        .connect(&driver.url)
        .await
        .expect("a browser session")
}

async fn screenshot(client: &Client, name: &str) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(format!("{name}.png")), client.screenshot().await.unwrap()).unwrap();
}

/// The text of the first element `css` finds, waiting for the page to show one (a click does
/// not wait for the page it loads).
async fn text_of(client: &Client, css: &str) -> String {
    let found = client.wait().at_most(Duration::from_secs(10)).for_element(Locator::Css(css)).await;
    found.unwrap_or_else(|error| panic!("{css}: {error}")).text().await.unwrap()
}

/// Waits until the page's text has `wanted`.
async fn shows(client: &Client, wanted: &str) {
    for _ in 0..200 {
        if let Ok(body) = client.find(Locator::Css("body")).await
            && body.text().await.is_ok_and(|text| text.contains(wanted))
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the page never showed {wanted}: {}", client.source().await.unwrap_or_default());
}

/// An agent account, a flagged customer with an order, and a ticket assigned to the agent.
async fn seed(app: &TestApp) -> String {
    let change = helpdesk_identity::AccountChange {
        id: "agent-jisoo".into(),
        email: AGENT_EMAIL.into(),
        display_name: "정지수".into(),
        role: Role::Agent,
        language: "ko".into(),
        time_zone: "Asia/Seoul".into(),
        disabled: false,
        password: AGENT_PASSWORD.into(),
    };
    app.platform_identity.upsert_account("demo", change).await.unwrap();
    let key = app.admin_key.clone();
    let customer = app.create_customer(&key, "김민수", "minsu@example.kr").await;
    let flag = json!({ "kind": "abusive", "reason": "지난 통화에서 욕설; 정중하게, 녹취 안내" });
    let (status, _) = app.call(reqwest::Method::PUT, &format!("/v1/customers/{customer}/flag"), &key, Some(flag)).await;
    assert_eq!(status, 200);
    let ticket = app
        .create_ticket(
            &key,
            json!({ "subject": "환불 요청: 주문 A-1042", "description": "결제가 두 번 되었습니다.",
            "requester_id": customer, "assignee_id": "agent-jisoo", "external_refs": { "order_id": "A-1042" } }),
        )
        .await;
    let (status, _) = app
        .post(
            "/v1/saved_replies",
            &key,
            json!({ "title": "환불 완료 안내",
            "body": "{{customer.name}}님, 주문 {{ticket.external_refs.order_id}} 환불 처리했습니다." }),
        )
        .await;
    assert_eq!(status, 201);
    let article = json!({ "locale": "ko", "title": "중복 결제 환불 요청 처리 안내",
        "body_markdown": "결제가 두 번 되었을 때의 환불 요청은 카드사 승인 취소로 처리합니다. 환불은 영업일 기준 3~5일 걸립니다." });
    let (status, created) = app.post("/v1/kb/articles", &key, article).await;
    assert_eq!(status, 201, "{created}");
    let publish = format!("/v1/kb/articles/{}/status", created["id"].as_str().unwrap());
    let (status, _) = app.post(&publish, &key, json!({ "status": "published" })).await;
    assert_eq!(status, 200);
    ticket["id"].as_str().unwrap().to_owned()
}

/// axe-core's serious and critical WCAG 2.1 A/AA violations on the page, none expected. `.ci/run`
/// installs axe-core from npm and names its script in `HELPDESK_TEST_AXE`; without it (and
/// without `HELPDESK_TEST_BROWSER`) the check is skipped, said on stderr.
async fn assert_accessible(client: &Client, page: &str) {
    let Some(path) = std::env::var_os("HELPDESK_TEST_AXE") else {
        assert!(
            std::env::var_os("HELPDESK_TEST_BROWSER").is_none(),
            "HELPDESK_TEST_BROWSER is set but HELPDESK_TEST_AXE is not"
        );
        eprintln!("HELPDESK_TEST_AXE is not set (npm install axe-core): {page} not checked for accessibility");
        return;
    };
    let axe = std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{}: {error}", path.to_string_lossy()));
    let script = format!(
        "{axe}\nconst done = arguments[arguments.length - 1];\n\
         axe.run(document, {{ runOnly: {{ type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] }} }})\n\
           .then((result) => done(result.violations\n\
             .filter((violation) => violation.impact === 'serious' || violation.impact === 'critical')\n\
             .map((violation) => violation.id + ': ' + violation.nodes.map((node) => node.target.join(' ')).join(', '))))\n\
           .catch((error) => done(['axe failed: ' + error]));"
    );
    let violations = client.execute_async(&script, vec![]).await.expect("axe-core runs in the page");
    assert_eq!(violations, json!([]), "{page}: serious or critical accessibility violations");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_signs_in_works_a_ticket_and_the_customer_sees_only_the_reply() {
    let Some(driver) = chromedriver().await else { return };
    let app = spawn_app(helpdesk_tests::Backend::Sqlite).await;
    let ticket_id = seed(&app).await;
    let client = browser(&driver, "ko").await;
    let base = format!("http://{}", app.http_addr);

    // Signed out, the workspace sends you to sign in; a wrong password is refused by name.
    client.goto(&format!("{base}/app")).await.unwrap();
    assert!(client.current_url().await.unwrap().path().ends_with("/app/sign-in"));
    assert_accessible(&client, "sign-in").await;
    client.find(Locator::Id("tenant")).await.unwrap().clear().await.unwrap();
    client.find(Locator::Id("tenant")).await.unwrap().send_keys("demo").await.unwrap();
    client.find(Locator::Id("email")).await.unwrap().send_keys(AGENT_EMAIL).await.unwrap();
    client.find(Locator::Id("password")).await.unwrap().send_keys("not the password").await.unwrap();
    client.find(Locator::Css("form button")).await.unwrap().click().await.unwrap();
    assert!(text_of(&client, ".error").await.contains("wrong email or password"));
    screenshot(&client, "sign-in").await;
    client.find(Locator::Id("password")).await.unwrap().send_keys(AGENT_PASSWORD).await.unwrap();
    client.find(Locator::Css("form button")).await.unwrap().click().await.unwrap();

    // The inbox, in Korean, with the agent's ticket and its requester's flag.
    let inbox = text_of(&client, "table.tickets").await;
    let inbox = format!("{}{inbox}", text_of(&client, "h1").await);
    assert!(inbox.contains("받은 티켓") && inbox.contains("환불 요청: 주문 A-1042"), "{inbox}");
    assert!(inbox.contains("폭언"), "the flag shows in the list: {inbox}");
    screenshot(&client, "inbox").await;
    assert_accessible(&client, "inbox").await;

    // A ticket that arrives while the inbox is open appears in it, without a reload.
    let requester = app.create_customer(&app.admin_key, "이영희", "younghee@example.kr").await;
    app.create_ticket(
        &app.admin_key,
        json!({ "subject": "배송지 변경 부탁드립니다", "requester_id": requester,
        "assignee_id": "agent-jisoo" }),
    )
    .await;
    shows(&client, "배송지 변경 부탁드립니다").await;

    // The ticket: the customer, their order number and their flag before the composer.
    // The list redraws itself as tickets change, so the link is looked up afresh until it holds.
    let mut opened = false;
    for _ in 0..20 {
        let link = client.find(Locator::LinkText("환불 요청: 주문 A-1042")).await;
        if let Ok(link) = link
            && link.click().await.is_ok()
        {
            opened = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(opened, "the ticket's link could be followed");
    let panel = text_of(&client, "aside.customer").await;
    assert!(panel.contains("김민수") && panel.contains("A-1042") && panel.contains("욕설"), "{panel}");
    let banner = text_of(&client, ".work .flag-banner").await;
    assert!(banner.contains("답변 전에 확인하세요"), "{banner}");

    // The knowledge base suggests the Korean article; its link goes into the reply in one click.
    let suggested = text_of(&client, ".suggestions").await;
    assert!(suggested.contains("중복 결제 환불 요청 처리 안내"), "{suggested}");
    client.find(Locator::Css(".suggestions a.insert")).await.unwrap().click().await.unwrap();
    let draft = client.find(Locator::Css("#body")).await.unwrap().prop("value").await.unwrap().unwrap_or_default();
    assert!(draft.starts_with("중복 결제 환불 요청 처리 안내: http") && draft.contains("/articles/"), "{draft:?}");
    assert_accessible(&client, "ticket").await;

    // A reply from a saved reply, its placeholders filled from the ticket, then an internal note.
    client.find(Locator::Css("form.saved button")).await.unwrap().click().await.unwrap();
    let wanted = "김민수님, 주문 A-1042 환불 처리했습니다.";
    let mut draft = None;
    for _ in 0..100 {
        if let Ok(body) = client.find(Locator::Css("#body")).await {
            draft = body.prop("value").await.ok().flatten();
        }
        if draft.as_deref() == Some(wanted) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(draft.as_deref(), Some(wanted), "the composer starts with the saved reply, filled in");
    client.find(Locator::Css(".composer button")).await.unwrap().click().await.unwrap();
    shows(&client, "김민수님, 주문 A-1042 환불 처리했습니다.").await;
    client.find(Locator::Id("body")).await.unwrap().send_keys("카드사 승인 취소 확인 필요").await.unwrap();
    client.find(Locator::Css(".composer input[name=internal]")).await.unwrap().click().await.unwrap();
    client.find(Locator::Css(".composer button")).await.unwrap().click().await.unwrap();
    shows(&client, "카드사 승인 취소 확인 필요").await;
    let notes = client.find_all(Locator::Css("article.message.internal")).await.unwrap();
    assert_eq!(notes.len(), 1);
    screenshot(&client, "ticket").await;

    // A stale change is refused with the ticket as it is now, not written over.
    let (_, current) = app.get(&format!("/v1/tickets/{ticket_id}"), &app.admin_key).await;
    let (status, _) = app.update_ticket(&app.admin_key, &ticket_id, json!({ "priority": "high" })).await;
    assert_eq!(status, 200);
    client.find(Locator::Css("select#status option[value=pending]")).await.unwrap().click().await.unwrap();
    client.find(Locator::Css("form.fields button")).await.unwrap().click().await.unwrap();
    let conflict = text_of(&client, ".work .error").await;
    assert!(
        conflict.contains("다른 사람이") && conflict.contains("우선순위: 보통 → 높음"),
        "the change is shown: {conflict}"
    );
    let (_, after) = app.get(&format!("/v1/tickets/{ticket_id}"), &app.admin_key).await;
    assert_eq!((after["status"].as_str(), after["priority"].as_str()), (current["status"].as_str(), Some("high")));

    // The customer, through the API: the reply, never the note.
    let customer_token = app.customer_token("demo", after["requester_id"].as_str().unwrap());
    let (_, seen) = app.get(&format!("/v1/tickets/{ticket_id}/messages"), &customer_token).await;
    let seen = seen.to_string();
    assert!(seen.contains("A-1042 환불 처리했습니다") && !seen.contains("카드사"), "{seen}");

    // Signed out, the session is over everywhere.
    client.find(Locator::Css(".signout button")).await.unwrap().click().await.unwrap();
    text_of(&client, "#password").await;
    client.goto(&format!("{base}/app")).await.unwrap();
    assert!(client.current_url().await.unwrap().path().ends_with("/app/sign-in"));
    client.close().await.unwrap();
    app.stop().await;
}

/// Signs the browser in as `email` on the demo tenant.
async fn sign_in(client: &Client, base: &str, email: &str, password: &str) {
    client.goto(&format!("{base}/app/sign-in")).await.unwrap();
    client.find(Locator::Id("tenant")).await.unwrap().clear().await.unwrap();
    client.find(Locator::Id("tenant")).await.unwrap().send_keys("demo").await.unwrap();
    client.find(Locator::Id("email")).await.unwrap().send_keys(email).await.unwrap();
    client.find(Locator::Id("password")).await.unwrap().send_keys(password).await.unwrap();
    client.find(Locator::Css("form button")).await.unwrap().click().await.unwrap();
    text_of(client, "h1").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_supervisor_sees_the_queue_grow_live_and_reports_chart_the_right_totals() {
    let Some(driver) = chromedriver().await else { return };
    let app = spawn_app(helpdesk_tests::Backend::Sqlite).await;
    seed(&app).await;
    let key = app.admin_key.clone();
    let (status, queue) =
        app.call(reqwest::Method::PUT, "/v1/queues/general", &key, Some(json!({ "name": "일반 문의" }))).await;
    assert_eq!(status, 200, "{queue}");
    let client = browser(&driver, "en").await;
    let base = format!("http://{}", app.http_addr);
    sign_in(&client, &base, AGENT_EMAIL, AGENT_PASSWORD).await;

    // Nobody is online: new tickets wait in the queue, and the supervisor sees each arrive.
    let requester = app.create_customer(&key, "Emily Park", "emily@example.com").await;
    let create = |subject: &'static str, channel: &'static str| {
        let body = json!({ "subject": subject, "requester_id": requester, "channel": channel });
        let app = &app;
        let key = key.clone();
        async move { app.create_ticket(&key, body).await }
    };
    create("Where is my parcel?", "email").await;
    client.goto(&format!("{base}/app/supervisor")).await.unwrap();
    let waiting = |wanted: &'static str| {
        let client = &client;
        async move {
            for _ in 0..200 {
                if let Ok(cell) = client.find(Locator::Css("table.queues td.waiting")).await
                    && cell.text().await.is_ok_and(|text| text == wanted)
                {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            panic!("the queue never showed {wanted} waiting: {}", client.source().await.unwrap_or_default());
        }
    };
    // Routing takes the ticket from the event a moment after it is created.
    for _ in 0..100 {
        if text_of(&client, "table.queues td.waiting").await == "1" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        client.refresh().await.unwrap();
    }
    waiting("1").await;
    assert!(text_of(&client, "table.queues").await.contains("일반 문의"));
    create("Refund for a broken mug", "web").await;
    waiting("2").await;
    create("Change my address", "chat").await;
    waiting("3").await;
    screenshot(&client, "supervisor").await;
    assert_accessible(&client, "supervisor").await;
    let forecast = client.find(Locator::Css("svg.chart")).await.unwrap();
    assert!(forecast.attr("aria-label").await.unwrap().unwrap_or_default().starts_with("시간대별 필요 상담원"));

    // Reports: four tickets created today (the seeded one and three), by channel too, once
    // insights has taken in the events.
    let mut created = String::new();
    for _ in 0..100 {
        client.goto(&format!("{base}/app/reports?days=7")).await.unwrap();
        created = text_of(&client, "#created-total").await;
        if created == "4" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(created, "4", "tickets created in the period");
    let charts = client.find_all(Locator::Css("svg.chart")).await.unwrap();
    let mut totals = Vec::new();
    for chart in &charts {
        totals.push(chart.attr("data-total").await.unwrap().unwrap_or_default());
    }
    assert_eq!(totals[0], "4", "tickets created per day: {totals:?}");
    assert_eq!(totals[2], "4", "tickets by channel: {totals:?}");
    assert_eq!(totals[3], "4", "tickets by hour of day: {totals:?}");
    let by_channel = charts[2].html(false).await.unwrap();
    assert!(by_channel.contains("chat: 1") && by_channel.contains("email: 1"), "{by_channel}");
    screenshot(&client, "reports").await;
    assert_accessible(&client, "reports").await;
    client.close().await.unwrap();
    app.stop().await;
}

/// The workspace's form and session rules, over plain HTTP: a sign-in form without its token is
/// refused, five wrong passwords lock the account, a customer's token never opens `/app`, and
/// every page carries the CSP.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workspace_forms_and_sessions_hold_without_a_browser() {
    let app = spawn_app(helpdesk_tests::Backend::Sqlite).await;
    let ticket_id = seed(&app).await;
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let url = |path: &str| format!("http://{}{path}", app.http_addr);

    let page = http.get(url("/app/sign-in")).send().await.unwrap();
    let csp = page.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert!(csp.contains("default-src 'none'") && !csp.contains("unsafe-inline"), "{csp}");
    let cookie = page.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"), "{cookie}");
    let form_cookie = cookie.split(';').next().unwrap().to_owned();
    let token = form_cookie.split_once('=').unwrap().1.to_owned();
    let sign_in = |password: &str, csrf: &str| {
        http.post(url("/app/sign-in"))
            .header("cookie", &form_cookie)
            .form(&[("csrf", csrf), ("tenant", "demo"), ("email", AGENT_EMAIL), ("password", password)])
            .send()
    };
    assert_eq!(sign_in(AGENT_PASSWORD, "forged").await.unwrap().status().as_u16(), 403, "a form without its token");

    // Signed in: files come through the workspace with the session; forms need their token.
    let signed_in = sign_in(AGENT_PASSWORD, &token).await.unwrap();
    assert_eq!(signed_in.status().as_u16(), 303);
    let session = signed_in
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find(|value| value.starts_with("hd_session="))
        .map(|value| value.split(';').next().unwrap().to_owned())
        .expect("a session cookie");
    let upload = app
        .http
        .post(app.url("/v1/attachments?name=receipt.pdf"))
        .bearer_auth(&app.admin_key)
        .header("content-type", "application/pdf")
        .body("%PDF-1.4 receipt")
        .send()
        .await
        .unwrap();
    let file: serde_json::Value = upload.json().await.unwrap();
    let note = json!({ "body_text": "receipt", "attachments": [{ "name": "receipt.pdf", "sha256": file["sha256"] }] });
    let (status, _) = app.post(&format!("/v1/tickets/{ticket_id}/messages"), &app.admin_key, note).await;
    assert_eq!(status, 201);
    let path = format!("/app/tickets/{ticket_id}/attachments/{}", file["sha256"].as_str().unwrap());
    let download = http.get(url(&path)).header("cookie", &session).send().await.unwrap();
    assert_eq!(download.status().as_u16(), 200);
    assert_eq!(download.headers()["x-content-type-options"], "nosniff");
    assert_eq!(download.bytes().await.unwrap().as_ref(), b"%PDF-1.4 receipt");
    let page = http.get(url(&format!("/app/tickets/{ticket_id}"))).header("cookie", &session).send().await.unwrap();
    let page = page.text().await.unwrap();
    assert!(page.contains(&path), "the page links the file through the workspace");
    let csrf = page.split("name=\"csrf\" value=\"").nth(1).and_then(|rest| rest.split('"').next()).unwrap().to_owned();

    // A transfer to nowhere is refused by the field's name; the ticket page stays.
    let transfer = http
        .post(url(&format!("/app/tickets/{ticket_id}/transfer")))
        .header("cookie", &session)
        .form(&[("csrf", csrf.as_str()), ("to", ""), ("note", "for billing")])
        .send()
        .await
        .unwrap();
    assert_eq!(transfer.status().as_u16(), 200);
    assert!(transfer.text().await.unwrap().contains("Transfer to: pick a queue or an agent"));

    // Reports download as CSV; an unknown report is not found.
    let csv =
        http.get(url("/app/reports/volume.csv?days=7&group=channel")).header("cookie", &session).send().await.unwrap();
    assert_eq!(csv.status().as_u16(), 200);
    assert!(csv.headers()["content-type"].to_str().unwrap().starts_with("text/csv"));
    assert!(csv.headers()["content-disposition"].to_str().unwrap().starts_with("attachment; filename="));
    assert!(csv.text().await.unwrap().contains("created"), "the CSV has its columns");
    let unknown = http.get(url("/app/reports/secrets.csv")).header("cookie", &session).send().await.unwrap();
    assert_eq!(unknown.status().as_u16(), 404);
    let forged = http
        .post(url(&format!("/app/tickets/{ticket_id}/messages")))
        .header("cookie", &session)
        .form(&[("csrf", "forged"), ("nonce", "n1"), ("body", "sent by another site")])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status().as_u16(), 403);

    for _ in 0..5 {
        assert_eq!(sign_in("wrong password!", &token).await.unwrap().status().as_u16(), 401);
    }
    let locked = sign_in(AGENT_PASSWORD, &token).await.unwrap();
    assert_eq!(locked.status().as_u16(), 401);
    assert!(locked.text().await.unwrap().contains("locked"), "the right password does not open a locked account");

    // A customer's token, even as the session cookie, is not a workspace session.
    let requester = app.get(&format!("/v1/tickets/{ticket_id}"), &app.admin_key).await.1["requester_id"].clone();
    let customer = app.customer_token("demo", requester.as_str().unwrap());
    for cookie in
        [format!("hd_session={customer}"), "hd_session=hds_0000000000000000_forgedforgedforgedforgedforged".to_owned()]
    {
        let refused =
            http.get(url(&format!("/app/tickets/{ticket_id}"))).header("cookie", cookie).send().await.unwrap();
        assert_eq!(refused.status().as_u16(), 303);
        assert_eq!(refused.headers()["location"], "/app/sign-in");
    }
    app.stop().await;
}
