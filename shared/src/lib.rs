//! Receive [WriftAI](https://wrift.ai) prediction webhooks on AWS Lambda, and run your
//! work on each prediction once: the engine of a three-function stack (a receiver, a
//! worker, a reconciler) on DynamoDB and SQS, as a library your project's few files
//! depend on.
//!
//! WriftAI posts the whole prediction to a webhook every time its status changes.
//! Deliveries can be duplicated, arrive out of order, be retried, or never arrive. This
//! crate turns that into one promise: **every prediction's work runs, once, and nothing
//! is lost**. Your project holds the three functions' `main`s, your work, the template
//! and the scripts; a fix of this crate reaches it with one version line.
//!
//! # A project's worker
//!
//! ```no_run
//! use serde_json::{Value, json};
//! use wriftai_hooks::{BoxError, Context, Prediction, Setup, Status};
//!
//! /// Your settings, read once at cold start.
//! struct Settings {
//!     shop_url: String,
//! }
//!
//! fn settings(setup: &Setup) -> Result<Settings, BoxError> {
//!     Ok(Settings { shop_url: setup.required("SHOP_URL")? })
//! }
//!
//! /// Called once per prediction that reaches a status the worker acts on.
//! async fn handle(prediction: &Prediction, ctx: &Context<Settings>) -> Result<Value, BoxError> {
//!     if prediction.status != Status::Succeeded {
//!         return Ok(Value::Null);
//!     }
//!     // A side effect runs as a step: at most once, whatever crashes around it.
//!     use wriftai_hooks::SendStep;
//!     let steps = ctx.steps(prediction);
//!     let told = steps
//!         .once("tell-the-shop", || async {
//!             let body = json!({"id": prediction.id, "output": prediction.output});
//!             let answer = ctx.http().post(&ctx.settings().shop_url).json(&body).send_step().await?;
//!             Ok(answer.status().as_u16())
//!         })
//!         .await?;
//!     ctx.records().store(prediction.id, "result", &json!({"told": told})).await?;
//!     Ok(json!({"told": told}))
//! }
//!
//! #[tokio::main]
//! async fn main() -> Result<(), BoxError> {
//!     wriftai_hooks::worker::serve(settings, handle).await
//! }
//! ```
//!
//! The receiver's and the reconciler's `main`s are one line each:
//! [`receiver::serve`] and [`reconciler::serve`].
//!
//! # What is here
//!
//! - [`receiver`]: behind a Function URL, checks each delivery (size, JSON, signature,
//!   the prediction ID against our own records), records it with a conditional write,
//!   enqueues its work, and answers fast.
//! - [`worker`]: on the work queue, claims each (prediction, status) and runs your
//!   `handle` on it to completion once, with partial batch failures and a dead-letter
//!   queue. Your work gets a [`Context`]: [`Steps`] that run at most once,
//!   [`Records`] of any size, the stack's bucket and output [`Files`], the [`WriftAi`]
//!   client, an HTTP client, and your own settings ([`Setup`]).
//! - [`reconciler`]: on a schedule, asks WriftAI about what webhooks left unfinished and
//!   feeds the answers through the receiver's own path.
//! - [`examples`]: worked examples of work, which a project's `work.rs` calls.
//! - [`ops`]: the operations of a deployed stack (inspect, status, replay, redrive,
//!   forget), as the `hooks` command line runs them.
//! - [`testing`]: a test of your work on a context in memory (feature `test-util`).
//!
//! # Features
//!
//! | Name | Description | Default |
//! |---|---|---|
//! | `test-util` | [`Context::in_memory`], [`WriftAi::in_memory`] and [`testing`]: the in-memory table, queue, bucket and WriftAI, for `[dev-dependencies]` | no |
//!
//! # Stability
//!
//! The crate follows semantic versioning from the items documented here. Enums and
//! structs you read but do not build are `#[non_exhaustive]`, so a release can add to
//! them. The types of other crates in this API are part of it: `serde_json::Value`,
//! `reqwest`'s client, request and response ([`Context::http`], [`SendStep`]),
//! `time::OffsetDateTime` ([`StepError::Unknown`]) and `aws_config::SdkConfig`
//! ([`Setup::aws`]); a release that moves to an incompatible version of one of them
//! is a breaking release. A hidden module, `internals`, serves this crate's own tools
//! and tests: it is not part of the API, and any release may change it.
#![warn(missing_docs, unreachable_pub)]

