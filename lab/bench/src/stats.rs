//! One measured run, as a JSON line `make bench` collects, and its percentiles.

use std::time::Duration;

use serde_json::{Value, json};

/// Nearest-rank percentile, in milliseconds.
pub fn percentile(sorted: &[Duration], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    ms(sorted[rank - 1])
}

pub fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

pub struct Run {
    pub name: String,
    pub backend: String,
    pub init: Duration,
    pub first: Duration,
    pub warm: Vec<Duration>,
    pub rss_kib: Option<u64>,
    /// CPU time of each warm invocation, and the context switches of them all.
    pub warm_cpu: Vec<Duration>,
    pub warm_switches: Option<u64>,
    pub calls: u64,
    /// Every invocation the backend served, the extra cold starts' included.
    pub invocations: u64,
    pub errors: u64,
    pub first_error: Option<String>,
}

impl Run {
    pub fn to_json(&self) -> Value {
        let mut warm = self.warm.clone();
        warm.sort();
        let mut cpu = self.warm_cpu.clone();
        cpu.sort();
        json!({
            "kind": "invoke",
            "name": self.name,
            "backend": self.backend,
            "n": warm.len(),
            "init_ms": ms(self.init),
            "first_ms": ms(self.first),
            "p50_ms": percentile(&warm, 0.50),
            "p99_ms": percentile(&warm, 0.99),
            "max_ms": warm.last().map_or(f64::NAN, |d| ms(*d)),
            "cpu_us_per_invocation": (!cpu.is_empty()).then(|| (cpu.iter().sum::<Duration>().as_secs_f64() * 1e6 / cpu.len() as f64).round()),
            "cpu_p50_ms": percentile(&cpu, 0.50),
            "cpu_p99_ms": percentile(&cpu, 0.99),
            "switches_per_invocation": self.warm_switches.map(|s| (s as f64 / warm.len().max(1) as f64 * 10.0).round() / 10.0),
            "rss_mb": self.rss_kib.map(|k| (k as f64 / 1024.0 * 10.0).round() / 10.0),
            "calls_per_invocation": (self.calls as f64 / self.invocations.max(1) as f64 * 100.0).round() / 100.0,
            "errors": self.errors,
            "first_error": self.first_error,
        })
    }
}
