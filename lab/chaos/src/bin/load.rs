//! `make load`: the receiver on the local stack under sustained concurrent, signed POSTs
//! for a fixed time, half new events and half duplicates, each 5xx retried as WriftAI
//! would. Prints requests, rate, p50/p99 and answers by status, then checks from the
//! table and the queue that every accepted event was kept. LOAD_SECS (default 30),
//! LOAD_CONCURRENCY (16), LOAD_PREDICTIONS (500), LOAD_MAX_REQUESTS (200000).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chaos::FaultProxy;
use e2e::{Stack, payload, status_of};
use wriftai_hooks::internals::prediction::PredictionId;

const STATUSES: [&str; 4] = ["pending", "starting", "started", "succeeded"];

fn setting(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

#[derive(Default)]
struct Tally {
    latencies: Vec<Duration>,
    by_status: BTreeMap<u16, usize>,
    transport_errors: usize,
    /// Events (prediction index, status index) answered 200 at least once.
    accepted: Vec<(usize, usize)>,
}

#[tokio::main]
async fn main() {
    let (secs, concurrency) = (setting("LOAD_SECS", 30), setting("LOAD_CONCURRENCY", 16));
    let (predictions, max_requests) = (setting("LOAD_PREDICTIONS", 500), setting("LOAD_MAX_REQUESTS", 200_000));
    let stack = Arc::new(Stack::from_env().await);
    let mut ids = Vec::with_capacity(predictions);
    for _ in 0..predictions {
        ids.push(stack.registered().await);
    }
    let ids = Arc::new(ids);
    let injected_before = match FaultProxy::from_env() {
        Some(proxy) => proxy.stats().await["injected"].clone(),
        None => serde_json::Value::Null,
    };
    // Each new event is the next status of the next prediction, so all of them are in
    // order; a duplicate repeats one already sent.
    let next_new = Arc::new(AtomicUsize::new(0));
    let sent = Arc::new(AtomicUsize::new(0));
    let tally = Arc::new(Mutex::new(Tally::default()));
    let started = Instant::now();
    let end = started + Duration::from_secs(secs as u64);
    let mut workers = Vec::new();
    for worker in 0..concurrency {
        let (stack, ids, next_new, sent, tally) =
            (stack.clone(), ids.clone(), next_new.clone(), sent.clone(), tally.clone());
        workers.push(tokio::spawn(async move {
            let mut round = worker;
            while Instant::now() < end && sent.fetch_add(1, Ordering::Relaxed) < max_requests {
                round += concurrency;
                let total = ids.len() * STATUSES.len();
                let done = next_new.load(Ordering::Relaxed).min(total);
                let event = if round % 2 == 0 || done == 0 {
                    let n = next_new.fetch_add(1, Ordering::Relaxed);
                    if n >= total { round % done.max(1) } else { n }
                } else {
                    (round * 7919) % done
                };
                let (p, s) = (event / STATUSES.len(), event % STATUSES.len());
                let body = payload(ids[p], STATUSES[s], 16);
                for _attempt in 0..6 {
                    let sent_at = Instant::now();
                    let answer = stack.json(body.clone()).send().await;
                    let latency = sent_at.elapsed();
                    let mut t = tally.lock().unwrap_or_else(|e| e.into_inner());
                    t.latencies.push(latency);
                    match answer.map(|r| r.status().as_u16()) {
                        Ok(code) => {
                            *t.by_status.entry(code).or_default() += 1;
                            if code == 200 {
                                t.accepted.push((p, s));
                            }
                            if code < 500 {
                                break;
                            }
                        }
                        Err(_) => t.transport_errors += 1,
                    }
                }
            }
        }));
    }
    for worker in workers {
        let _ = worker.await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let mut t = std::mem::take(&mut *tally.lock().unwrap_or_else(|e| e.into_inner()));
    t.latencies.sort();
    let pick =
        |q: f64| t.latencies.get(((t.latencies.len() as f64 * q) as usize).min(t.latencies.len().saturating_sub(1)));
    let ms = |d: Option<&Duration>| d.map(|d| d.as_secs_f64() * 1000.0).unwrap_or(0.0);
    let requests = t.latencies.len();
    println!("\n=== load summary ===");
    println!("duration      {elapsed:.1}s, {concurrency} concurrent, {predictions} predictions");
    println!("requests      {requests} ({:.1}/s)", requests as f64 / elapsed);
    println!(
        "latency       p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        ms(pick(0.5)),
        ms(pick(0.9)),
        ms(pick(0.99)),
        ms(t.latencies.last())
    );
    println!("answers       {:?}, transport errors {}", t.by_status, t.transport_errors);
    let mut injected = 0;
    if let Some(proxy) = FaultProxy::from_env() {
        let by_kind = chaos::diff(&injected_before, &proxy.stats().await["injected"]);
        injected = by_kind.iter().map(|(_, n)| *n).sum::<i64>().max(0) as usize;
        println!("injected      {by_kind:?}");
    }

    // Nothing lost: every event answered 200 is in the table, each prediction is at the
    // highest status accepted for it (at `pending`, registered: it writes no status),
    // and each accepted terminal event was enqueued.
    let mut highest: BTreeMap<usize, usize> = BTreeMap::new();
    for (p, s) in &t.accepted {
        let h = highest.entry(*p).or_default();
        *h = (*h).max(*s);
    }
    let mut lost = Vec::new();
    for (p, s) in &highest {
        let items = stack.items(ids[*p]).await;
        let at = status_of(items.get("PRED").unwrap_or(&Default::default())).to_owned();
        if (at != STATUSES[*s] && !(*s == 0 && at.is_empty() && items.contains_key("PRED")))
            || (0..=*s).any(|k| t.accepted.contains(&(*p, k)) && !chaos::recorded(&items, STATUSES[k]))
        {
            lost.push(ids[*p]);
        }
    }
    let terminal: Vec<PredictionId> = highest.iter().filter(|(_, s)| **s == 3).map(|(p, _)| ids[*p]).collect();
    let mut not_enqueued = 0;
    for id in &terminal {
        if stack.messages_for(*id).await.is_empty() {
            not_enqueued += 1;
        }
    }
    let fivexx: usize = t.by_status.iter().filter(|(code, _)| **code >= 500).map(|(_, n)| n).sum();
    println!(
        "kept          {} predictions checked, {} lost, {} terminal, {not_enqueued} not enqueued",
        highest.len(),
        lost.len(),
        terminal.len()
    );
    println!("5xx           {fivexx}");
    println!("===");
    // A 5xx is only acceptable as the echo of an injected fault.
    if !lost.is_empty() || not_enqueued > 0 || fivexx > injected {
        eprintln!("load: FAILED (lost {lost:?}, not enqueued {not_enqueued}, 5xx {fivexx})");
        std::process::exit(1);
    }
}
