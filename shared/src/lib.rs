//! The logic of the WriftAI webhook functions, apart from any Lambda event type.
//!
//! - [`prediction`]: the prediction object and its statuses, parsed once at the edge.
//! - [`webhook`]: checks one HTTP delivery (method, path, content type, size, JSON).
//! - [`ingest`]: record, then enqueue; the path every update takes.
//! - [`reconcile`]: asks WriftAI about what webhooks left unfinished, [`walk`]ing the
//!   sparse indexes oldest first across their shards.
//! - [`message`]: the messages on the work queue; [`claim`] runs one unit of work,
//!   once.
//! - [`records`]: the work's named records, of any size, and the one size policy;
//!   [`steps`]: the steps of the work that run at most once.
//! - [`signature`]: webhook signatures (scheme v1), verified and made.
//! - [`wriftai`]: the WriftAI API client; [`create`] creates a prediction and records
//!   it as ours.
//! - [`ports`]: what the services need from outside; [`adapters`] provide it on AWS
//!   and in memory.
//! - [`shards`]: the partition key values of the sparse indexes, one of many per item.
//! - [`config`], [`error`], [`deadline`], [`metrics`]: settings read once, errors that
//!   know if a retry helps, the time an invocation has left, and CloudWatch metrics;
//!   [`trace`]: the X-Ray trace a prediction's messages and log lines carry; [`lag`]:
//!   the lag metrics' durations, from times a webhook body only claims.

pub mod adapters;
pub mod claim;
pub mod config;
pub mod create;
pub mod deadline;
pub mod error;
pub mod ingest;
pub mod lag;
pub mod message;
pub mod metrics;
pub mod ports;
pub mod prediction;
pub mod reconcile;
pub mod records;
pub mod shards;
pub mod signature;
pub mod steps;
pub mod trace;
pub mod walk;
pub mod webhook;
pub mod wriftai;

pub use error::{Error, Result};
