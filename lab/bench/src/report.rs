//! Turns the JSON lines of one `make bench` run into the markdown tables of
//! docs/benchmarks.md: the invocations, the ratios, the targets and the other figures.

use std::fmt::Write;

use serde_json::Value;

use crate::error::{Error, Result};

fn num(line: &Value, key: &str) -> f64 {
    line.get(key).and_then(Value::as_f64).unwrap_or(f64::NAN)
}

fn find<'a>(lines: &'a [Value], name: &str, backend: &str) -> Option<&'a Value> {
    lines.iter().find(|l| l["kind"] == "invoke" && l["name"] == name && l["backend"] == backend)
}

fn ratio(a: f64, b: f64) -> String {
    if a.is_finite() && b.is_finite() && b > 0.0 { format!("{:.2}x", a / b) } else { "n/a".into() }
}

fn verdict(ok: bool) -> &'static str {
    if ok { "holds" } else { "**misses**" }
}

pub fn render(path: &str) -> Result<String> {
    let text = std::fs::read_to_string(path).map_err(Error::io(format!("reading {path}")))?;
    let lines: Vec<Value> = text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    let mut out = String::new();
    let w = &mut out;
    let _ = writeln!(w, "### Invocations under the Runtime API harness\n");
    let _ = writeln!(
        w,
        "| function | backend | event | init ms (median / min) | first ms | warm p50 ms | warm p99 ms | warm max ms | n | warm CPU ms p50 / p99 (mean µs) | context switches / inv | peak RSS MB | backend calls / inv | errors |"
    );
    let _ = writeln!(w, "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for l in lines.iter().filter(|l| l["kind"] == "invoke") {
        let _ = writeln!(
            w,
            "| {} | {} | {} | {} / {} | {} | {} | {} | {} | {} | {} / {} ({}) | {} | {} | {} | {} |",
            l["name"].as_str().unwrap_or("?"),
            l["backend"].as_str().unwrap_or("?"),
            l["event"].as_str().unwrap_or("?"),
            l["init_ms"],
            l["init_min_ms"],
            l["first_ms"],
            l["p50_ms"],
            l["p99_ms"],
            l["max_ms"],
            l["n"],
            l["cpu_p50_ms"],
            l["cpu_p99_ms"],
            l["cpu_us_per_invocation"],
            l["switches_per_invocation"],
            l["rss_mb"],
            if l["backend"] != "stack" { l["calls_per_invocation"].to_string() } else { "-".into() },
            l["errors"],
        );
    }
    // The alternated cold starts, when the run has them, give the init ratio: see `init`.
    let alternated =
        lines.iter().find(|l| l["kind"] == "init" && l["hello-world"].is_object() && l["receiver"].is_object());
    if let Some(a) = alternated {
        let _ = writeln!(w, "\n### Cold starts, alternated (null backend)\n");
        let _ = writeln!(w, "| function | init ms median | min | p90 | cold starts |");
        let _ = writeln!(w, "|---|---:|---:|---:|---:|");
        for name in ["hello-world", "receiver"] {
            let i = &a[name];
            let _ = writeln!(
                w,
                "| {name} | {} | {} | {} | {} |",
                i["init_ms"], i["init_min_ms"], i["init_p90_ms"], a["cold_starts"]
            );
        }
    }
    let (hello, ours, peer) =
        (find(&lines, "hello-world", "null"), find(&lines, "receiver", "null"), find(&lines, "python-peer", "null"));
    if let (Some(h), Some(o), Some(p)) = (hello, ours, peer) {
        let _ = writeln!(w, "\n### Ratios (null backend, same harness, same run)\n");
        let _ = writeln!(w, "| ratio | init | warm p50 | warm p99 | warm CPU p50 | warm CPU p99 | peak RSS |");
        let _ = writeln!(w, "|---|---:|---:|---:|---:|---:|---:|");
        // A function's init from the alternated cold starts when it had some there.
        let init_of = |l: &Value, name: &str| {
            alternated
                .map(|a| &a[name])
                .filter(|i| i.is_object())
                .map_or_else(|| num(l, "init_ms"), |i| num(i, "init_ms"))
        };
        // A signed duplicate (every delivery a repeat of done work), when the run has one.
        let repeat = find(&lines, "receiver", "repeats");
        let repeat_row = repeat.map(|r| ("receiver duplicate / hello-world", r, h, "receiver", "hello-world"));
        let rows = [
            Some(("receiver / hello-world", o, h, "receiver", "hello-world")),
            repeat_row,
            Some(("python peer / receiver", p, o, "python-peer", "receiver")),
        ];
        for (label, a, b, an, bn) in rows.into_iter().flatten() {
            let _ = writeln!(
                w,
                "| {label} | {} | {} | {} | {} | {} | {} |",
                ratio(init_of(a, an), init_of(b, bn)),
                ratio(num(a, "p50_ms"), num(b, "p50_ms")),
                ratio(num(a, "p99_ms"), num(b, "p99_ms")),
                ratio(num(a, "cpu_p50_ms"), num(b, "cpu_p50_ms")),
                ratio(num(a, "cpu_p99_ms"), num(b, "cpu_p99_ms")),
                ratio(num(a, "rss_mb"), num(b, "rss_mb")),
            );
        }
        let _ = writeln!(w, "\n### Targets\n");
        let _ = writeln!(w, "| target | figure | verdict |");
        let _ = writeln!(w, "|---|---|---|");
        let init_vs_hello = init_of(o, "receiver") / init_of(h, "hello-world");
        let peer_init = init_of(p, "python-peer") / init_of(o, "receiver");
        let peer_p99 = num(p, "p99_ms") / num(o, "p99_ms");
        let peer_cpu_p99 = num(p, "cpu_p99_ms") / num(o, "cpu_p99_ms");
        let repeat_cpu = repeat.map_or(f64::NAN, |r| num(r, "cpu_p50_ms") / num(h, "cpu_p50_ms"));
        let rss = num(o, "rss_mb");
        let rows = [
            ("receiver init within 1.2x of hello-world", format!("{init_vs_hello:.2}x"), init_vs_hello <= 1.2),
            ("receiver peak RSS at most 8 MB (null backend)", format!("{rss} MB"), rss <= 8.0),
            (
                "receiver CPU p50 per signed duplicate at most 3x hello-world's per request",
                format!("{repeat_cpu:.2}x"),
                repeat_cpu <= 3.0,
            ),
            ("receiver init at least 5x faster than the peer", format!("{peer_init:.1}x"), peer_init >= 5.0),
            ("warm p99 under 1 ms (null backend)", format!("{} ms", o["p99_ms"]), num(o, "p99_ms") < 1.0),
            ("warm p99 at least 3x below the peer", format!("{peer_p99:.1}x"), peer_p99 >= 3.0),
            (
                "warm handler CPU p99 under 1 ms (null backend)",
                format!("{} ms", o["cpu_p99_ms"]),
                num(o, "cpu_p99_ms") < 1.0,
            ),
            ("warm handler CPU p99 at least 3x below the peer", format!("{peer_cpu_p99:.1}x"), peer_cpu_p99 >= 3.0),
        ];
        for (target, figure, ok) in rows {
            let _ = writeln!(w, "| {target} | {figure} | {} |", verdict(ok));
        }
        for l in lines.iter().filter(|l| l["kind"] == "invoke" && l["backend"] == "null") {
            if l["name"] == "python-peer" || l["name"] == "hello-world" {
                continue;
            }
            let rss = num(l, "rss_mb");
            let _ = writeln!(
                w,
                "| {} peak RSS under 30 MB | {rss} MB | {} |",
                l["name"].as_str().unwrap_or("?"),
                verdict(rss < 30.0)
            );
        }
        if let (Some(one), Some(ten)) = (find(&lines, "worker-batch1", "null"), find(&lines, "worker-batch10", "null"))
        {
            let r = num(ten, "p50_ms") / num(one, "p50_ms");
            let _ = writeln!(
                w,
                "| worker batch of 10 slow items within 1.5x of one | {} ms vs {} ms: {r:.2}x | {} |",
                ten["p50_ms"],
                one["p50_ms"],
                verdict(r <= 1.5)
            );
        }
        for l in lines.iter().filter(|l| l["kind"] == "copy") {
            let growth = num(l, "growth_mb");
            let _ = writeln!(
                w,
                "| {} peak RSS grows under 20 MB copying a {} MB output to S3 | +{growth} MB ({} MB after a 1 KiB copy, {} MB peak; {} s) | {} |",
                l["name"].as_str().unwrap_or("?"),
                num(l, "bytes") / 1e6,
                l["idle_rss_mb"],
                l["peak_rss_mb"],
                l["seconds"],
                verdict(growth < 20.0)
            );
        }
        for l in lines.iter().filter(|l| l["kind"] == "figure" && l["zip_bytes"].is_u64()) {
            let bytes = num(l, "zip_bytes");
            let _ = writeln!(
                w,
                "| {} under 6 MB | {:.2} MB | {} |",
                l["name"].as_str().unwrap_or("?"),
                bytes / 1_048_576.0,
                verdict(bytes < 6.0 * 1_048_576.0)
            );
        }
    }
    let _ = writeln!(w, "\n### Other figures\n");
    let _ = writeln!(w, "| figure | value |");
    let _ = writeln!(w, "|---|---|");
    for l in &lines {
        match l["kind"].as_str() {
            Some("reconcile") => {
                let _ = writeln!(
                    w,
                    "| reconciler, {} unfinished predictions, simulator rate limit {}/s | {} s; requests to WriftAI {}; runs {} |",
                    l["predictions"],
                    l["rate_limit"].as_str().unwrap_or("off"),
                    l["seconds"],
                    l["requests"],
                    l["runs"].as_array().map_or(0, Vec::len)
                );
            }
            Some("load") => {
                let _ = writeln!(
                    w,
                    "| receiver on the local stack, {} instances, {} s | {} deliveries/s (ok {}, errors {}; p50 {} ms, p99 {} ms) |",
                    l["instances"], l["seconds"], l["rps"], l["ok"], l["errors"], l["p50_ms"], l["p99_ms"]
                );
            }
            Some("figure") => {
                let _ =
                    writeln!(w, "| {} | {} |", l["name"].as_str().unwrap_or("?"), l["value"].as_str().unwrap_or("?"));
            }
            _ => {}
        }
    }
    Ok(out)
}
