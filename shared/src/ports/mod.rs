//! Ports: what the services need from the outside world, as small traits. Each has an
//! AWS adapter and an in-memory twin (`adapters`).

mod ledger;
mod reconcile;
mod work;

pub use ledger::{Enqueue, Ledger, NewEvent, Recorded, WorkQueue};
pub use reconcile::{OpenPrediction, Page, ReconcileStore, StaleWork};
pub use work::{Claim, Claims, ERROR_KEPT_BYTES, Outputs, PredictionSource, kept_error};
