//! `make sim`: one simulation, its settings from the environment (`SEED`, `PREDICTIONS`,
//! `DAYS`, `SHARDS`); prints its report and fails when an invariant broke.

use std::process::ExitCode;

use simulation::{Settings, run};

fn var<T: std::str::FromStr>(name: &str, default: T) -> Result<T, String> {
    match std::env::var(name) {
        Ok(text) if !text.is_empty() => text.parse().map_err(|_| format!("{name}={text:?} is not a number")),
        _ => Ok(default),
    }
}

fn main() -> ExitCode {
    let defaults = Settings::default();
    let settings = (|| {
        Ok::<_, String>(Settings {
            seed: var("SEED", defaults.seed)?,
            predictions: var("PREDICTIONS", defaults.predictions)?,
            days: var("DAYS", defaults.days)?,
            shards: var("SHARDS", defaults.shards)?,
        })
    })();
    let settings = match settings {
        Ok(settings) => settings,
        Err(err) => {
            eprintln!("sim: {err}");
            return ExitCode::from(2);
        }
    };
    let seed = settings.seed;
    let report = run(settings);
    println!("{report}");
    if report.violations.is_empty() {
        ExitCode::SUCCESS
    } else {
        eprintln!("sim: {} invariant(s) broken; replay with SEED={seed}", report.violations.len());
        ExitCode::FAILURE
    }
}
