//! Open-loop mixed load for `textwatch serve` (run by bench/soak.sh).
//!
//! ```text
//! textwatch-loadgen --url http://127.0.0.1:PORT --tokens T1,T2,... \
//!     [--rate 5000] [--seconds 600] [--batch-every 4] [--batch 50] \
//!     [--connections 64] [--server-pid PID] [--json FILE]
//! ```
//!
//! Request k is due at start + k / rate, whatever happened to the requests
//! before it. Every `batch-every`-th request is an ingest batch (`POST
//! /v1/messages`, NDJSON, `batch` new messages with unique ids and times
//! that move forward like a live feed); the others are inline checks
//! (`POST /v1/check`). Latency is measured from the due time, so a request
//! that waited for a free connection counts its wait (no coordinated
//! omission). Tokens are used round-robin by connection, so that the
//! per-token rate limit does not cap the total.
//!
//! Every 10 s a line: requests due and answered, the rate answered, status
//! classes, p50/p99 of the window and the server's resident memory. At the
//! end the totals, and with `--json` the same as a JSON object.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

const USAGE: &str = "usage: textwatch-loadgen --url http://HOST:PORT --tokens T1,T2,... [--rate 5000] [--seconds 600] \
[--batch-every 4] [--batch 50] [--connections 64] [--server-pid PID] [--json FILE]";

#[derive(Clone)]
struct Args {
    addr: String,
    tokens: Vec<String>,
    rate: f64,
    seconds: u64,
    batch_every: u64,
    batch: u64,
    connections: usize,
    server_pid: Option<u32>,
    json: Option<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        addr: String::new(),
        tokens: Vec::new(),
        rate: 5000.0,
        seconds: 600,
        batch_every: 4,
        batch: 50,
        connections: 64,
        server_pid: None,
        json: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value\n{USAGE}"));
        let num = |v: String| v.parse::<u64>().map_err(|_| format!("{flag}: {v:?} is not a whole number"));
        match flag.as_str() {
            "--url" => {
                let u = value()?;
                a.addr = u
                    .strip_prefix("http://")
                    .ok_or_else(|| format!("--url {u:?}: only http:// URLs"))?
                    .trim_end_matches('/')
                    .to_owned();
            }
            "--tokens" => a.tokens = value()?.split(',').filter(|t| !t.is_empty()).map(str::to_owned).collect(),
            "--rate" => a.rate = num(value()?)? as f64,
            "--seconds" => a.seconds = num(value()?)?,
            "--batch-every" => a.batch_every = num(value()?)?.max(1),
            "--batch" => a.batch = num(value()?)?.max(1),
            "--connections" => a.connections = num(value()?)?.max(1) as usize,
            "--server-pid" => a.server_pid = Some(num(value()?)? as u32),
            "--json" => a.json = Some(value()?),
            "-h" | "--help" => return Err(USAGE.to_owned()),
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    if a.addr.is_empty() || a.tokens.is_empty() {
        return Err(format!("--url and --tokens are required\n{USAGE}"));
    }
    if a.rate <= 0.0 {
        return Err("--rate must be above 0".to_owned());
    }
    Ok(a)
}

/// What came back for one request.
enum Answer {
    Status { code: u16, retry_after: bool },
    Transport(String),
}

/// Counts of one stretch of the run.
#[derive(Default)]
struct Tally {
    due: u64,
    ok: u64,
    limited: u64,
    limited_without_retry_after: u64,
    client_errors: u64,
    server_errors: u64,
    transport_errors: u64,
    messages_acknowledged: u64,
    latencies_us: Vec<u32>,
    statuses: HashMap<u16, u64>,
}

impl Tally {
    fn add(&mut self, answer: &Answer, latency: Duration, messages: u64) {
        self.due += 1;
        match answer {
            Answer::Status { code, retry_after } => {
                *self.statuses.entry(*code).or_default() += 1;
                match code {
                    200..=299 => {
                        self.ok += 1;
                        self.messages_acknowledged += messages;
                        self.latencies_us.push(latency.as_micros().min(u32::MAX as u128) as u32);
                    }
                    429 => {
                        self.limited += 1;
                        if !retry_after {
                            self.limited_without_retry_after += 1;
                        }
                    }
                    400..=499 => self.client_errors += 1,
                    _ => self.server_errors += 1,
                }
            }
            Answer::Transport(_) => self.transport_errors += 1,
        }
    }

