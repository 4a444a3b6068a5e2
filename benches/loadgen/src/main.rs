//! Load generator for invreq's benchmarks, closed or open loop.
//!
//! Closed loop (the default): each of `--connections` threads holds one connection and
//! sends requests one after the other for `--duration` seconds (after `--warmup` seconds
//! that are not counted), timing each round trip: throughput at a given concurrency.
//!
//! Open loop (`--rate R`): requests are due at a fixed rate, R per second in all, the i-th
//! at start + i/R whatever the server is doing. Each thread takes the next due request,
//! waits for its time (if it is not already late), sends it on its connection and times it
//! **from the time it was due**, not from when it was sent: when the server falls behind,
//! requests wait for a free connection and that wait counts, so a stall shows in the
//! percentiles instead of silently lowering the offered rate (coordinated omission). Every
//! request due inside the measured window is sent and counted, however late.
//!
//! Python clients would be the bottleneck at these rates, and wrk cannot speak CLN's
//! unix-socket framing, hence this small tool (std only).
//!
//! Targets: `http://127.0.0.1:PORT/rpc` (HTTP/1.1 keep-alive, Content-Length framing, plus
//! any `--header`, e.g. the rune) or
//! `unix:/path/to/lightning-rpc` (JSON objects back to back, replies end with "\n\n"). Several
//! `--target`s are used round-robin by connection (two instances on one database).
//!
//! The request body comes from `--body FILE`; the text `{n}` in it is replaced by a counter
//! unique to each request, so creations differ. A reply counts as an error unless it holds
//! `"result"`. Prints one JSON object: requests, errors, seconds, rps,
//! p50/p90/p99/p99.9/max (µs), and with `--rate` the offered rate and how many requests
//! were sent later than 1 ms after they were due.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

struct Options {
    targets: Vec<String>,
    connections: usize,
    duration: f64,
    warmup: f64,
    body: String,
    headers: Vec<String>,
    /// Open loop: requests per second offered, in all connections together.
    rate: Option<f64>,
}

fn usage() -> ! {
    eprintln!(
        "usage: invreq-loadgen --target URL [--target URL ...] --body FILE \
         [--connections N] [--duration SECS] [--warmup SECS] [--header 'Name: value' ...] \
         [--rate REQUESTS_PER_SECOND]"
    );
    std::process::exit(2)
}

fn parse_args() -> Options {
    let mut o = Options {
        targets: Vec::new(),
        connections: 1,
        duration: 5.0,
        warmup: 1.0,
        body: String::new(),
        headers: Vec::new(),
        rate: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let v = args.next().unwrap_or_else(|| usage());
        match a.as_str() {
            "--target" => o.targets.push(v),
            "--header" => o.headers.push(v),
            "--connections" => o.connections = v.parse().unwrap_or_else(|_| usage()),
            "--duration" => o.duration = v.parse().unwrap_or_else(|_| usage()),
            "--warmup" => o.warmup = v.parse().unwrap_or_else(|_| usage()),
            "--rate" => o.rate = Some(v.parse().unwrap_or_else(|_| usage())),
            "--body" => {
                o.body = std::fs::read_to_string(&v).unwrap_or_else(|e| {
                    eprintln!("--body {v}: {e}");
                    std::process::exit(2)
                })
            }
            _ => usage(),
        }
    }
    let bad_rate = o.rate.is_some_and(|r| !(r.is_finite() && r > 0.0));
    if o.targets.is_empty() || o.body.is_empty() || o.connections == 0 || bad_rate {
        usage()
    }
    o
}

/// One client connection speaking one of the two framings.
enum Conn {
    Http { reader: BufReader<TcpStream>, host: String, path: String, extra: String },
    Unix { reader: BufReader<UnixStream> },
}

