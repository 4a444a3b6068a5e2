//! Closed-loop load generator for invreq's benchmarks.
//!
//! Each of `--connections` threads holds one connection and sends requests one after the
//! other for `--duration` seconds (after `--warmup` seconds that are not counted), timing
//! each round trip. Python clients would be the bottleneck at these rates, and wrk cannot
//! speak CLN's unix-socket framing, hence this small tool (std only).
//!
//! Targets: `http://127.0.0.1:PORT/rpc` (HTTP/1.1 keep-alive, Content-Length framing, plus
//! any `--header`, e.g. the rune) or
//! `unix:/path/to/lightning-rpc` (JSON objects back to back, replies end with "\n\n"). Several
//! `--target`s are used round-robin by connection (two instances on one database).
//!
//! The request body comes from `--body FILE`; the text `{n}` in it is replaced by a counter
//! unique to each request, so creations differ. A reply counts as an error unless it holds
//! `"result"`. Prints one JSON object: requests, errors, seconds, rps, p50/p90/p99/max (µs).

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
}

fn usage() -> ! {
    eprintln!(
        "usage: invreq-loadgen --target URL [--target URL ...] --body FILE \
         [--connections N] [--duration SECS] [--warmup SECS] [--header 'Name: value' ...]"
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
            "--body" => {
                o.body = std::fs::read_to_string(&v).unwrap_or_else(|e| {
                    eprintln!("--body {v}: {e}");
                    std::process::exit(2)
                })
            }
            _ => usage(),
        }
    }
    if o.targets.is_empty() || o.body.is_empty() || o.connections == 0 {
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

fn main() {
    let o = parse_args();
    let stop = Arc::new(AtomicBool::new(false));
    let counting = Arc::new(AtomicBool::new(false));
    let counter = Arc::new(AtomicU64::new(0));
    let barrier = Arc::new(Barrier::new(o.connections + 1));
    let mut handles = Vec::new();
    for c in 0..o.connections {
        let target = o.targets[c % o.targets.len()].clone();
        let template = o.body.clone();
        let headers = o.headers.clone();
        let (stop, counting, counter, barrier) =
            (stop.clone(), counting.clone(), counter.clone(), barrier.clone());
        handles.push(std::thread::spawn(move || {
            let conn = Conn::open(&target, &headers);
            barrier.wait();
            let mut conn = match conn {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("connect {target}: {e}");
                    return (Vec::new(), 1u64);
                }
            };
            let mut latencies: Vec<u32> = Vec::with_capacity(1 << 16);
            let mut errors = 0u64;
            let mut reply = Vec::with_capacity(4096);
            let templated = template.contains("{n}");
            while !stop.load(Ordering::Relaxed) {
                let n = counter.fetch_add(1, Ordering::Relaxed);
                let body = if templated {
                    template.replace("{n}", &n.to_string())
                } else {
                    template.clone()
                };
                let t0 = Instant::now();
                let ok = conn.call(body.as_bytes(), &mut reply);
                let us = t0.elapsed().as_micros().min(u32::MAX as u128) as u32;
                if !counting.load(Ordering::Relaxed) {
                    continue;
                }
                match ok {
                    Ok(()) if reply.windows(8).any(|w| w == b"\"result\"") => latencies.push(us),
                    Ok(()) => errors += 1,
                    Err(_) => {
                        errors += 1;
                        match Conn::open(&target, &headers) {
                            Ok(c) => conn = c,
                            Err(_) => std::thread::sleep(Duration::from_millis(10)),
                        }
                    }
                }
            }
            (latencies, errors)
        }));
    }
    barrier.wait();
    std::thread::sleep(Duration::from_secs_f64(o.warmup));
    counting.store(true, Ordering::Relaxed);
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_secs_f64(o.duration));
    counting.store(false, Ordering::Relaxed);
    let seconds = t0.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let mut all: Vec<u32> = Vec::new();
    let mut errors = 0;
    for h in handles {
        let (l, e) = h.join().expect("worker panicked");
        all.extend(l);
        errors += e;
    }
    all.sort_unstable();
    println!(
        "{{\"requests\":{},\"errors\":{},\"seconds\":{:.3},\"rps\":{:.1},\"p50_us\":{},\
         \"p90_us\":{},\"p99_us\":{},\"max_us\":{},\"connections\":{}}}",
        all.len(),
        errors,
        seconds,
        all.len() as f64 / seconds,
        percentile(&all, 0.50),
        percentile(&all, 0.90),
        percentile(&all, 0.99),
        all.last().copied().unwrap_or(0),
        o.connections
    );
}
