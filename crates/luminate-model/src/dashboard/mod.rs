//! Dashboards (the design's "JSON Query Language for Dashboards"): the document ([`document`]), its
//! checks on save ([`validate`]), template variables ([`variables`]), the auto-interval rule
//! ([`interval`]), what a panel's query becomes for a viewer ([`resolve`]), and the storage trait every
//! backend implements ([`store`]). Defined once here so the server, the UI and every backend agree.

pub mod document;
pub mod interval;
pub mod resolve;
pub mod store;
pub mod validate;
pub mod variables;

use std::fmt;

pub use document::{Dashboard, Panel, PanelType, SCHEMA_VERSION, Variable, VariableType};
pub use resolve::panel_query;
pub use store::{DashboardStore, DashboardStoreError, Expected, next_version};
pub use validate::{DashboardLimits, validate};

/// Columns of the panel grid.
pub const GRID_COLUMNS: u32 = 24;
/// Longest dashboard or panel id, in characters.
pub const MAX_ID_LEN: usize = 128;

/// One problem of a dashboard document: where (a JSON path such as `panels[2].query.aggregation`;
/// `.` for the whole document) and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The JSON path of the offending field.
    pub path: String,
    /// What is wrong there.
    pub message: String,
}

impl Problem {
    pub(crate) fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// True for a dashboard or panel id: 1 to [`MAX_ID_LEN`] characters of `A-Z a-z 0-9 _ -` (safe in a
/// URL path and as a file name).
pub fn is_valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}