    fn merge(&mut self, o: Tally) {
        self.due += o.due;
        self.ok += o.ok;
        self.limited += o.limited;
        self.limited_without_retry_after += o.limited_without_retry_after;
        self.client_errors += o.client_errors;
        self.server_errors += o.server_errors;
        self.transport_errors += o.transport_errors;
        self.messages_acknowledged += o.messages_acknowledged;
        self.latencies_us.extend(o.latencies_us);
        for (k, v) in o.statuses {
            *self.statuses.entry(k).or_default() += v;
        }
    }
}

/// The q-quantile of sorted latencies, in milliseconds.
fn quantile_ms(sorted: &[u32], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 * q) as usize).min(sorted.len() - 1);
    f64::from(sorted[i]) / 1000.0
}

fn rss_mib(pid: Option<u32>) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{}/status", pid?)).ok()?;
    let kib: u64 = s.lines().find(|l| l.starts_with("VmRSS:"))?.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024)
}

/// The body of request `k`: (path, content type, body, messages in it).
fn request_body(a: &Args, k: u64) -> (&'static str, &'static str, String, u64) {
    if (k + 1).is_multiple_of(a.batch_every) {
        // Message time runs with the run's clock from the morning of
        // 2020-11-04, so the feed moves forward as a live one does.
        let ts = 1_604_502_000 + (k as f64 / a.rate) as i64;
        let mut body = String::with_capacity(a.batch as usize * 200);
        for i in 0..a.batch {
            let m = k * a.batch + i;
            let text = if i % 2 == 0 {
                format!("USPS: your package US{m:09} is held. Pay the fee at https://usps-{}.top/p{m}", m % 7)
            } else {
                format!(
                    "Hi, this is Dana with Philly Votes Together. Polls close at 8pm! Ref {m}. Reply STOP to opt out"
                )
            };
            body.push_str(&format!(
                "{{\"id\":\"load-{m}\",\"ts\":{ts},\"from\":\"+1215555{:04}\",\"to\":\"+1267{:07}\",\"body\":\"{text}\"}}\n",
                m % 300,
                m % 9_999_999
            ));
        }
        ("/v1/messages", "application/x-ndjson", body, a.batch)
    } else {
        let body = format!(
            "{{\"ts\":\"2020-11-04T15:20:00Z\",\"from\":\"+1215556{:04}\",\"body\":\"Your code is {k}. Pay at https://usps-{}.top/p{k} today\"}}",
            k % 1000,
            k % 5
        );
        ("/v1/check", "application/json", body, 0)
    }
}

/// One HTTP/1.1 exchange on a kept-alive connection; `None` afterwards
/// when the server closed it.
async fn exchange(conn: &mut Option<BufReader<TcpStream>>, addr: &str, head: &str, body: &str) -> Answer {
    if conn.is_none() {
        match TcpStream::connect(addr).await {
            Ok(s) => {
                let _ = s.set_nodelay(true);
                *conn = Some(BufReader::new(s));
            }
            Err(e) => return Answer::Transport(format!("connect: {e}")),
        }
    }
    let Some(c) = conn.as_mut() else { return Answer::Transport("no connection".into()) };
    let r = async {
        c.get_mut().write_all(head.as_bytes()).await?;
        c.get_mut().write_all(body.as_bytes()).await?;
        read_response(c).await
    }
    .await;
    match r {
        Ok((code, retry_after, close)) => {
            if close {
                *conn = None;
            }
            Answer::Status { code, retry_after }
        }
        Err(e) => {
            *conn = None;
            Answer::Transport(e.to_string())
        }
    }
}

