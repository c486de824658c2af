//! Ports: what the services need from the outside world, as small traits. Each has an
//! AWS adapter and an in-memory twin (`adapters`).

mod claims;
mod ledger;
mod reconcile;
mod records;
mod source;

pub use claims::{Claim, Claims, ERROR_KEPT_BYTES, Reopened, Rerun, WorkState, kept_error};
pub use ledger::{CheckAsk, Ledger, Lookup, MODEL_KEPT_BYTES, NewEvent, Recorded, UPDATED_AT_KEPT_BYTES, WorkQueue};
pub use reconcile::{OpenPrediction, Page, PageAsk, ReconcileStore, StaleWork};
pub use records::{Bucket, Kept, RecordTable, StepKey, StepState};
pub use source::PredictionSource;
