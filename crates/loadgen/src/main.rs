//! Measures the running platform on loopback — ticket create over gRPC and REST, get by id, list —
//! at several concurrencies, and in the same run two baselines: a bare tonic echo service and a
//! bare single-row insert into the same kind of database. Prints throughput, p50 and p99, and our
//! throughput as a ratio of each baseline; and the email channel's ingest over SMTP beside a bare parse
//! of the same mail; and the agent workspace's pages beside the gRPC calls they make.
//!
//! Every scenario is bounded by time (`--seconds`) and count (`--max-requests`), and all traffic
//! goes to 127.0.0.1.

use std::{
    future::Future,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

mod mail;
mod web;

use clap::Parser;
use hdrhistogram::Histogram;
use helpdesk_cli::{DEMO_TENANT, Platform};
use helpdesk_proto::{
    bench::v1::{
        EchoRequest, EchoResponse,
        echo_service_client::EchoServiceClient,
        echo_service_server::{EchoService, EchoServiceServer},
    },
    ticketing::v1::{
        CreateCustomerRequest, CreateTicketRequest, GetTicketRequest, ListTicketsRequest,
        customer_service_client::CustomerServiceClient, ticket_service_client::TicketServiceClient,
    },
};
use helpdesk_runtime::{
    auth::Role,
    config::Config,
    db::{self, Database},
    grpc::outgoing,
};
use serde_json::json;
use tonic::transport::Channel;

#[derive(Parser)]
#[command(about = "Load generator for the helpdesk platform (loopback only)")]
struct Args {
    /// Concurrent in-flight requests for each scenario.
    #[arg(long, value_delimiter = ',', default_value = "1,8,64")]
    concurrency: Vec<usize>,
    /// How long each scenario runs.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// At most this many requests per scenario.
    #[arg(long, default_value_t = 300_000)]
    max_requests: u64,
    /// Run the platform on this PostgreSQL server (a fresh database is created) instead of SQLite.
    #[arg(long, env = "HELPDESK_BENCH_POSTGRES_URL")]
    postgres: Option<String>,
    /// Only these scenarios (comma list), e.g. grpc_create,rest_create.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Messages delivered per concurrency in the mail ingest scenario.
    #[arg(long, default_value_t = 5_000)]
    mail_count: usize,
    /// Dovecot, for the IMAP fetch scenario (`.ci/mail-servers` starts one on 127.0.0.1:10143).
    #[arg(long, env = "HELPDESK_TEST_IMAP")]
    imap: Option<std::net::SocketAddr>,
    /// Postfix, for the outbound scenario (`.ci/mail-servers` starts one on 127.0.0.1:10025).
    #[arg(long, env = "HELPDESK_TEST_SMTP_RELAY")]
    smtp_relay: Option<std::net::SocketAddr>,
    /// Messages sent at once in the mail burst scenario.
    #[arg(long, default_value_t = 20_000)]
    burst_count: usize,
    /// Replies posted per concurrency in the outbound scenario.
    #[arg(long, default_value_t = 5_000)]
    reply_count: usize,
    /// Tickets the workspace scenario fills the tenant with first.
    #[arg(long, default_value_t = 10_000)]
    web_tickets: usize,
    /// SQLite durability: `normal` or `full` (every commit on disk before it is acknowledged).
    #[arg(long, default_value = "normal")]
    sqlite_synchronous: String,
}

struct Stats {
    scenario: &'static str,
    concurrency: usize,
    ops: u64,
    errors: u64,
    elapsed: Duration,
    latency_us: Histogram<u64>,
}

impl Stats {
    fn throughput(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64()
    }
}

/// Runs `op` from `concurrency` closed-loop workers until the time or count bound.
async fn measure<F, Fut>(scenario: &'static str, concurrency: usize, args: &Args, op: F) -> Stats
where
    F: Fn(usize, u64) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send,
{
    let issued = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let max = args.max_requests;
    let started = Instant::now();
    let workers: Vec<_> = (0..concurrency)
        .map(|worker| {
            let (op, issued, errors) = (op.clone(), issued.clone(), errors.clone());
            tokio::spawn(async move {
                let mut histogram = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("valid bounds");
                loop {
                    let n = issued.fetch_add(1, Ordering::Relaxed);
                    if n >= max || Instant::now() >= deadline {
                        break;
                    }
                    let begin = Instant::now();
                    if let Err(error) = op(worker, n).await {
                        if errors.fetch_add(1, Ordering::Relaxed) < 3 {
                            eprintln!("{scenario}: {error:#}");
                        }
                        continue;
                    }
                    let _ = histogram.record(begin.elapsed().as_micros().max(1) as u64);
                }
                histogram
            })
        })
        .collect();
    let mut latency_us = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("valid bounds");
    for worker in workers {
        if let Ok(histogram) = worker.await {
            let _ = latency_us.add(histogram);
        }
    }
    let elapsed = started.elapsed();
    Stats { scenario, concurrency, ops: latency_us.len(), errors: errors.load(Ordering::Relaxed), elapsed, latency_us }
}

struct Echo;

#[tonic::async_trait]
impl EchoService for Echo {
    async fn echo(&self, request: tonic::Request<EchoRequest>) -> Result<tonic::Response<EchoResponse>, tonic::Status> {
        Ok(tonic::Response::new(EchoResponse { payload: request.into_inner().payload }))
    }
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|info| {
            info.lines().next().and_then(|l| l.split_whitespace().nth(1)).and_then(|kb| kb.parse::<u64>().ok())
        })
        .map(|kb| format!("{} GiB", kb / 1024 / 1024))
        .unwrap_or_default();
    format!("{cores} cores ({cpu}), {memory}")
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    // The platform gets its own runtime and threads, as it would in its own process.
    let platform_runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let load_runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let data_dir = tempfile::tempdir()?;
    let database_url = match &args.postgres {
        Some(base) => Some(load_runtime.block_on(db::create_scratch_database(base, "helpdesk_bench"))?),
        None => None,
    };
    let mut env = vec![
        ("HELPDESK_GRPC_ADDR".to_owned(), "127.0.0.1:0".to_owned()),
        ("HELPDESK_HTTP_ADDR".to_owned(), "127.0.0.1:0".to_owned()),
        ("HELPDESK_EMAIL__SMTP_ADDR".to_owned(), "127.0.0.1:0".to_owned()),
        ("HELPDESK_DATA_DIR".to_owned(), data_dir.path().display().to_string()),
        ("HELPDESK_GATEWAY__RATE_LIMIT_PER_SECOND".to_owned(), "1000000".to_owned()),
        ("HELPDESK_GATEWAY__RATE_LIMIT_BURST".to_owned(), "1000000".to_owned()),
        ("HELPDESK_TELEMETRY__LOG_FILTER".to_owned(), "warn".to_owned()),
        ("HELPDESK_DATABASE__SQLITE_SYNCHRONOUS".to_owned(), args.sqlite_synchronous.clone()),
    ];
    if let Some(url) = &database_url {
        env.push(("HELPDESK_DATABASE__URL".to_owned(), url.clone()));
        env.push(("HELPDESK_DATABASE__MAX_CONNECTIONS".to_owned(), "32".to_owned()));
    }
    let config = Config::load_from(None, env)?;
    let (platform_addrs, key, echo_addr, bare_db) = platform_runtime.block_on(async {
        let platform = Platform::build(&config).await?;
        platform.identity().ensure_tenant(DEMO_TENANT, "Demo").await?;
        let key = platform.identity().create_api_key(DEMO_TENANT, "loadgen", Role::Admin).await?.token;
        let addrs = (platform.grpc_addr(), platform.http_addr(), platform.smtp_addr());
        let (_trigger, shutdown) = helpdesk_runtime::shutdown::channel();
        tokio::spawn(async move {
            let _keep_running = _trigger;
            if let Err(error) = platform.run(shutdown).await {
                eprintln!("platform stopped: {error:#}");
            }
        });
        let echo_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let echo_addr = echo_listener.local_addr()?;
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(EchoServiceServer::new(Echo))
                .serve_with_incoming(helpdesk_runtime::grpc::incoming(echo_listener)),
        );
        let bare_db = Database::connect(&config.database, &config.data_dir, "bare_insert").await?;
        sqlx::query("CREATE TABLE IF NOT EXISTS bare_rows (id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL, payload TEXT NOT NULL, created_at BIGINT NOT NULL)")
            .execute(bare_db.writer())
            .await?;
        anyhow::Ok((addrs, key, echo_addr, bare_db))
    })?;
    let (grpc_addr, http_addr, smtp_addr) = platform_addrs;
    let backend = if args.postgres.is_some() { "PostgreSQL" } else { "SQLite" };
    println!("# helpdesk load test: {backend}, {} s per scenario, machine: {}", args.seconds, machine());
    let addrs = Addrs { grpc: grpc_addr, http: http_addr, echo: echo_addr, smtp: smtp_addr };
    let results = load_runtime.block_on(run_all(&args, addrs, key, bare_db))?;
    report(&results);
    if let (Some(base), Some(url)) = (&args.postgres, &database_url) {
        load_runtime.block_on(db::drop_scratch_database(base, url))?;
    }
    Ok(())
}

