//! An event to store, with the source it came from, and what became of it: the input and
//! output of ingestion, shared by the tracking path, imports, the ingest log and the trait
//! limits.

use siyu_domain::customer::CustomerId;
use siyu_domain::tracking::TrackedEvent;

use crate::sources::SourceRef;

/// One event to store, with the source it came from.
#[derive(Debug, Clone)]
pub struct IngestItem {
    pub source: SourceRef,
    pub event: TrackedEvent,
}

/// What became of an item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IngestOutcome {
    Stored(CustomerId),
    /// Its messageId was seen from this source within the deduplication window.
    Duplicate,
    /// Not stored, for the reason given: an `Order Completed` in a currency the tenant
    /// has no exchange rate for. Its message id is not taken, so it can be sent again
    /// once a rate is set.
    Refused(String),
}
