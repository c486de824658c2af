//! The measurements. Each spawns the function under test behind our Runtime API, on the
//! null backend or the local stack, and returns one JSON line.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::backend::{self, Counts};
use crate::cli::{Backend, Copy, Event, Init, Invoke, Load, Reconcile};
use crate::error::{Error, Result};
use crate::events;
use crate::function::Function;
use crate::runtime::{Answer, RuntimeApi};
use crate::stack::Table;
use crate::stats::{Run, ms, percentile};

const NULL_SECRET: &str = "whsec_bench";
const INIT_TIMEOUT: Duration = Duration::from_secs(30);

fn log_path(dir: &Path, name: &str) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).map_err(Error::io(format!("creating {}", dir.display())))?;
    Ok(dir.join(format!("{name}.log")))
}

/// The variables that point a function at the null backend, as the local stack's
/// `stack.env` points it at the emulators.
fn null_env(addr: std::net::SocketAddr) -> Vec<(String, String)> {
    let url = format!("http://{addr}");
    [
        ("AWS_ENDPOINT_URL_DYNAMODB", url.clone()),
        ("AWS_ENDPOINT_URL_SQS", url.clone()),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_DEFAULT_REGION", "us-east-1".into()),
        ("AWS_ACCESS_KEY_ID", "bench".into()),
        ("AWS_SECRET_ACCESS_KEY", "bench".into()),
        ("TABLE_NAME", "bench".into()),
        ("QUEUE_URL", format!("{url}/000000000000/bench")),
        // The reconciler's: where work requeued past its limit goes.
        ("DLQ_URL", format!("{url}/000000000000/bench-dlq")),
        ("WRIFTAI_WEBHOOK_SECRET", NULL_SECRET.into()),
        ("WRIFTAI_ACCESS_TOKEN", "bench".into()),
        ("WRIFTAI_API_BASE_URL", format!("{url}/v1")),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// Why an answer does not count as a success, if it does not.
fn refusal(answer: &Answer, event: Event) -> Option<String> {
    let text = String::from_utf8_lossy(&answer.body);
    if !answer.ok {
        return Some(format!("error: {text}"));
    }
    let value: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    let fine = match event {
        Event::Http => value.get("statusCode").and_then(Value::as_u64) == Some(200),
        Event::Schedule => true,
        Event::Sqs => value.get("batchItemFailures").and_then(Value::as_array).is_none_or(Vec::is_empty),
    };
    (!fine).then(|| text.chars().take(300).collect())
}

/// One cold start: `command` spawned against a fresh Runtime API, up to its first
/// `next`. Returns both ends, and the init time (spawn to first `next`).
async fn cold_start(
    command: &[String],
    env: &[(String, String)],
    log: &Path,
) -> Result<(RuntimeApi, Function, Duration)> {
    let mut runtime = RuntimeApi::start().await?;
    let mut function = Function::spawn(command, env, runtime.addr, log)?;
    let ready = runtime.ready(INIT_TIMEOUT).await;
    function.check_alive()?;
    let init = ready? - function.spawned;
    Ok((runtime, function, init))
}

/// Cold starts of two functions, alternated: `init --name A --vs B --cold N -- CMD_A :: CMD_B`.
/// Taken one after the other, a slow minute of a shared machine lands on one of them and
/// bends their ratio; alternated, it lands on both.
pub async fn init(args: &Init) -> Result<Value> {
    let names = [args.name.as_str(), args.vs.as_str()];
    let command = &args.function.command;
    let split = command.iter().position(|a| a == "::").ok_or_else(|| Error::Usage("init: CMD_A :: CMD_B".into()))?;
    let commands = [&command[..split], &command[split + 1..]];
    let cold_starts = args.cold.max(1);
    let (addr, _counts) = backend::start_null(false).await?;
    let env = null_env(addr);
    let mut inits: [Vec<Duration>; 2] = [Vec::new(), Vec::new()];
    for _ in 0..cold_starts {
        for (k, command) in commands.iter().enumerate() {
            let (_runtime, _function, init) =
                cold_start(command, &env, &log_path(&args.function.log_dir, &format!("{}-init", names[k]))?).await?;
            inits[k].push(init);
        }
    }
    let mut line = json!({"kind": "init", "cold_starts": cold_starts});
    for (name, mut times) in names.iter().zip(inits) {
        times.sort();
        line[name] = json!({"init_ms": percentile(&times, 0.5), "init_min_ms": ms(times[0]), "init_p90_ms": percentile(&times, 0.9)});
    }
    Ok(line)
}

pub async fn invoke(args: &Invoke) -> Result<Value> {
    let (name, backend_name, event_kind, n) = (&args.name, args.backend.name(), args.event, args.n);
    let (command, log_dir) = (&args.function.command, &args.function.log_dir);
    let input = json!({"prompt": "hi", "test_hook": format!("sleep_ms:{}", args.sleep_ms)});
    let (env, counts, secret) = match args.backend {
        Backend::Null | Backend::Repeats => {
            let (addr, counts) = backend::start_null(args.backend == Backend::Repeats).await?;
            (null_env(addr), Some(counts), Some(NULL_SECRET.to_owned()))
        }
        Backend::Stack => (Vec::new(), None, std::env::var("WRIFTAI_WEBHOOK_SECRET").ok()),
    };
    let cold_starts = args.cold.max(1);
    // One fresh prediction per invocation, the extra cold starts' included.
    let ids: Vec<String> = (0..n + cold_starts).map(|_| uuid::Uuid::new_v4().to_string()).collect();
    if args.backend == Backend::Stack && event_kind == Event::Http {
        Table::from_env()?.register(&ids, 0).await?;
    }
    let event = |i: usize| match event_kind {
        Event::Http => events::function_url(&events::prediction(&ids[i], input.clone()), secret.as_deref()),
        Event::Schedule => events::schedule(),
        Event::Sqs => events::sqs_batch(args.batch, &input),
    };
    let (runtime, function, init) =
        cold_start(command, &env, &log_path(log_dir, &format!("{name}-{backend_name}"))?).await?;
    let budget = Duration::from_secs(args.budget_secs);
    let (mut errors, mut first_error) = (0, None);
    let mut took = Vec::with_capacity(n + 1);
    // The process's CPU time and context switches after each answer (read between
    // invocations, outside the timed window): the difference between two readings is
    // what one warm invocation cost the function itself, apart from the wall clock.
    let mut readings = Vec::with_capacity(n + 1);
    for i in 0..=n {
        let answer = runtime.invoke(event(i), budget).await?;
        if let Some(why) = refusal(&answer, event_kind) {
            errors += 1;
            first_error.get_or_insert(why);
        }
        took.push(answer.took);
        readings.push(function.cpu_and_switches());
    }
    let warm_cpu = readings.windows(2).filter_map(|w| Some(w[1]?.0.saturating_sub(w[0]?.0))).collect();
    let warm_switches =
        readings.first().copied().flatten().zip(readings.last().copied().flatten()).map(|(a, b)| b.1 - a.1);
    let first = took.remove(0);
    // One cold start is noise on a shared machine: start more, keep the medians.
    let (mut inits, mut firsts) = (vec![init], vec![first]);
    for k in 1..cold_starts {
        let (runtime, _cold, init) =
            cold_start(command, &env, &log_path(log_dir, &format!("{name}-{backend_name}-cold"))?).await?;
        inits.push(init);
        firsts.push(runtime.invoke(event(n + k), budget).await?.took);
    }
    inits.sort();
    firsts.sort();
    let run = Run {
        name: name.clone(),
        backend: backend_name.to_owned(),
        init: inits[inits.len() / 2],
        first: firsts[firsts.len() / 2],
        warm: took,
        rss_kib: function.peak_rss_kib(),
        warm_cpu,
        warm_switches,
        calls: counts.as_ref().map_or(0, Counts::total),
        invocations: (n + cold_starts) as u64,
        errors,
        first_error,
    };
    let mut line = run.to_json();
    if let Some(counts) = counts {
        line["calls"] = json!(counts.snapshot());
    }
    line["event"] = json!(event_kind.name());
    line["cold_starts"] = json!(inits.len());
    line["init_min_ms"] = json!(ms(inits[0]));
    Ok(line)
}

pub async fn reconcile(args: &Reconcile) -> Result<Value> {
    let count = args.count;
    let base =
        std::env::var("WRIFTAI_API_BASE_URL").map_err(|_| Error::Usage("WRIFTAI_API_BASE_URL must be set".into()))?;
    let upstream = base.trim_end_matches("/v1").to_owned();
    let (proxy, counts) = backend::start_counting_proxy(&upstream).await?;
    let ids: Vec<String> = (0..count).map(|_| uuid::Uuid::new_v4().to_string()).collect();
    Table::from_env()?.register(&ids, 10).await?;
    let env: Vec<(String, String)> = [
        ("WRIFTAI_API_BASE_URL", format!("http://{proxy}/v1")),
        ("RECONCILE_MIN_AGE_SECS", "0".into()),
        ("RECONCILE_OVERDUE_SECS", "2100".into()),
        ("RECONCILE_WORK_STALE_SECS", "900".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let log = log_path(&args.function.log_dir, "reconciler-stack")?;
    let (runtime, function, _) = cold_start(&args.function.command, &env, &log).await?;
    let start = Instant::now();
    let mut summaries = Vec::new();
    // A run cut short by its deadline saves a cursor; the next one resumes, as on AWS.
    let budget = Duration::from_secs(args.budget_secs);
    for _ in 0..args.max_runs {
        let answer = runtime.invoke(events::schedule(), budget).await?;
        let summary: Value = serde_json::from_slice(&answer.body).unwrap_or(Value::Null);
        let done = answer.ok && summary.get("cut_short").and_then(Value::as_bool) == Some(false);
        summaries.push(summary);
        if done || !answer.ok {
            break;
        }
    }
    let elapsed = start.elapsed();
    Ok(json!({
        "kind": "reconcile",
        "predictions": count,
        "seconds": ms(elapsed) / 1e3,
        "runs": summaries,
        "requests": counts.snapshot(),
        "rate_limit": std::env::var("SIM_RATE_LIMIT").ok(),
        "rss_mb": function.peak_rss_kib().map(|k| (k as f64 / 102.4).round() / 10.0),
    }))
}

pub async fn load(args: &Load) -> Result<Value> {
    let (instances, seconds, max) = (args.instances, args.seconds, args.max);
    let secret = std::env::var("WRIFTAI_WEBHOOK_SECRET").ok();
    let ids: Arc<Vec<String>> = Arc::new((0..max).map(|_| uuid::Uuid::new_v4().to_string()).collect());
    Table::from_env()?.register(&ids, 0).await?;
    let mut functions = Vec::new();
    let mut runtimes = Vec::new();
    for i in 0..instances {
        let log = log_path(&args.function.log_dir, &format!("load-{i}"))?;
        let (runtime, function, _) = cold_start(&args.function.command, &[], &log).await?;
        functions.push(function);
        runtimes.push(runtime);
    }
    let next = Arc::new(AtomicUsize::new(0));
    let stop_at = Instant::now() + Duration::from_secs(seconds);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for runtime in runtimes {
        let (ids, next, secret) = (ids.clone(), next.clone(), secret.clone());
        tasks.push(tokio::spawn(async move {
            let (mut took, mut errors) = (Vec::new(), 0u64);
            while Instant::now() < stop_at {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(id) = ids.get(i) else { break };
                let event = events::function_url(&events::prediction(id, json!({"prompt": "hi"})), secret.as_deref());
                match runtime.invoke(event, Duration::from_secs(10)).await {
                    Ok(answer) if refusal(&answer, Event::Http).is_none() => took.push(answer.took),
                    _ => errors += 1,
                }
            }
            (took, errors)
        }));
    }
    let (mut took, mut errors) = (Vec::new(), 0);
    for task in tasks {
        let (t, e) = task.await.map_err(|e| Error::Failed(format!("load task: {e}")))?;
        took.extend(t);
        errors += e;
    }
    let elapsed = start.elapsed();
    took.sort();
    drop(functions);
    Ok(json!({
        "kind": "load",
        "instances": instances,
        "seconds": ms(elapsed) / 1e3,
        "ok": took.len(),
        "errors": errors,
        "rps": (took.len() as f64 / elapsed.as_secs_f64()).round(),
        "p50_ms": percentile(&took, 0.5),
        "p99_ms": percentile(&took, 0.99),
    }))
}

/// The worker copying one output file of `args.bytes` to the stack's bucket: its peak
/// RSS against the figure after a 1 KiB copy, which has every client and buffer set up.
pub async fn copy(args: &Copy) -> Result<Value> {
    let files = backend::start_files().await?;
    let ids = [uuid::Uuid::new_v4().to_string(), uuid::Uuid::new_v4().to_string()];
    let table = Table::from_env()?;
    table.record_work(&ids).await?;
    let log = log_path(&args.function.log_dir, &format!("{}-copy", args.name))?;
    let (runtime, function, _) = cold_start(&args.function.command, &[], &log).await?;
    let budget = Duration::from_secs(args.budget_secs);
    let copy = async |id: &str, bytes: u64| -> Result<Duration> {
        let answer = runtime.invoke(events::sqs_output(id, &format!("http://{files}/file/{bytes}")), budget).await?;
        match refusal(&answer, Event::Sqs) {
            Some(why) => Err(Error::Failed(format!("copying {bytes} bytes: {why}"))),
            None => Ok(answer.took),
        }
    };
    copy(&ids[0], 1024).await?;
    let idle = function.peak_rss_kib();
    let cpu_before = function.cpu_and_switches().map(|(cpu, _)| cpu);
    let took = copy(&ids[1], args.bytes).await?;
    let cpu = function.cpu_and_switches().map(|(cpu, _)| cpu).zip(cpu_before).map(|(after, before)| after - before);
    let peak = function.peak_rss_kib();
    // Copied, not refused: a refusal ends the work done too (OUTPUT_URL_HOSTS must let
    // the worker reach this harness's address).
    let result = table.result(&ids[1]).await?.unwrap_or_default();
    if result["files"][0]["bytes"].as_u64() != Some(args.bytes) {
        return Err(Error::Failed(format!("the file was not copied: {}", result["files"][0])));
    }
    let mb = |kib: Option<u64>| kib.map(|k| (k as f64 / 102.4).round() / 10.0);
    // The worker's own CPU per MB copied: what bounds a copy at a fraction of a vCPU.
    let cpu_ms_per_mb = cpu.map(|cpu| (ms(cpu) / (args.bytes as f64 / 1e6) * 100.0).round() / 100.0);
    Ok(json!({
        "kind": "copy",
        "name": args.name,
        "bytes": args.bytes,
        "seconds": ms(took) / 1e3,
        "cpu_ms": cpu.map(ms),
        "cpu_ms_per_mb": cpu_ms_per_mb,
        "idle_rss_mb": mb(idle),
        "peak_rss_mb": mb(peak),
        "growth_mb": mb(peak.zip(idle).map(|(p, i)| p.saturating_sub(i))),
    }))
}