async fn channels(addr: std::net::SocketAddr, count: usize) -> anyhow::Result<Vec<Channel>> {
    let mut channels = Vec::with_capacity(count);
    for _ in 0..count {
        channels.push(
            tonic::transport::Endpoint::from_shared(format!("http://{addr}"))?.tcp_nodelay(true).connect().await?,
        );
    }
    Ok(channels)
}

/// Where the platform and the baselines listen.
struct Addrs {
    grpc: std::net::SocketAddr,
    http: std::net::SocketAddr,
    echo: std::net::SocketAddr,
    smtp: Option<std::net::SocketAddr>,
}

async fn run_all(args: &Args, addrs: Addrs, key: String, bare_db: Database) -> anyhow::Result<Vec<Stats>> {
    let Addrs { grpc: grpc_addr, http: http_addr, echo: echo_addr, smtp: smtp_addr } = addrs;
    let auth = Arc::new(format!("Bearer {key}"));
    let grpc = Arc::new(channels(grpc_addr, 4).await?);
    let echo = Arc::new(channels(echo_addr, 4).await?);
    let http = reqwest::Client::builder().pool_max_idle_per_host(256).tcp_nodelay(true).build()?;
    let base = Arc::new(format!("http://{http_addr}"));
    let customer = CustomerServiceClient::new(grpc[0].clone())
        .create_customer(outgoing(
            CreateCustomerRequest { name: "Load Test".into(), ..Default::default() },
            Some(&auth),
        ))
        .await?
        .into_inner()
        .id;
    let customer = Arc::new(customer);
    let created: Arc<Mutex<Vec<String>>> = Arc::new(Mutex::new(Vec::new()));
    let wanted = |name: &str| args.only.is_empty() || args.only.iter().any(|only| only == name);
    let mut results = Vec::new();
    let workspace = match wanted("web") {
        true => Some(web::prepare(&grpc, &base, &auth, args.web_tickets).await?),
        false => None,
    };
    for &concurrency in &args.concurrency {
        if let Some(workspace) = &workspace {
            let pages =
                web::pages(args, grpc.clone(), http.clone(), base.clone(), auth.clone(), workspace, concurrency);
            results.extend(pages.await);
        }
        if wanted("echo") {
            let echo = echo.clone();
            results.push(
                measure("echo (bare tonic)", concurrency, args, move |worker, _| {
                    let mut client = EchoServiceClient::new(echo[worker % echo.len()].clone());
                    async move {
                        client.echo(EchoRequest { payload: "ping".into() }).await?;
                        Ok(())
                    }
                })
                .await,
            );
        }
        if wanted("grpc_create") {
            let (grpc, auth, customer, created) = (grpc.clone(), auth.clone(), customer.clone(), created.clone());
            results.push(
                measure("create ticket (gRPC)", concurrency, args, move |worker, n| {
                    let mut client = TicketServiceClient::new(grpc[worker % grpc.len()].clone());
                    let request = CreateTicketRequest {
                        subject: format!("Order {n} arrived damaged / 주문 {n} 파손"),
                        description: "The box was crushed and the screen is cracked. 화면이 깨졌습니다.".into(),
                        requester_id: customer.to_string(),
                        tags: vec!["damaged".into()],
                        ..Default::default()
                    };
                    let (auth, created) = (auth.clone(), created.clone());
                    async move {
                        let ticket = client.create_ticket(outgoing(request, Some(&auth))).await?.into_inner();
                        if n % 16 == 0 {
                            created.lock().map_err(|_| anyhow::anyhow!("poisoned"))?.push(ticket.id);
                        }
                        Ok(())
                    }
                })
                .await,
            );
        }
        if wanted("rest_create") {
            let (http, base, auth, customer) = (http.clone(), base.clone(), auth.clone(), customer.clone());
            results.push(
                measure("create ticket (REST)", concurrency, args, move |_, n| {
                    let request =
                        http.post(format!("{base}/v1/tickets")).header("authorization", auth.as_str()).json(&json!({
                            "subject": format!("Order {n} arrived damaged / 주문 {n} 파손"),
                            "description": "The box was crushed and the screen is cracked. 화면이 깨졌습니다.",
                            "requester_id": customer.as_str(),
                            "tags": ["damaged"],
                        }));
                    async move {
                        let response = request.send().await?;
                        anyhow::ensure!(response.status().as_u16() == 201, "status {}", response.status());
                        response.bytes().await?;
                        Ok(())
                    }
                })
                .await,
            );
        }
        let ids: Arc<Vec<String>> = Arc::new(created.lock().map_err(|_| anyhow::anyhow!("poisoned"))?.clone());
        if wanted("grpc_get") && !ids.is_empty() {
            let (grpc, auth, ids) = (grpc.clone(), auth.clone(), ids.clone());
            results.push(
                measure("get ticket (gRPC)", concurrency, args, move |worker, n| {
                    let mut client = TicketServiceClient::new(grpc[worker % grpc.len()].clone());
                    let request =
                        outgoing(GetTicketRequest { id: ids[(n as usize * 7919) % ids.len()].clone() }, Some(&auth));
                    async move {
                        client.get_ticket(request).await?;
                        Ok(())
                    }
                })
                .await,
            );
        }
        if wanted("rest_get") && !ids.is_empty() {
            let (http, base, auth, ids) = (http.clone(), base.clone(), auth.clone(), ids.clone());
            results.push(
                measure("get ticket (REST)", concurrency, args, move |_, n| {
                    let id = &ids[(n as usize * 7919) % ids.len()];
                    let request = http.get(format!("{base}/v1/tickets/{id}")).header("authorization", auth.as_str());
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
        if wanted("grpc_list") {
            let (grpc, auth) = (grpc.clone(), auth.clone());
            results.push(
                measure("list 50 tickets (gRPC)", concurrency, args, move |worker, _| {
                    let mut client = TicketServiceClient::new(grpc[worker % grpc.len()].clone());
                    let request = outgoing(ListTicketsRequest { page_size: 50, ..Default::default() }, Some(&auth));
                    async move {
                        client.list_tickets(request).await?;
                        Ok(())
                    }
                })
                .await,
            );
        }
        if wanted("rest_list") {
            let (http, base, auth) = (http.clone(), base.clone(), auth.clone());
            results.push(
                measure("list 50 tickets (REST)", concurrency, args, move |_, _| {
                    let request =
                        http.get(format!("{base}/v1/tickets?page_size=50")).header("authorization", auth.as_str());
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
        if wanted("mail_ingest")
            && let Some(smtp) = smtp_addr
        {
            if concurrency == args.concurrency[0] {
                mail::mailbox(grpc[0].clone(), &auth).await?;
            }
            let corpus = Arc::new(mail::corpus(args.mail_count, concurrency));
            results.push(mail::bare_parse(&corpus));
            results.push(mail::ingest(smtp, grpc[0].clone(), &auth, corpus, concurrency).await?);
        }
        if wanted("imap_fetch")
            && let Some(imap) = args.imap
            && concurrency == args.concurrency[0]
        {
            results.extend(mail::imap_fetch(imap, grpc[0].clone(), &auth, args.mail_count).await?);
        }
        if wanted("mail_burst")
            && let Some(smtp) = smtp_addr
            && concurrency == args.concurrency[0]
        {
            let burst = mail::burst(smtp, grpc[0].clone(), http.clone(), &base, &auth, args.burst_count).await?;
            results.extend(burst);
        }
        if wanted("outbound")
            && let (Some(smtp), Some(relay)) = (smtp_addr, args.smtp_relay)
        {
            results.push(mail::outbound(smtp, relay, grpc[0].clone(), &auth, args.reply_count, concurrency).await?);
        }
        // Last, so that its disk activity does not weigh on the platform's scenarios.
        if wanted("db_insert") {
            let db = bare_db.clone();
            results.push(
                measure("insert (bare db row)", concurrency, args, move |_, n| {
                    let db = db.clone();
                    async move {
                        sqlx::query(
                            "INSERT INTO bare_rows (id, tenant_id, payload, created_at) VALUES ($1, $2, $3, $4)",
                        )
                        .bind(uuid::Uuid::now_v7().to_string())
                        .bind("demo")
                        .bind(format!("row {n}"))
                        .bind(n as i64)
                        .execute(db.writer())
                        .await?;
                        Ok(())
                    }
                })
                .await,
            );
            // Its checkpoints would otherwise land on the next scenario (same disk).
            if bare_db.backend() == helpdesk_runtime::db::Backend::Sqlite {
                sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)").execute(bare_db.writer()).await?;
            }
        }
    }
    Ok(results)
}

fn report(results: &[Stats]) {
    println!();
    println!("| scenario | concurrency | requests | errors | throughput (/s) | p50 (ms) | p99 (ms) |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    for stats in results {
        println!(
            "| {} | {} | {} | {} | {:.0} | {:.2} | {:.2} |",
            stats.scenario,
            stats.concurrency,
            stats.ops,
            stats.errors,
            stats.throughput(),
            stats.latency_us.value_at_quantile(0.50) as f64 / 1000.0,
            stats.latency_us.value_at_quantile(0.99) as f64 / 1000.0,
        );
    }
    println!();
    let find = |scenario: &str, concurrency: usize| {
        results.iter().find(|s| s.scenario == scenario && s.concurrency == concurrency).map(Stats::throughput)
    };
    let concurrencies: Vec<usize> = {
        let mut all: Vec<usize> = results.iter().map(|s| s.concurrency).collect();
        all.dedup();
        all
    };
    for concurrency in concurrencies {
        if let (Some(a), Some(b)) =
            (find("mail ingest (SMTP until threaded)", concurrency), find("parse mail (bare mail-parser)", concurrency))
        {
            println!("ratio at concurrency {concurrency}: mail ingest / bare parse = {:.3}", a / b);
        }
        for ours in ["create ticket (gRPC)", "create ticket (REST)"] {
            for baseline in ["echo (bare tonic)", "insert (bare db row)"] {
                if let (Some(a), Some(b)) = (find(ours, concurrency), find(baseline, concurrency)) {
                    println!("ratio at concurrency {concurrency}: {ours} / {baseline} = {:.2}", a / b);
                }
            }
        }
    }
}
