//! Ports: what the services need from the outside world, as small traits. Each has an
//! AWS adapter and an in-memory twin (`adapters`).

mod ledger;
mod reconcile;
mod records;
mod work;

pub use ledger::{Enqueue, Ledger, Lookup, NewEvent, Recorded, WorkQueue};
pub use reconcile::{OpenPrediction, Page, ReconcileStore, StaleWork};
pub use records::{Bucket, Kept, RecordTable, StepKey, StepState};
pub use work::{Claim, Claims, ERROR_KEPT_BYTES, PredictionSource, Reopened, kept_error};
