//! fault-proxy: wiring only. Reads the environment, binds 127.0.0.1, serves each
//! connection with [`proxy::Proxy`]. See README.md for the rules and the control endpoint.

mod proxy;
mod rules;

use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::proxy::Proxy;
use crate::rules::{Faults, Settings};

#[derive(Debug, thiserror::Error)]
enum StartError {
    #[error("{0} is required")]
    Missing(&'static str),
    #[error("{name} is not valid: {reason}")]
    Invalid { name: &'static str, reason: String },
    #[error("cannot listen: {0}")]
    Bind(#[from] std::io::Error),
}

fn required(name: &'static str) -> Result<String, StartError> {
    std::env::var(name).map_err(|_| StartError::Missing(name))
}

fn settings() -> Result<Settings, StartError> {
    let rules = match std::env::var("FAULT_RULES") {
        Ok(raw) if !raw.trim().is_empty() => serde_json::from_str(&raw)
            .map_err(|e| StartError::Invalid { name: "FAULT_RULES", reason: e.to_string() })?,
        _ => Vec::new(),
    };
    let seed = match std::env::var("FAULT_SEED") {
        Ok(raw) => Some(raw.parse().map_err(|_| StartError::Invalid { name: "FAULT_SEED", reason: raw.clone() })?),
        Err(_) => None,
    };
    let settings = Settings { seed, rules };
    settings.validate().map_err(|e| StartError::Invalid { name: "FAULT_RULES", reason: e.to_string() })?;
    Ok(settings)
}

#[tokio::main]
async fn main() -> Result<(), StartError> {
    tracing_subscriber::fmt().with_writer(std::io::stderr).init();
    let port: u16 = std::env::var("FAULT_PROXY_PORT")
        .unwrap_or_else(|_| "8769".into())
        .parse()
        .map_err(|_| StartError::Invalid { name: "FAULT_PROXY_PORT", reason: "not a port".into() })?;
    let http = reqwest::Client::builder()
        // Past any SDK timeout: the caller gives up first, as it would with AWS.
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| StartError::Invalid { name: "http client", reason: e.to_string() })?;
    let proxy = Arc::new(Proxy {
        faults: Faults::new(settings()?),
        dynamodb: required("FAULT_DYNAMODB_UPSTREAM")?,
        sqs: required("FAULT_SQS_UPSTREAM")?,
        http,
    });
    let listener = TcpListener::bind(("127.0.0.1", port)).await?;
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
