//! The engine of a WriftAI webhook stack on AWS Lambda: the receiver, the worker around
//! your work, and the reconciler, as a library. Your project holds three small
//! functions and your work; this crate holds the rest, and its fixes reach you with
//! one version line.
#![warn(missing_docs, unreachable_pub)]

#[allow(missing_docs)] // internals: see `internals`
mod adapters;
mod config;
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
    pub mod config {
        pub use crate::config::*;
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
