//! fault-proxy: wiring only. Reads its settings, binds 127.0.0.1, serves each
//! connection with [`proxy::Proxy`]. See README.md for the rules and the control endpoint.

mod partitions;
mod proxy;
mod rules;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::partitions::Partitions;
use crate::proxy::Proxy;
use crate::rules::{Faults, Rule, Settings};

/// Sits between the functions and the AWS emulators and fails calls the way AWS fails
/// them, on purpose, reproducibly from a seed. Binds 127.0.0.1 only.
#[derive(Debug, Parser)]
#[command(name = "fault-proxy")]
struct Cli {
    /// Port to listen on.
    #[arg(long, env = "FAULT_PROXY_PORT", default_value_t = 8769)]
    port: u16,
    /// The DynamoDB emulator, where `DynamoDB_20120810.*` calls go.
    #[arg(long, env = "FAULT_DYNAMODB_UPSTREAM", value_name = "URL")]
    dynamodb_upstream: String,
    /// The SQS emulator, where `AmazonSQS.*` calls go.
    #[arg(long, env = "FAULT_SQS_UPSTREAM", value_name = "URL")]
    sqs_upstream: String,
    /// The rules at start, a JSON list (README.md); `PUT /_faults` replaces them.
    // `std::vec::Vec` spelled out: clap takes the list as one value, not a rule per flag.
    #[arg(long, env = "FAULT_RULES", value_name = "JSON", default_value = "[]", value_parser = rules)]
    rules: std::vec::Vec<Rule>,
    /// Seed of the random sequence [default: 0].
    #[arg(long, env = "FAULT_SEED", value_name = "N")]
    seed: Option<u64>,
    /// Model DynamoDB's limits per partition key at this scale: 1,000/K write units and
    /// 3,000/K read units a second per key (README.md, "The partition model").
    #[arg(long, env = "FAULT_PARTITION_SCALE", value_name = "K", value_parser = positive)]
    partition_scale: Option<f64>,
    /// Seconds of a key's rate its bucket holds for bursts (DynamoDB keeps up to 300).
    #[arg(long, env = "FAULT_PARTITION_BURST_SECS", value_name = "SECS", default_value_t = 300.0, value_parser = positive)]
    partition_burst_secs: f64,
    /// Prefixes of the table's keys each of one entity (`PRED#`), held to AWS's own limits:
    /// their load is one prediction's at any rate, so scaling them down would mislead.
    #[arg(long, env = "FAULT_PARTITION_UNSCALED", value_name = "PREFIX", value_delimiter = ',')]
    partition_unscaled: Vec<String>,
}

fn positive(raw: &str) -> Result<f64, String> {
    match raw.trim().parse::<f64>() {
        Ok(n) if n.is_finite() && n > 0.0 => Ok(n),
        _ => Err(format!("{raw:?} is not a number above zero")),
    }
}

/// Nothing (no faults), or a JSON list of rules that `Settings::validate` accepts.
fn rules(raw: &str) -> Result<Vec<Rule>, String> {
    if raw.trim().is_empty() {
        return Ok(Vec::new());
    }
    let settings = Settings { seed: None, rules: serde_json::from_str(raw).map_err(|e| e.to_string())? };
    settings.validate().map_err(|e| e.to_string())?;
    Ok(settings.rules)
}

#[derive(Debug, thiserror::Error)]
enum StartError {
    #[error("cannot build the HTTP client")]
    HttpClient(#[source] reqwest::Error),
    #[error("cannot listen")]
    Bind(#[from] std::io::Error),
}

#[tokio::main]
async fn main() -> ExitCode {
    devcli::init_tracing();
    match Cli::try_parse() {
        Ok(cli) => devcli::exit("fault-proxy", run(cli).await),
        Err(refused) => devcli::usage(refused),
    }
}

/// Serves until Ctrl-C.
async fn run(cli: Cli) -> Result<(), StartError> {
    let http = reqwest::Client::builder()
        // Past any SDK timeout: the caller gives up first, as it would with AWS.
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(StartError::HttpClient)?;
    let proxy = Arc::new(Proxy {
        faults: Faults::new(Settings { seed: cli.seed, rules: cli.rules }),
        partitions: cli
            .partition_scale
            .map(|scale| Partitions::new(scale, cli.partition_burst_secs).unscaled(cli.partition_unscaled.clone())),
        dynamodb: cli.dynamodb_upstream,
        sqs: cli.sqs_upstream,
        http,
    });
    let listener = TcpListener::bind(("127.0.0.1", cli.port)).await?;
    println!("listening on http://{}", listener.local_addr()?);
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => { tracing::warn!(%err, "accept failed"); continue; }
            },
            _ = tokio::signal::ctrl_c() => return Ok(()),
        };
        let proxy = proxy.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| proxy.clone().handle(request));
            // An error here is a connection dropped on purpose, or by the caller.
            let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
        });
    }
}

