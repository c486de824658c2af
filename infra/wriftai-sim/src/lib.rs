//! A faithful local WriftAI for tests: the predictions API, a scheduled lifecycle, and
//! signed webhook deliveries with retries and seedable chaos.
//!
//! - `config`: the settings; `flags`: read from the command line and `SIM_*` variables.
//! - `api`, `list`: the `/v1` endpoints; `guard`: rate limit and bearer token.
//! - `prediction`: the prediction object; `behaviour`: `input.sim` and outputs.
//! - `store`: predictions in memory; `lifecycle`: one task per prediction.
//! - `delivery`: one webhook task per prediction; `signing`: its signature header.
//! - `chaos`: seedable duplicate/reorder/drop/delay; `log`: attempts and counters.
//! - `inspect`: the unauthenticated `/_sim` endpoints; `notify`: a notification sink.

pub mod api;
pub mod behaviour;
pub mod chaos;
mod command;
pub mod config;
pub mod delivery;
pub mod error;
pub mod flags;
pub mod guard;
pub mod inspect;
pub mod lifecycle;
pub mod list;
pub mod log;
pub mod notify;
pub mod prediction;
pub mod signing;
pub mod store;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub use command::main;
pub use config::Config;
pub use error::StartError;

/// State shared by every handler and task.
pub struct AppState {
    pub config: Config,
    pub store: store::Store,
    pub chaos: chaos::Chaos,
    pub log: log::DeliveryLog,
    pub stats: log::Stats,
    /// What was posted to `/_sim/notify`.
    pub notifications: notify::Sink,
    pub limiter: guard::RateLimiter,
    /// Sends webhooks; its timeout is the per-attempt timeout.
    pub http: reqwest::Client,
    /// `http://127.0.0.1:<actual port>`, for the URLs the simulator hands out.
    pub base_url: String,
}

pub type Shared = Arc<AppState>;

/// A running simulator: where it listens, and the server task.
pub struct Running {
    pub addr: SocketAddr,
    pub base_url: String,
    pub state: Shared,
    server: JoinHandle<std::io::Result<()>>,
}

impl Running {
    /// Runs until the server stops (it only stops on an I/O error).
    pub async fn wait(self) -> Result<(), StartError> {
        match self.server.await {
            Ok(result) => Ok(result?),
            Err(join) => Err(StartError::Io(std::io::Error::other(join))),
        }
    }

    /// Stops serving; used by tests that start many simulators in one process.
    pub fn stop(&self) {
        self.server.abort();
    }
}

/// Binds 127.0.0.1 only (port 0 = any free port) and starts serving in the background.
pub async fn start(config: Config) -> Result<Running, StartError> {
    let port = config.port;
    let listener =
        TcpListener::bind((Ipv4Addr::LOCALHOST, port)).await.map_err(|source| StartError::Bind { port, source })?;
    let addr = listener.local_addr()?;
    let base_url = format!("http://{addr}");
    let http = reqwest::Client::builder()
        .timeout(config.attempt_timeout)
        // Webhooks go to loopback receivers; a proxy from the environment would only
        // get in the way.
        .no_proxy()
        .build()
        .map_err(StartError::HttpClient)?;
    let state = Arc::new(AppState {
        store: store::Store::default(),
        chaos: chaos::Chaos::new(config.chaos.clone()),
        log: log::DeliveryLog::default(),
        stats: log::Stats::default(),
        notifications: notify::Sink::default(),
        limiter: guard::RateLimiter::new(config.rate_limit),
        http,
        base_url: base_url.clone(),
        config,
    });
    let app = router(state.clone());
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(Running { addr, base_url, state, server })
}

pub fn router(state: Shared) -> Router {
    let v1 = Router::new()
        .route("/predictions", post(api::create).get(list::list))
        .route("/predictions/{id}", get(api::get))
        .route("/predictions/{id}/cancel", post(api::cancel))
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), guard::guard));
    let sim = Router::new()
        .route("/health", get(inspect::health))
        .route("/chaos", get(inspect::get_chaos).put(inspect::put_chaos))
        .route("/deliveries", get(inspect::deliveries))
        .route("/stats", get(inspect::stats))
        .route("/in_flight", get(inspect::in_flight))
        .route("/files/{id}", get(inspect::file))
        .route("/redirect", get(inspect::redirect))
        .route("/notify", post(notify::post))
        .route("/notifications", get(notify::list));
    Router::new().nest("/v1", v1).nest("/_sim", sim).with_state(state)
}
