//! Load for the SMPP gateway's benchmark (bench/smpp-load.sh), with plain
//! threads and blocking sockets so that the load generator is cheap:
//!
//!   smpp-load smsc PORT
//!       a sink SMSC: accepts any bind, answers every submit_sm at once.
//!   smpp-load esme HOST:PORT SYSTEM_ID PASSWORD RATE SECONDS [WINDOW]
//!       binds a transmitter and submits texts for SECONDS, RATE per
//!       second (0: as fast as WINDOW outstanding submits allow), then
//!       prints one JSON line: sent, answered, refused, per-second
//!       throughput and latency percentiles in microseconds.
//!
//! The texts cycle through a few wordings (an appointment reminder, a
//! delivery notice, a coupon with opt-out) from 50 numbers to 10,000
//! recipients: ordinary traffic, mostly allowed.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use textwatch_smpp::frame::{self, id, Header};

fn read_pdus(s: &mut TcpStream, buf: &mut BytesMut, out: &mut Vec<bytes::Bytes>) -> bool {
    let mut chunk = [0u8; 65536];
    match s.read(&mut chunk) {
        Ok(0) | Err(_) => return false,
        Ok(n) => buf.extend_from_slice(&chunk[..n]),
    }
    while let Ok(Some(p)) = frame::next(buf) {
        out.push(p);
    }
    true
}

fn smsc(port: u16) {
    let l = TcpListener::bind(("127.0.0.1", port)).expect("bind the sink SMSC");
    eprintln!("smpp-load smsc: listening on {}", l.local_addr().unwrap());
    for s in l.incoming() {
        let Ok(mut s) = s else { continue };
        std::thread::spawn(move || {
            let _ = s.set_nodelay(true);
            let mut buf = BytesMut::new();
            let mut pdus = Vec::new();
            let mut n = 0u64;
            while read_pdus(&mut s, &mut buf, &mut pdus) {
                let mut out = Vec::new();
                for p in pdus.drain(..) {
                    let Some(h) = Header::read(&p) else { continue };
                    if h.is_response() {
                        continue;
                    }
                    let r = match h.id {
                        id::SUBMIT_SM => {
                            n += 1;
                            frame::with_c_string(id::resp(h.id), 0, h.sequence, &format!("m{n}"))
                        }
                        id::BIND_TRANSMITTER | id::BIND_TRANSCEIVER | id::BIND_RECEIVER => {
                            frame::with_c_string(id::resp(h.id), 0, h.sequence, "sink")
                        }
                        _ => frame::bare(id::resp(h.id), 0, h.sequence),
                    };
                    out.extend_from_slice(&r);
                }
                if !out.is_empty() && s.write_all(&out).is_err() {
                    return;
                }
            }
        });
    }
}

const TEXTS: [&str; 3] = [
    "Riverside Dental: reminder of your appointment on {d} at 10:30. Reply C to confirm, STOP to opt out.",
    "Your parcel {d} is out for delivery today. Track it at https://track.example.com/{d}",
    "Acme Coffee: 20% off any drink today with code SAVE{d}. Reply STOP to end.",
];

fn submit(seq: u32, i: u64) -> Vec<u8> {
    let text = TEXTS[(i % 3) as usize].replace("{d}", &format!("{}", 1000 + i % 9000));
    let from = format!("1215555{:04}", i % 50);
    let to = format!("1267{:07}", i % 10_000);
    let mut b = vec![0u8, 1, 1];
    b.extend_from_slice(from.as_bytes());
    b.extend_from_slice(&[0, 1, 1]);
    b.extend_from_slice(to.as_bytes());
    b.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 1, 0, text.len() as u8]);
    b.extend_from_slice(text.as_bytes());
    let mut p = ((16 + b.len()) as u32).to_be_bytes().to_vec();
    p.extend_from_slice(&id::SUBMIT_SM.to_be_bytes());
    p.extend_from_slice(&[0, 0, 0, 0]);
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&b);
    p
}

