//! The worker: takes each work message off the queue, claims its (prediction, status)
//! and runs your work on it, once.
//!
//! - [`work`]: **your work**, the file to edit: what it can use ([`work::Context`]) and
//!   what it does with each prediction ([`work::handle`]).
//! - [`examples`]: the worked examples `handle` calls: copy output files, chain the
//!   next prediction, keep failures for triage, notify them.
//! - [`files`]: the stack's bucket: output files streamed to it, records too large for
//!   an item; [`fetch`]: which URLs from a webhook body may be fetched.
//! - [`batch`]: one SQS batch: the claim around each message, a span each, partial batch
//!   failures.
//! - [`config`]: the worker's settings, read once at cold start, and the clients built
//!   from them.

pub mod batch;
pub mod config;
pub mod examples;
pub mod fetch;
pub mod files;
pub mod work;
