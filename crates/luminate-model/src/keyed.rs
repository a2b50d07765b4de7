//! keyed: a write sent with an `Idempotency-Key` as a store sees it ([`MetricsStore::write_keyed`]).
//!
//! The answer to a keyed write is part of what is stored: a store that remembers keys durably logs the
//! key and the answer with the batch, so that the retry a client makes after a crash gets the first
//! answer back, byte for byte, instead of storing the batch a second time. The answer depends on what
//! the store accepted and rejected, so the caller hands over how to build it ([`KeyedWrite::respond`])
//! and the store builds it once it knows, before it logs anything. Owns no I/O and no HTTP.
//!
//! [`MetricsStore::write_keyed`]: crate::MetricsStore::write_keyed

use std::fmt;
use std::sync::Arc;

use crate::store::WriteOutcome;

/// Builds the answer to a keyed write from what the store accepted and rejected; called at most once,
/// possibly on a store's own thread (the embedded engine's writer thread, which every write waits for):
/// it must be quick and must not panic (a panic there poisons the engine).
pub type Respond = Box<dyn FnOnce(&WriteOutcome) -> KeyedResponse + Send>;

/// A write's idempotency key and how to answer it.
pub struct KeyedWrite {
    /// The key as the client sent it (1–256 visible ASCII characters; the server checks).
    pub key: String,
    /// Builds the answer once the store knows the outcome.
    pub respond: Respond,
}

impl fmt::Debug for KeyedWrite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyedWrite")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

/// The answer to a keyed write as first sent: what a retry with the same key gets back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyedResponse {
    /// HTTP status.
    pub status: u16,
    /// The body, byte for byte. Shared: the store's window of keys and the server's cache hold the
    /// same bytes.
    pub body: Arc<[u8]>,
}

/// What a keyed write did.
#[derive(Debug, Clone, PartialEq)]
pub enum KeyedOutcome {
    /// The batch was stored (or refused point by point) now; `response` is its answer, remembered
    /// with it.
    Stored {
        /// What was accepted and rejected.
        outcome: WriteOutcome,
        /// The answer built from it.
        response: KeyedResponse,
    },
    /// The key was remembered (a write with it was stored before, within the store's window): nothing
    /// was stored now, and this is the first write's answer.
    Replayed(KeyedResponse),
}