#[allow(missing_docs)] // internals: see `internals`
mod adapters;
mod clock;
mod config;
#[cfg(any(test, feature = "test-util"))]
mod contract;
#[allow(missing_docs)] // internals: see `internals`
mod create;
#[allow(missing_docs)] // internals: see `internals`
mod deadline;
mod error;
pub mod examples;
mod files;
#[allow(missing_docs)] // internals: see `internals`
mod ingest;
#[allow(missing_docs)] // internals: see `internals`
mod lag;
mod logs;
#[allow(missing_docs)] // internals: see `internals`
mod message;
#[allow(missing_docs)] // internals: see `internals`
mod metrics;
pub mod ops;
#[allow(missing_docs)] // internals: see `internals`
mod ports;
mod prediction;
pub mod receiver;
pub mod reconciler;
mod records;
#[allow(missing_docs)] // internals: see `internals`
mod shards;
mod steps;
#[cfg(any(test, feature = "test-util"))]
pub mod testing;
#[allow(missing_docs)] // internals: see `internals`
mod trace;
pub mod worker;
mod wriftai;

pub use config::ConfigError;
pub(crate) use error::Result;
pub use error::{BoxError, Error};
pub use files::{File, FileLimits, Files};
pub use prediction::{InvalidId, ModelRef, Prediction, PredictionError, PredictionId, Status};
pub use records::Records;
pub use steps::{Failure, SendStep, StepError, Steps};
pub use worker::{Context, Setup};
pub use wriftai::{ApiConfig, ApiError, CreatePrediction, Fetched, Page, Webhook, WriftAi};

/// The crate's README (crates.io's page), its example compiled as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

/// What this repository's own tools and tests reach into beyond the API: the ports and
/// their adapters, the record-and-enqueue path, the claim, the reconciler's walks.
/// **Not part of the API's promise**: any release may change it. Hidden from the docs.
#[doc(hidden)]
pub mod internals {
    #![allow(missing_docs, unreachable_pub)]
    pub mod adapters {
        pub use crate::adapters::*;
    }
    pub mod claim {
        pub use crate::worker::claim::*;
    }
    /// The virtual clock of a simulation.
    #[cfg(any(test, feature = "test-util"))]
    pub mod clock {
        pub use crate::clock::simulated::*;
    }
    pub mod config {
        pub use crate::config::*;
    }
    /// The contract suite at the ports, run on both adapters.
    #[cfg(any(test, feature = "test-util"))]
    pub mod contract {
        pub use crate::contract::*;
    }
    pub mod create {
        pub use crate::create::*;
    }
    pub mod deadline {
        pub use crate::deadline::*;
    }
    pub mod error {
        pub use crate::error::*;
    }
    pub mod files {
        pub use crate::files::fetch::*;
        pub use crate::files::*;
    }
    pub mod ingest {
        pub use crate::ingest::*;
    }
    pub mod lag {
        pub use crate::lag::*;
    }
    pub mod message {
        pub use crate::message::*;
    }
    pub mod metrics {
        pub use crate::metrics::*;
    }
    pub mod ports {
        pub use crate::ports::*;
    }
    pub mod prediction {
        pub use crate::prediction::*;
    }
    pub mod reconcile {
        pub use crate::reconciler::run::*;
    }
    pub mod records {
        pub use crate::records::*;
    }
    pub mod shards {
        pub use crate::shards::*;
    }
    pub mod signature {
        pub use crate::receiver::signature::*;
    }
    pub mod steps {
        pub use crate::steps::*;
    }
    pub mod trace {
        pub use crate::trace::*;
    }
    pub mod walk {
        pub use crate::reconciler::walk::*;
    }
    pub mod webhook {
        pub use crate::receiver::checks::*;
    }
    pub mod wriftai {
        pub use crate::wriftai::*;
    }
    pub use crate::receiver::handler::App as ReceiverApp;
    pub use crate::reconciler::handler::App as ReconcilerApp;
    pub use crate::worker::batch::{Job, Worker};
    pub use crate::worker::config::{Clients, WorkerConfig};
}