impl Conn {
    fn open(target: &str, headers: &[String]) -> std::io::Result<Conn> {
        if let Some(path) = target.strip_prefix("unix:") {
            let s = UnixStream::connect(path)?;
            return Ok(Conn::Unix { reader: BufReader::with_capacity(1 << 16, s) });
        }
        let rest = target.strip_prefix("http://").ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "target must be http:// or unix:")
        })?;
        let (host, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let s = TcpStream::connect(host)?;
        s.set_nodelay(true)?;
        Ok(Conn::Http {
            reader: BufReader::with_capacity(1 << 16, s),
            host: host.to_string(),
            path: path.to_string(),
            extra: headers.iter().map(|h| format!("{h}\r\n")).collect(),
        })
    }

    /// Sends `body`, returns the reply body.
    fn call(&mut self, body: &[u8], reply: &mut Vec<u8>) -> std::io::Result<()> {
        reply.clear();
        match self {
            Conn::Unix { reader } => {
                reader.get_mut().write_all(body)?;
                // Replies end with a blank line; JSON output never holds a raw "\n\n".
                loop {
                    let n = reader.read_until(b'\n', reply)?;
                    if n == 0 {
                        return Err(std::io::ErrorKind::UnexpectedEof.into());
                    }
                    if reply.ends_with(b"\n\n") {
                        return Ok(());
                    }
                }
            }
            Conn::Http { reader, host, path, extra } => {
                // Head and body in one write, as HTTP clients send a small request
                // (Python's http.client, curl): two writes would cost the server a second
                // read per request that no real client makes it pay.
                let mut request = format!(
                    "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n\
                     {extra}Content-Length: {}\r\n\r\n",
                    body.len()
                )
                .into_bytes();
                request.extend_from_slice(body);
                reader.get_mut().write_all(&request)?;
                let mut length = None;
                let mut chunked = false;
                let mut line = String::new();
                loop {
                    line.clear();
                    if reader.read_line(&mut line)? == 0 {
                        return Err(std::io::ErrorKind::UnexpectedEof.into());
                    }
                    if line == "\r\n" {
                        break;
                    }
                    let lower = line.to_ascii_lowercase();
                    if let Some(v) = lower.strip_prefix("content-length:") {
                        length = v.trim().parse::<usize>().ok();
                    }
                    if let Some(v) = lower.strip_prefix("transfer-encoding:") {
                        chunked = v.trim() == "chunked";
                    }
                }
                if chunked {
                    // A reply written as it is made (a batch, a list): chunks until size 0.
                    let bad = || std::io::Error::new(std::io::ErrorKind::InvalidData, "bad chunk");
                    loop {
                        line.clear();
                        reader.read_line(&mut line)?;
                        let size = line.trim().split(';').next().unwrap_or("");
                        let n = usize::from_str_radix(size, 16).map_err(|_| bad())?;
                        if n == 0 {
                            loop {
                                line.clear();
                                if reader.read_line(&mut line)? == 0 || line == "\r\n" {
                                    return Ok(());
                                }
                            }
                        }
                        let start = reply.len();
                        reply.resize(start + n, 0);
                        reader.read_exact(&mut reply[start..])?;
                        line.clear();
                        reader.read_line(&mut line)?;
                    }
                }
                let n = length.ok_or_else(|| {
                    std::io::Error::new(std::io::ErrorKind::InvalidData, "no content-length")
                })?;
                reply.resize(n, 0);
                reader.read_exact(reply)
            }
        }
    }
}

fn percentile(sorted: &[u32], p: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

/// What one thread hands back: latencies of the counted successes (µs), errors, and (open
/// loop) how many requests it sent more than 1 ms after they were due.
type Outcome = (Vec<u32>, u64, u64);

/// The shared state of a run: the closed loop's flags, and the counter that numbers
/// requests (the `{n}` of the body; in the open loop, also the slot of the schedule).
struct Run {
    stop: AtomicBool,
    counting: AtomicBool,
    counter: AtomicU64,
}

fn body_for(template: &str, n: u64) -> String {
    if template.contains("{n}") {
        template.replace("{n}", &n.to_string())
    } else {
        template.to_string()
    }
}

/// Sends one request and sorts its outcome: a latency, or an error (after which the
/// connection is opened again).
fn one(conn: &mut Conn, target: &str, headers: &[String], body: &str, reply: &mut Vec<u8>) -> bool {
    match conn.call(body.as_bytes(), reply) {
        Ok(()) => reply.windows(8).any(|w| w == b"\"result\""),
        Err(_) => {
            match Conn::open(target, headers) {
                Ok(c) => *conn = c,
                Err(_) => std::thread::sleep(Duration::from_millis(10)),
            }
            false
        }
    }
}

fn micros(d: Duration) -> u32 {
    d.as_micros().min(u32::MAX as u128) as u32
}

/// Closed loop: one request after the other, each timed from its send.
fn closed(run: &Run, conn: &mut Conn, target: &str, headers: &[String], template: &str) -> Outcome {
    let mut latencies: Vec<u32> = Vec::with_capacity(1 << 16);
    let mut errors = 0u64;
    let mut reply = Vec::with_capacity(4096);
    while !run.stop.load(Ordering::Relaxed) {
        let body = body_for(template, run.counter.fetch_add(1, Ordering::Relaxed));
        let t0 = Instant::now();
        let ok = one(conn, target, headers, &body, &mut reply);
        let us = micros(t0.elapsed());
        if !run.counting.load(Ordering::Relaxed) {
            continue;
        }
        if ok {
            latencies.push(us)
        } else {
            errors += 1
        }
    }
    (latencies, errors, 0)
}

/// Open loop: request i is due at `start + i / rate`; it is timed from then. Requests due
/// in the warm-up are sent but not counted; every request due before `end` is sent and
/// counted, late or not (the last ones may finish after `end`), unless the run overstays
/// `end` by `GIVE_UP`, when the rest are counted as errors.
#[allow(clippy::too_many_arguments)]
fn open_loop(
    run: &Run,
    conn: &mut Conn,
    target: &str,
    headers: &[String],
    template: &str,
    start: Instant,
    interval: Duration,
    measured_from: Instant,
    end: Instant,
) -> Outcome {
    const GIVE_UP: Duration = Duration::from_secs(30);
    let mut latencies: Vec<u32> = Vec::with_capacity(1 << 16);
    let (mut errors, mut late) = (0u64, 0u64);
    let mut reply = Vec::with_capacity(4096);
    loop {
        let n = run.counter.fetch_add(1, Ordering::Relaxed);
        let due = start + interval.mul_f64(n as f64);
        if due >= end {
            break;
        }
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        } else if now > end + GIVE_UP {
            errors += u64::from(due >= measured_from);
            continue;
        } else if now - due > Duration::from_millis(1) && due >= measured_from {
            late += 1;
        }
        let ok = one(conn, target, headers, &body_for(template, n), &mut reply);
        if due < measured_from {
            continue;
        }
        if ok {
            latencies.push(micros(due.elapsed()))
        } else {
            errors += 1
        }
    }
    (latencies, errors, late)
}

