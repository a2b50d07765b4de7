//! open_files: the process's open-file limit (`RLIMIT_NOFILE`), which every connection, WAL segment,
//! part file and directory fsync draws from — raising it at start-up, and deriving from it how many
//! connections may be open by default, so that connections alone can never exhaust it.
//!
//! The default cap is the limit minus a reserve for everything else the process opens (the engine's
//! files, ClickHouse connections, the runtime's own descriptors): a quarter of the limit, at least
//! [`RESERVE_FLOOR`] descriptors but never more than half of it; and at most
//! [`MAX_DEFAULT_CONNECTIONS`]. With the common soft limit of 1 024 that is 768 connections; under
//! 256, 128; with a limit of a million, 10 000.

/// Descriptors kept for the rest of the process, at least (a quarter of the limit when that is more).
pub const RESERVE_FLOOR: u64 = 128;
/// The default cap whatever the limit: beyond it, memory rather than descriptors is what runs out.
pub const MAX_DEFAULT_CONNECTIONS: u32 = 10_000;

/// The open-file limit in force now (the soft limit), `None` when unlimited or unknown.
pub fn open_file_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        rustix::process::getrlimit(rustix::process::Resource::Nofile).current
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// How many connections the limit leaves for connections: the limit minus the reserve (see the module
/// doc), at least 1; [`MAX_DEFAULT_CONNECTIONS`] when the limit is unknown.
pub fn default_max_connections(open_file_limit: Option<u64>) -> u32 {
    let Some(limit) = open_file_limit else {
        return MAX_DEFAULT_CONNECTIONS;
    };
    u32::try_from(limit - reserve(limit))
        .unwrap_or(u32::MAX)
        .clamp(1, MAX_DEFAULT_CONNECTIONS)
}

/// Whether `max_connections` leaves the rest of the process its reserve under `open_file_limit`.
pub fn leaves_reserve(max_connections: u32, open_file_limit: Option<u64>) -> bool {
    open_file_limit.is_none_or(|limit| u64::from(max_connections) <= limit - reserve(limit))
}

/// Descriptors kept for the rest of the process under `limit`.
fn reserve(limit: u64) -> u64 {
    (limit / 4).max(RESERVE_FLOOR).min(limit / 2)
}

/// Raises the soft open-file limit to the hard limit, where the system allows it, and logs the limits.
/// A server process has no reason to run under a soft limit lower than it may set itself (the default
/// 1 024 of many systems is a relic of `select(2)`).
pub fn raise_open_file_limit() {
    #[cfg(unix)]
    {
        use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
        let limits = getrlimit(Resource::Nofile);
        let name = |limit: Option<u64>| limit.map_or("unlimited".to_owned(), |l| l.to_string());
        match (limits.current, limits.maximum) {
            (Some(soft), Some(hard)) if soft < hard => {
                let raised = Rlimit {
                    current: Some(hard),
                    maximum: Some(hard),
                };
                match setrlimit(Resource::Nofile, raised) {
                    Ok(()) => tracing::info!(
                        from = soft,
                        to = hard,
                        "open-file limit (RLIMIT_NOFILE) raised to the hard limit"
                    ),
                    Err(e) => tracing::warn!(
                        soft,
                        hard,
                        error = %e,
                        "cannot raise the open-file limit (RLIMIT_NOFILE) to the hard limit"
                    ),
                }
            }
            (soft, hard) => tracing::info!(
                soft = %name(soft),
                hard = %name(hard),
                "open-file limit (RLIMIT_NOFILE)"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_cap_leaves_a_reserve_below_the_open_file_limit() {
        assert_eq!(default_max_connections(Some(1024)), 768);
        assert_eq!(default_max_connections(Some(256)), 128);
        assert_eq!(default_max_connections(Some(100)), 50);
        assert_eq!(default_max_connections(Some(1)), 1);
        assert_eq!(default_max_connections(Some(20_000)), 10_000);
        assert_eq!(default_max_connections(Some(1 << 20)), 10_000);
        assert_eq!(default_max_connections(None), 10_000);
    }

    #[test]
    fn a_cap_above_what_the_limit_leaves_is_noticed() {
        assert!(leaves_reserve(768, Some(1024)));
        assert!(!leaves_reserve(769, Some(1024)));
        assert!(leaves_reserve(1_000_000, None));
    }
}
