//! The knowledge base at scale, on a real database: 100,000 generated articles imported and
//! indexed, then search and suggestions at a fixed arrival rate, then a full reindex while
//! search keeps answering.
//!
//! `cargo bench -p helpdesk-knowledge --bench knowledge -- [--articles N] [--rate QPS]
//! [--seconds S] [--postgres URL]`

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use hdrhistogram::Histogram;
use helpdesk_knowledge::{Audience, Knowledge};
use helpdesk_proto::knowledge::v1 as proto;
use helpdesk_runtime::{config::DatabaseConfig, service::Service};
use tokio::sync::Mutex;

const TENANT: &str = "bench";

struct Options {
    articles: usize,
    korean: usize,
    rate: u64,
    seconds: u64,
    postgres: Option<String>,
}

fn options() -> Options {
    let mut options = Options { articles: 100_000, korean: 10_000, rate: 200, seconds: 30, postgres: None };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut number = || args.next().and_then(|n| n.parse().ok()).expect("a number");
        match arg.as_str() {
            "--articles" => options.articles = number() as usize,
            "--korean" => options.korean = number() as usize,
            "--rate" => options.rate = number(),
            "--seconds" => options.seconds = number(),
            "--postgres" => options.postgres = args.next(),
            _ => {} // cargo bench passes --bench
        }
    }
    options
}

/// A small deterministic generator (xorshift), so every run sees the same articles.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// Zipf-like: small ranks far more often than large ones.
    fn zipf(&mut self, n: usize) -> usize {
        let u = (self.next() % 1_000_000) as f64 / 1_000_000.0;
        ((n as f64).powf(u) as usize).saturating_sub(1).min(n - 1)
    }
}

const COMMON: &[&str] = &[
    "the",
    "a",
    "to",
    "my",
    "i",
    "is",
    "and",
    "of",
    "for",
    "how",
    "can",
    "do",
    "not",
    "with",
    "on",
    "in",
    "it",
    "your",
    "order",
    "card",
    "account",
    "payment",
    "refund",
    "delivery",
    "password",
    "app",
    "charge",
    "subscription",
];
const SYLLABLES: &[&str] = &[
    "ka", "lo", "mer", "tin", "sa", "ven", "dor", "pli", "qua", "ron", "ex", "bel", "fi", "gan", "stu", "zor", "mi",
    "tre",
];
const HANGUL: &[char] = &[
    '가', '나', '다', '라', '마', '바', '사', '아', '자', '차', '카', '타', '파', '하', '결', '제', '환', '불', '배',
    '송', '주', '문', '카', '드', '계', '정', '비', '밀', '번', '호', '로', '그', '인', '취', '소', '요', '청', '확',
    '인', '변',
];

struct Words {
    english: Vec<String>,
    korean: Vec<String>,
}

impl Words {
    fn new(random: &mut Random) -> Self {
        let mut english: Vec<String> = COMMON.iter().map(|word| word.to_string()).collect();
        while english.len() < 20_000 {
            let parts = 2 + random.below(2);
            english.push((0..parts).map(|_| SYLLABLES[random.below(SYLLABLES.len())]).collect());
        }
        let korean = (0..5_000)
            .map(|_| (0..2 + random.below(2)).map(|_| HANGUL[random.below(HANGUL.len())]).collect())
            .collect();
        Self { english, korean }
    }

    fn sentence(&self, random: &mut Random, korean: bool, words: usize) -> String {
        let list = if korean { &self.korean } else { &self.english };
        (0..words).map(|_| list[random.zipf(list.len())].as_str()).collect::<Vec<_>>().join(" ")
    }
}

fn article(words: &Words, random: &mut Random, korean: bool) -> proto::CreateArticleRequest {
    let title = words.sentence(random, korean, 6);
    let body = format!(
        "{}.\n\n{}.\n\n- {}\n- {}",
        words.sentence(random, korean, 60),
        words.sentence(random, korean, 50),
        words.sentence(random, korean, 8),
        words.sentence(random, korean, 8)
    );
    proto::CreateArticleRequest {
        locale: if korean { "ko" } else { "en" }.into(),
        title,
        body_markdown: body,
        category_id: format!("category-{}", random.below(50)),
        tags: vec![format!("tag-{}", random.zipf(200))],
        visibility: proto::Visibility::Public as i32,
        questions: (0..3).map(|_| words.sentence(random, korean, 8)).collect(),
        ..Default::default()
    }
}

async fn import(knowledge: &Knowledge, words: &Words, random: &mut Random, count: usize, korean: bool) -> f64 {
    let started = Instant::now();
    let mut done = 0;
    while done < count {
        let batch = (count - done).min(1_000);
        let articles = (0..batch).map(|_| article(words, random, korean)).collect();
        let request = proto::ImportArticlesRequest { articles, publish: true };
        knowledge.import_articles(TENANT, "bench", request).await.expect("import");
        done += batch;
    }
    count as f64 / started.elapsed().as_secs_f64()
}

/// A query a customer might type: a few words of a title or question, sometimes misspelt.
fn query(words: &Words, random: &mut Random, korean: bool) -> String {
    let length = 2 + random.below(3);
    let mut text = words.sentence(random, korean, length);
    if !korean && random.below(10) == 0 {
        let at = text.len() / 2;
        if text.is_char_boundary(at) && text.is_char_boundary(at + 1) {
            text.replace_range(at..at + 1, "x");
        }
    }
    text
}