fn main() {
    let o = parse_args();
    let run = Arc::new(Run {
        stop: AtomicBool::new(false),
        counting: AtomicBool::new(false),
        counter: AtomicU64::new(0),
    });
    let barrier = Arc::new(Barrier::new(o.connections + 1));
    // The open loop's schedule, fixed before any thread starts sending.
    let schedule = Arc::new(std::sync::OnceLock::<(Instant, Instant, Instant)>::new());
    let interval = Duration::from_secs_f64(1.0 / o.rate.unwrap_or(1.0));
    let mut handles = Vec::new();
    for c in 0..o.connections {
        let target = o.targets[c % o.targets.len()].clone();
        let template = o.body.clone();
        let headers = o.headers.clone();
        let (run, barrier, schedule) = (run.clone(), barrier.clone(), schedule.clone());
        let open = o.rate.is_some();
        handles.push(std::thread::spawn(move || -> Outcome {
            let conn = Conn::open(&target, &headers);
            barrier.wait();
            let mut conn = match conn {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("connect {target}: {e}");
                    return (Vec::new(), 1, 0);
                }
            };
            if open {
                barrier.wait(); // the schedule is set
                let &(start, from, end) = schedule.get().expect("schedule set");
                open_loop(&run, &mut conn, &target, &headers, &template, start, interval, from, end)
            } else {
                closed(&run, &mut conn, &target, &headers, &template)
            }
        }));
    }
    barrier.wait();
    let seconds;
    if o.rate.is_some() {
        let start = Instant::now() + Duration::from_millis(10);
        let from = start + Duration::from_secs_f64(o.warmup);
        let end = from + Duration::from_secs_f64(o.duration);
        schedule.set((start, from, end)).expect("set once");
        barrier.wait();
        seconds = o.duration;
    } else {
        std::thread::sleep(Duration::from_secs_f64(o.warmup));
        run.counting.store(true, Ordering::Relaxed);
        let t0 = Instant::now();
        std::thread::sleep(Duration::from_secs_f64(o.duration));
        run.counting.store(false, Ordering::Relaxed);
        seconds = t0.elapsed().as_secs_f64();
        run.stop.store(true, Ordering::Relaxed);
    }
    let mut all: Vec<u32> = Vec::new();
    let (mut errors, mut late) = (0, 0);
    for h in handles {
        let (l, e, z) = h.join().expect("worker panicked");
        all.extend(l);
        errors += e;
        late += z;
    }
    all.sort_unstable();
    let open = match o.rate {
        Some(r) => format!(",\"offered_rps\":{r:.1},\"late\":{late}"),
        None => String::new(),
    };
    println!(
        "{{\"requests\":{},\"errors\":{},\"seconds\":{:.3},\"rps\":{:.1},\"p50_us\":{},\
         \"p90_us\":{},\"p99_us\":{},\"p999_us\":{},\"max_us\":{},\"connections\":{}{}}}",
        all.len(),
        errors,
        seconds,
        all.len() as f64 / seconds,
        percentile(&all, 0.50),
        percentile(&all, 0.90),
        percentile(&all, 0.99),
        percentile(&all, 0.999),
        all.last().copied().unwrap_or(0),
        o.connections,
        open
    );
}