/// Reads one response: (status, whether it had Retry-After, whether the
/// server closes the connection).
async fn read_response(c: &mut BufReader<TcpStream>) -> std::io::Result<(u16, bool, bool)> {
    let bad = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_owned());
    let mut line = String::new();
    if c.read_line(&mut line).await? == 0 {
        return Err(bad("connection closed before an answer"));
    }
    let code: u16 =
        line.split_whitespace().nth(1).and_then(|s| s.parse().ok()).ok_or_else(|| bad("bad status line"))?;
    let (mut length, mut chunked, mut retry_after, mut close) = (0usize, false, false, false);
    loop {
        line.clear();
        if c.read_line(&mut line).await? == 0 {
            return Err(bad("connection closed in the headers"));
        }
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        let Some((name, value)) = l.split_once(':') else { continue };
        let value = value.trim();
        match name.to_ascii_lowercase().as_str() {
            "content-length" => length = value.parse().map_err(|_| bad("bad content-length"))?,
            "transfer-encoding" => chunked = value.eq_ignore_ascii_case("chunked"),
            "retry-after" => retry_after = true,
            "connection" => close = value.eq_ignore_ascii_case("close"),
            _ => {}
        }
    }
    if chunked {
        loop {
            line.clear();
            c.read_line(&mut line).await?;
            let size = usize::from_str_radix(line.trim_end().split(';').next().unwrap_or(""), 16)
                .map_err(|_| bad("bad chunk size"))?;
            let mut skip = vec![0u8; size + 2];
            c.read_exact(&mut skip).await?;
            if size == 0 {
                break;
            }
        }
    } else {
        let mut skip = vec![0u8; length];
        c.read_exact(&mut skip).await?;
    }
    Ok((code, retry_after, close))
}

struct Shared {
    args: Args,
    next: AtomicU64,
    start: Instant,
    deadline: Instant,
    window: Mutex<Tally>,
    errors: Mutex<HashMap<String, u64>>,
}

async fn client(shared: Arc<Shared>, id: usize) -> Tally {
    let a = &shared.args;
    let token = &a.tokens[id % a.tokens.len()];
    let mut conn = None;
    let mut mine = Tally::default();
    loop {
        let k = shared.next.fetch_add(1, Ordering::Relaxed);
        let due = shared.start + Duration::from_secs_f64(k as f64 / a.rate);
        if due >= shared.deadline {
            break;
        }
        tokio::time::sleep_until(due.into()).await;
        let (path, ctype, body, messages) = request_body(a, k);
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {token}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\n\r\n",
            a.addr,
            body.len()
        );
        let answer = exchange(&mut conn, &a.addr, &head, &body).await;
        let latency = due.elapsed();
        if let Answer::Transport(e) = &answer {
            *shared.errors.lock().unwrap_or_else(|p| p.into_inner()).entry(e.clone()).or_default() += 1;
        }
        shared.window.lock().unwrap_or_else(|p| p.into_inner()).add(&answer, latency, messages);
        mine.add(&answer, latency, messages);
    }
    // Only the totals are needed from here: latencies go with them.
    mine
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("a runtime");
    rt.block_on(run(args));
}