fn esme(addr: &str, system_id: &str, password: &str, rate: u64, seconds: u64, window: usize) {
    let mut s = TcpStream::connect(addr).expect("connect");
    let _ = s.set_nodelay(true);
    let mut body = Vec::new();
    for x in [system_id, password, ""] {
        body.extend_from_slice(x.as_bytes());
        body.push(0);
    }
    body.extend_from_slice(&[0x34, 0, 0, 0]);
    let mut p = ((16 + body.len()) as u32).to_be_bytes().to_vec();
    p.extend_from_slice(&id::BIND_TRANSMITTER.to_be_bytes());
    p.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 1]);
    p.extend_from_slice(&body);
    s.write_all(&p).unwrap();
    let mut buf = BytesMut::new();
    let mut pdus = Vec::new();
    while pdus.is_empty() {
        assert!(read_pdus(&mut s, &mut buf, &mut pdus), "closed during bind");
    }
    let h = Header::read(&pdus[0]).unwrap();
    assert_eq!(h.status, 0, "bind refused: {:#x}", h.status);
    pdus.clear();

    let sent_at: Arc<Mutex<HashMap<u32, Instant>>> = Arc::new(Mutex::new(HashMap::new()));
    let lat: Arc<Mutex<Vec<u64>>> = Arc::new(Mutex::new(Vec::new()));
    let refused = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut rd = s.try_clone().unwrap();
    let (sa, la, rf) = (sent_at.clone(), lat.clone(), refused.clone());
    let reader = std::thread::spawn(move || {
        let mut buf = BytesMut::new();
        let mut pdus = Vec::new();
        while read_pdus(&mut rd, &mut buf, &mut pdus) {
            let now = Instant::now();
            let mut m = sa.lock().unwrap();
            let mut l = la.lock().unwrap();
            for p in pdus.drain(..) {
                let Some(h) = Header::read(&p) else { continue };
                if h.id == id::resp(id::SUBMIT_SM) {
                    if let Some(t) = m.remove(&h.sequence) {
                        l.push(now.duration_since(t).as_micros() as u64);
                    }
                    if h.status != 0 {
                        rf.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                } else if h.id == id::resp(id::UNBIND) {
                    return;
                }
            }
        }
    });
    let start = Instant::now();
    let end = start + Duration::from_secs(seconds);
    let mut i = 0u64;
    let mut seq = 1u32;
    while Instant::now() < end {
        if rate > 0 {
            let due = start + Duration::from_secs_f64(i as f64 / rate as f64);
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
        } else {
            while sent_at.lock().unwrap().len() >= window {
                std::thread::sleep(Duration::from_micros(50));
            }
        }
        seq += 1;
        let p = submit(seq, i);
        sent_at.lock().unwrap().insert(seq, Instant::now());
        if s.write_all(&p).is_err() {
            break;
        }
        i += 1;
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while !sent_at.lock().unwrap().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let elapsed = start.elapsed().as_secs_f64();
    let _ = s.write_all(&frame::bare(id::UNBIND, 0, seq + 1));
    let _ = reader.join();
    let mut l = lat.lock().unwrap().clone();
    l.sort_unstable();
    let pct = |q: f64| if l.is_empty() { 0 } else { l[((l.len() - 1) as f64 * q) as usize] };
    println!(
        "{{\"sent\": {i}, \"answered\": {}, \"refused\": {}, \"per_second\": {:.0}, \"p50_us\": {}, \"p99_us\": {}, \"max_us\": {}}}",
        l.len(),
        refused.load(std::sync::atomic::Ordering::Relaxed),
        l.len() as f64 / elapsed,
        pct(0.5),
        pct(0.99),
        l.last().copied().unwrap_or(0)
    );
}

fn main() {
    let a: Vec<String> = std::env::args().collect();
    match a.get(1).map(String::as_str) {
        Some("smsc") => smsc(a.get(2).and_then(|p| p.parse().ok()).unwrap_or(0)),
        Some("esme") if a.len() >= 7 => esme(
            &a[2],
            &a[3],
            &a[4],
            a[5].parse().expect("RATE"),
            a[6].parse().expect("SECONDS"),
            a.get(7).and_then(|w| w.parse().ok()).unwrap_or(64),
        ),
        _ => {
            eprintln!("usage: smpp-load smsc PORT | smpp-load esme HOST:PORT SYSTEM_ID PASSWORD RATE SECONDS [WINDOW]");
            std::process::exit(2);
        }
    }
}
