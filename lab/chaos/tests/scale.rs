//! The scale run (`make scale`): the local stack through the fault proxy's partition
//! model (DynamoDB's limits per partition key at a scale factor K), driven at
//! `SCALE_RATE` new predictions a second for `SCALE_SECS`: at K that stands for
//! `SCALE_RATE × K` a second on AWS. Each prediction brings its four signed webhooks
//! (pending, starting, started, succeeded), some delivered twice. It prints what the model
//! counted (throttles by key, the hottest keys and their rates against their limits) and
//! what the stack made of it (receiver 5xx, lost, duplicated work), and fails unless the
//! design holds: no throttle, no 5xx, nothing lost or run twice, the hottest key at most
//! half its limit.
//! `SCALE_RATE` (default 10), `SCALE_SECS` (120), `SCALE_DEADLINE_SECS` (180),
//! `SCALE_BODY_KB` (the succeeded body's output text, in KB; default none, the
//! simulator's own short output).
//!
//! Write units per prediction are counted once every prediction settled: all the writes
//! its webhooks, its work and the reconciler made, WriftAI's duplicates included.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chaos::{FaultProxy, diff};
use e2e::{Sim, Stack, api, writes};
use serde_json::{Value, json};
use wriftai_hooks::internals::prediction::PredictionId;

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn at_its_scale_the_stack_holds_its_partition_limits() {
    let (rate, secs) = (setting("SCALE_RATE", 10), setting("SCALE_SECS", 120));
    let body_bytes = setting("SCALE_BODY_KB", 0) * 1024;
    let stack = Arc::new(Stack::from_env().await);
    let sim = Sim::from_env();
    let proxy = FaultProxy::from_env().expect("the scale run needs the stack started with FAULTS=1");
    let scale =
        proxy.partitions().await["scale"].as_f64().expect("the proxy models partitions (FAULT_PARTITION_SCALE)");
    sim.chaos(json!({"seed": 3, "duplicate_rate": 0.3, "reorder_rate": 0.0, "drop_rate": 0.0, "delay_ms": 0})).await;
    let sim_before = sim.stats().await;
    proxy.reset_partitions().await;

    // One new prediction every 1/rate s, whatever the earlier ones are doing, recorded as
    // ours through the proxy: the create path's writes count as the functions' do.
    let ledger = proxy.ledger(&stack);
    let started = Instant::now();
    let mut creations = tokio::task::JoinSet::new();
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
    for n in 0..rate * secs {
        tick.tick().await;
        let (stack, ledger) = (stack.clone(), ledger.clone());
        // A create not recorded as ours within a minute is as good as lost: its webhooks
        // are refused.
        let by = Instant::now() + Duration::from_secs(60);
        creations.spawn(async move {
            let mut input = json!({"prompt": format!("scale {n}"), "sim": {"step_ms": 300}});
            if body_bytes > 0 {
                input["sim"]["output_bytes"] = json!(body_bytes);
            }
            chaos::create_by(&stack, ledger, input, Some(by)).await
        });
    }
    let (mut ids, mut unrecorded) = (Vec::new(), 0);
    while let Some(created) = creations.join_next().await {
        match created.expect("a create") {
            Ok(id) => ids.push(id),
            Err(_) => unrecorded += 1,
        }
    }
    let load_secs = started.elapsed().as_secs_f64();
    let report = proxy.partitions().await;

    // Then every prediction must end where WriftAI says, its work done once.
    let deadline = Instant::now() + Duration::from_secs(setting("SCALE_DEADLINE_SECS", 180));
    let mut pending: Vec<PredictionId> = ids.clone();
    let mut truth: HashMap<PredictionId, String> = HashMap::new();
    while !pending.is_empty() && Instant::now() < deadline {
        let mut still = Vec::new();
        for id in pending {
            if Instant::now() >= deadline {
                still.push(id);
                continue;
            }
            if !truth.contains_key(&id)
                && let Ok(Some(fetched)) = api().get(id).await
                && fetched.prediction.status.is_terminal()
            {
                truth.insert(id, fetched.prediction.status.as_str().to_owned());
            }
            let settled = match truth.get(&id) {
                Some(truth) => chaos::settled(&stack.items(id).await, truth),
                None => false,
            };
            if !settled {
                still.push(id);
            }
        }
        pending = still;
        if !pending.is_empty() {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
    let settled_report = proxy.partitions().await;
    let mut duplicated = 0;
    for id in &ids {
        duplicated += usize::from(stack.items(*id).await.get("RECORD#result").map_or(0, writes) > 1);
    }
    let mut answers: BTreeMap<String, u64> = BTreeMap::new();
    for delivery in sim.all_deliveries().await {
        let answer = match &delivery["outcome"] {
            Value::Object(o) if o.contains_key("http") => o["http"].to_string(),
            Value::Object(_) => "connection error".into(),
            other => other.as_str().unwrap_or("?").to_owned(),
        };
        *answers.entry(answer).or_default() += 1;
    }
    let fivexx: u64 = answers.iter().filter(|(k, _)| k.starts_with('5')).map(|(_, v)| v).sum();
    let sim_diff = diff(&sim_before, &sim.stats().await);
    let sim_count = |k: &str| sim_diff.iter().find(|(name, _)| name == k).map(|(_, v)| *v).unwrap_or(0);
    let throttles = report["throttles"].as_u64().unwrap_or(0);
    let hottest = &report["hottest_writes"][0];
    let hottest_share = hottest["write_rate_of_limit"].as_f64().unwrap_or(0.0);
    let limit = report["limits"]["write_units_per_sec"].as_f64().unwrap_or(0.0);

    println!("\n=== scale summary ===");
    println!(
        "scale              K = {scale}: {rate} predictions/s stand for {} a second; each key {limit} write units/s, {} read units/s, {} s of burst (keys of one prediction, {}: AWS's own)",
        rate as f64 * scale,
        report["limits"]["read_units_per_sec"],
        report["burst_secs"],
        report["unscaled"]
    );
    println!(
        "predictions        {} created in {load_secs:.1} s, settled or not {:.1} s later",
        ids.len(),
        started.elapsed().as_secs_f64() - load_secs
    );
    println!(
        "deliveries         {} sent, {} attempts ({} duplicates, {} retries); answers {answers:?}",
        sim_count("deliveries_sent"),
        sim_count("attempts"),
        sim_count("duplicates"),
        sim_count("retries")
    );
    println!(
        "calls              {} modelled over {:.1} s, {} keys",
        report["calls"],
        report["secs"].as_f64().unwrap_or(0.0),
        report["keys"]
    );
    for (scope, units) in report["by_scope"].as_object().into_iter().flatten() {
        let per = |k: &str| units[k].as_f64().unwrap_or(0.0) / ids.len().max(1) as f64;
        println!("  units/prediction {scope}: {:.1} write, {:.1} read", per("write_units"), per("read_units"));
    }
    let written = |scope: &str| {
        settled_report["by_scope"][scope]["write_units"].as_f64().unwrap_or(0.0) / ids.len().max(1) as f64
    };
    // The table, then its indexes as docs/design.md lists them, then any other.
    let mut scopes: Vec<String> = ["table", "open", "work", "received"].map(String::from).into();
    for scope in settled_report["by_scope"].as_object().into_iter().flat_map(|m| m.keys()) {
        if !scopes.contains(scope) {
            scopes.push(scope.clone());
        }
    }
    let total: f64 = scopes.iter().map(|scope| written(scope)).sum();
    let each: Vec<String> = scopes.iter().map(|scope| format!("{scope} {:.1}", written(scope))).collect();
    println!(
        "write units per prediction: total {total:.1} ({}); bodies {}",
        each.join(", "),
        if body_bytes > 0 { format!("{} KB of output", body_bytes / 1024) } else { "the simulator's own".into() }
    );
    // Where they go: each operation on each kind of item (and the index entries it
    // changed), per prediction, largest first.
    let mut kinds: Vec<(&String, f64)> = settled_report["by_kind"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(kind, units)| (kind, units.as_f64().unwrap_or(0.0) / ids.len().max(1) as f64))
        .collect();
    kinds.sort_by(|a, b| b.1.total_cmp(&a.1));
    for (kind, units) in kinds {
        println!("  write units of {kind:<44} {units:>5.2} a prediction");
    }
    for (scope, row) in report["hottest_by_scope"].as_object().into_iter().flatten() {
        println!(
            "  hottest of {scope:<6} {:>5.1}% of its limit  {} ({} units)",
            row["write_rate_of_limit"].as_f64().unwrap_or(0.0) * 100.0,
            row["key"],
            row["write_units"]
        );
    }
    println!("throttles          {throttles}");
    for row in report["throttled"].as_array().into_iter().flatten() {
        println!("  throttled        {:>6}  {} {}", row["throttled"], row["scope"], row["key"]);
    }
    for row in report["hottest_writes"].as_array().into_iter().flatten() {
        println!(
            "  hottest write    {:>5.1}% of its limit  {} {} ({} units)",
            row["write_rate_of_limit"].as_f64().unwrap_or(0.0) * 100.0,
            row["scope"],
            row["key"],
            row["write_units"]
        );
    }
    for row in report["hottest_reads"].as_array().into_iter().take(3).flatten() {
        println!(
            "  hottest read     {:>5.1}% of its limit  {} {} ({} units)",
            row["read_rate_of_limit"].as_f64().unwrap_or(0.0) * 100.0,
            row["scope"],
            row["key"],
            row["read_units"]
        );
    }
    println!("hottest key        {:.1}% of its limit ({} {})", hottest_share * 100.0, hottest["scope"], hottest["key"]);
    println!("receiver 5xx       {fivexx}");
    println!(
        "not recorded       {unrecorded} created at WriftAI and never recorded as ours (their webhooks are refused)"
    );
    println!("lost               {}", pending.len() + unrecorded);
    println!("duplicated work    {duplicated}");
    println!("===");
    assert_eq!(throttles, 0, "keys past their limits: {}", report["throttled"]);
    assert_eq!(fivexx, 0, "the receiver answered 5xx: {answers:?}");
    assert_eq!(unrecorded, 0, "creates never recorded as ours");
    assert!(pending.is_empty(), "lost: {} predictions, e.g. {:?}", pending.len(), &pending[..pending.len().min(3)]);
    assert_eq!(duplicated, 0, "work ran more than once");
    assert!(hottest_share <= 0.5, "the hottest key is at {:.0}% of its limit", hottest_share * 100.0);
}