#[cfg(test)]
mod tests {
    use std::ffi::OsStr;

    use clap::error::ErrorKind;
    use clap::{CommandFactory, FromArgMatches};

    use super::*;

    const UPSTREAMS: [(&str, &str); 2] =
        [("FAULT_DYNAMODB_UPSTREAM", "http://127.0.0.1:8766"), ("FAULT_SQS_UPSTREAM", "http://127.0.0.1:8767")];

    /// Parses with `env` for the process's variables. clap reads those as the command is
    /// built, so each flag's variable is replaced by a default holding the test's value,
    /// or by nothing; a flag still wins over it.
    fn parse_with(args: &[&str], env: &[(&str, &'static str)]) -> Result<Cli, clap::Error> {
        let mut command = Cli::command().mut_args(|arg| {
            match arg.get_env().and_then(|name| env.iter().find(|(n, _)| OsStr::new(n) == name)) {
                // A value from a variable satisfies `required`, as in clap's own env handling.
                Some((_, value)) => arg.env(None).default_value(*value).required(false),
                None => arg.env(None),
            }
        });
        let matches = command.try_get_matches_from_mut(std::iter::once("fault-proxy").chain(args.iter().copied()))?;
        Cli::from_arg_matches(&matches).map_err(|e| e.format(&mut command))
    }

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn the_settings_come_from_the_variables_with_their_defaults() {
        let cli = parse_with(&[], &UPSTREAMS).expect("accepted");
        assert_eq!((cli.port, cli.seed, cli.rules.len()), (8769, None, 0));
        assert_eq!((cli.dynamodb_upstream.as_str(), cli.sqs_upstream.as_str()), (UPSTREAMS[0].1, UPSTREAMS[1].1));
        let rules = r#"[{"kind": "reset", "rate": 0.5}]"#;
        let env = [UPSTREAMS[0], UPSTREAMS[1], ("FAULT_PROXY_PORT", "0"), ("FAULT_SEED", "5"), ("FAULT_RULES", rules)];
        let cli = parse_with(&[], &env).expect("accepted");
        assert_eq!((cli.port, cli.seed, cli.rules.len()), (0, Some(5), 1));
        assert_eq!(cli.rules[0].operation, "*");
    }

    #[test]
    fn blank_rules_are_none() {
        let cli = parse_with(&[], &[UPSTREAMS[0], UPSTREAMS[1], ("FAULT_RULES", " ")]).expect("accepted");
        assert!(cli.rules.is_empty());
    }

    #[test]
    fn both_upstreams_are_required() {
        for env in [&UPSTREAMS[..1], &UPSTREAMS[1..]] {
            let refused = parse_with(&[], env).err().map(|e| e.kind());
            assert_eq!(refused, Some(ErrorKind::MissingRequiredArgument), "{env:?}");
        }
    }

    #[test]
    fn bad_settings_are_refused_naming_their_flag() {
        for (name, value, flag) in [
            ("FAULT_RULES", r#"[{"kind": "throttle", "rate": 2}]"#, "--rules"),
            ("FAULT_RULES", r#"[{"kind": "melt", "rate": 1}]"#, "--rules"),
            ("FAULT_RULES", "{", "--rules"),
            ("FAULT_SEED", "", "--seed"),
            ("FAULT_PROXY_PORT", "not a port", "--port"),
            ("FAULT_PARTITION_SCALE", "0", "--partition-scale"),
            ("FAULT_PARTITION_SCALE", "many", "--partition-scale"),
        ] {
            let refused = parse_with(&[], &[UPSTREAMS[0], UPSTREAMS[1], (name, value)]).expect_err(name);
            assert_eq!(refused.kind(), ErrorKind::ValueValidation, "{name}={value}: {refused}");
            assert!(refused.to_string().contains(flag), "{name}={value}: {refused}");
        }
    }
}