#[derive(Clone, Copy)]
enum Load {
    Search,
    Suggest,
}

/// Sends `rate` requests a second for `seconds` (open loop: late responses do not slow the
/// arrivals) and returns their latencies in microseconds and the failures.
async fn drive(
    knowledge: Arc<Knowledge>,
    words: Arc<Words>,
    load: Load,
    rate: u64,
    seconds: u64,
    stop: Option<Arc<AtomicBool>>,
) -> (Histogram<u64>, u64) {
    let latencies = Arc::new(Mutex::new(Histogram::<u64>::new(3).unwrap()));
    let failures = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    let interval = Duration::from_nanos(1_000_000_000 / rate);
    let started = tokio::time::Instant::now();
    let mut random = Random(0x5eed_1234);
    for n in 0..rate * seconds {
        if stop.as_ref().is_some_and(|stop| stop.load(Ordering::Relaxed)) {
            break;
        }
        tokio::time::sleep_until(started + interval * n as u32).await;
        let korean = random.below(5) == 0;
        let text = query(&words, &mut random, korean);
        let body = words.sentence(&mut random, korean, 30);
        let (knowledge, latencies, failures) = (knowledge.clone(), latencies.clone(), failures.clone());
        tasks.push(tokio::spawn(async move {
            let sent = Instant::now();
            let ok = match load {
                Load::Search => {
                    let request = proto::SearchRequest { query: text, limit: 10, ..Default::default() };
                    knowledge.search(TENANT, Audience::Public, request).await.is_ok()
                }
                Load::Suggest => {
                    let request = proto::SuggestRequest { subject: text, body, ..Default::default() };
                    knowledge.suggest(TENANT, Audience::Staff, request).await.is_ok()
                }
            };
            let micros = sent.elapsed().as_micros() as u64;
            latencies.lock().await.record(micros.max(1)).unwrap();
            if !ok {
                failures.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let histogram = latencies.lock().await.clone();
    (histogram, failures.load(Ordering::Relaxed))
}

fn report(name: &str, latencies: &Histogram<u64>, failures: u64) {
    let ms = |q: f64| latencies.value_at_quantile(q) as f64 / 1000.0;
    println!(
        "{name}: {} requests, {failures} failed; p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        latencies.len(),
        ms(0.5),
        ms(0.99),
        latencies.max() as f64 / 1000.0
    );
}

#[tokio::main]
async fn main() {
    let options = options();
    let dir = tempfile::tempdir().unwrap();
    let url = match &options.postgres {
        Some(base) => Some(helpdesk_runtime::db::create_scratch_database(base, "helpdesk_bench").await.unwrap()),
        None => None,
    };
    let config = DatabaseConfig::new(url.clone(), 8);
    let base = helpdesk_knowledge::open_database(&config, dir.path()).await.unwrap();
    let knowledge = base.knowledge().clone();
    let background = tokio::spawn(base.run(helpdesk_runtime::shutdown::channel().1));
    let mut random = Random(0x1234_5678_9abc_def1);
    let words = Arc::new(Words::new(&mut random));
    println!(
        "backend: {}; {} English and {} Korean articles, one tenant",
        if url.is_some() { "PostgreSQL" } else { "SQLite" },
        options.articles,
        options.korean
    );

    let rate = import(&knowledge, &words, &mut random, options.articles, false).await;
    println!("import and index (batches of 1,000, published): {rate:.0} articles/s");
    let rate = import(&knowledge, &words, &mut random, options.korean, true).await;
    println!("import and index, Korean: {rate:.0} articles/s");

    let started = Instant::now();
    knowledge.train_suggestions(TENANT).await.unwrap();
    println!("suggestion models trained on every article: {:.1} s", started.elapsed().as_secs_f64());

    let (search, failed) =
        drive(knowledge.clone(), words.clone(), Load::Search, options.rate, options.seconds, None).await;
    report(&format!("search at {}/s", options.rate), &search, failed);
    let (suggest, failed) =
        drive(knowledge.clone(), words.clone(), Load::Suggest, options.rate, options.seconds, None).await;
    report(&format!("suggestions at {}/s", options.rate), &suggest, failed);

    // A full reindex while search keeps answering.
    let stop = Arc::new(AtomicBool::new(false));
    let during =
        tokio::spawn(drive(knowledge.clone(), words.clone(), Load::Search, options.rate, 600, Some(stop.clone())));
    tokio::time::sleep(Duration::from_secs(1)).await;
    let reindex = knowledge.reindex(TENANT).await.unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::Relaxed);
    let (search, failed) = during.await.unwrap();
    println!(
        "full reindex: {} articles in {:.1} s ({:.0} articles/s)",
        reindex.articles,
        reindex.seconds,
        reindex.articles as f64 / reindex.seconds
    );
    report(&format!("search at {}/s during the reindex", options.rate), &search, failed);

    background.abort();
    if let (Some(base), Some(url)) = (&options.postgres, &url) {
        helpdesk_runtime::db::drop_scratch_database(base, url).await.unwrap();
    }
}