async fn run(args: Args) {
    let start = Instant::now() + Duration::from_millis(200);
    let shared = Arc::new(Shared {
        deadline: start + Duration::from_secs(args.seconds),
        args: args.clone(),
        next: AtomicU64::new(0),
        start,
        window: Mutex::new(Tally::default()),
        errors: Mutex::new(HashMap::new()),
    });
    println!(
        "load: {} requests/s for {} s, one in {} an ingest batch of {} messages, {} connections, {} tokens",
        args.rate,
        args.seconds,
        args.batch_every,
        args.batch,
        args.connections,
        args.tokens.len()
    );
    let clients: Vec<_> = (0..args.connections).map(|i| tokio::spawn(client(shared.clone(), i))).collect();
    // Every second the server's memory; every 10 s a line.
    let mut rss: Vec<u64> = Vec::new();
    let mut tick = tokio::time::interval_at(start.into(), Duration::from_secs(1));
    tick.tick().await;
    let mut second = 0u64;
    while Instant::now() < shared.deadline {
        tick.tick().await;
        second += 1;
        if let Some(m) = rss_mib(args.server_pid) {
            rss.push(m);
        }
        if second.is_multiple_of(10) {
            let mut w = std::mem::take(&mut *shared.window.lock().unwrap_or_else(|p| p.into_inner()));
            w.latencies_us.sort_unstable();
            println!(
                "{second:>5} s  answered {:>6}/s  2xx {:>6}  429 {:>5}  4xx {:>3}  5xx {:>3}  transport {:>3}  p50 {:>7.3} ms  p99 {:>8.3} ms  server {} MiB",
                w.ok / 10,
                w.ok,
                w.limited,
                w.client_errors,
                w.server_errors,
                w.transport_errors,
                quantile_ms(&w.latencies_us, 0.5),
                quantile_ms(&w.latencies_us, 0.99),
                rss.last().map_or("?".to_owned(), |m| m.to_string()),
            );
        }
    }
    let mut total = Tally::default();
    for c in clients {
        if let Ok(t) = c.await {
            total.merge(t);
        }
    }
    total.latencies_us.sort_unstable();
    let l = &total.latencies_us;
    let third = (rss.len() / 3).max(1);
    let peak = |s: &[u64]| s.iter().copied().max().unwrap_or(0);
    let (first, last) = if rss.is_empty() { (0, 0) } else { (peak(&rss[..third]), peak(&rss[rss.len() - third..])) };
    let secs = args.seconds as f64;
    let mut statuses: Vec<_> = total.statuses.iter().collect();
    statuses.sort();
    println!(
        "total: {} due, {} answered 2xx ({:.0}/s), {} messages acknowledged ({:.0}/s); 429 {} ({} without Retry-After); other 4xx {}; 5xx {}; transport errors {}",
        total.due,
        total.ok,
        total.ok as f64 / secs,
        total.messages_acknowledged,
        total.messages_acknowledged as f64 / secs,
        total.limited,
        total.limited_without_retry_after,
        total.client_errors,
        total.server_errors,
        total.transport_errors
    );
    println!(
        "latency from due time (2xx): p50 {:.3} ms  p90 {:.3}  p99 {:.3}  p99.9 {:.3}  max {:.3}",
        quantile_ms(l, 0.5),
        quantile_ms(l, 0.9),
        quantile_ms(l, 0.99),
        quantile_ms(l, 0.999),
        quantile_ms(l, 1.0)
    );
    println!(
        "server memory: first third peak {first} MiB, last third peak {last} MiB, end {} MiB",
        rss.last().unwrap_or(&0)
    );
    for (e, n) in shared.errors.lock().unwrap_or_else(|p| p.into_inner()).iter() {
        println!("transport error x{n}: {e}");
    }
    if let Some(path) = &args.json {
        let statuses: Vec<String> = statuses.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
        let rss_list: Vec<String> = rss.iter().map(u64::to_string).collect();
        let json = format!(
            "{{\"rate\":{},\"seconds\":{},\"batch_every\":{},\"batch\":{},\"due\":{},\"ok\":{},\"messages_acknowledged\":{},\"limited\":{},\"limited_without_retry_after\":{},\"client_errors\":{},\"server_errors\":{},\"transport_errors\":{},\"statuses\":{{{}}},\"p50_ms\":{},\"p90_ms\":{},\"p99_ms\":{},\"p999_ms\":{},\"max_ms\":{},\"rss_mib\":[{}]}}\n",
            args.rate,
            args.seconds,
            args.batch_every,
            args.batch,
            total.due,
            total.ok,
            total.messages_acknowledged,
            total.limited,
            total.limited_without_retry_after,
            total.client_errors,
            total.server_errors,
            total.transport_errors,
            statuses.join(","),
            quantile_ms(l, 0.5),
            quantile_ms(l, 0.9),
            quantile_ms(l, 0.99),
            quantile_ms(l, 0.999),
            quantile_ms(l, 1.0),
            rss_list.join(",")
        );
        if let Err(e) = std::fs::write(path, json) {
            eprintln!("could not write {path}: {e}");
        }
    }
    let failed = total.server_errors + total.transport_errors + total.limited_without_retry_after;
    std::process::exit(if failed > 0 { 1 } else { 0 });
}
