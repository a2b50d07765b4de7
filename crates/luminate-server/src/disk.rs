//! Space on the filesystem that holds a path: what the disk-space health check and the storage gauges
//! report. Owns no policy (thresholds belong to their callers).

use std::io;
use std::path::Path;

/// The filesystem's size and what is left of it for Luminate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskSpace {
    /// Size of the filesystem, bytes.
    pub total_bytes: u64,
    /// Bytes an unprivileged writer may still use (`f_bavail`: what is left before the reserved blocks,
    /// which is when a non-root server starts failing writes).
    pub available_bytes: u64,
}

impl DiskSpace {
    /// `available / total`, 0 on a filesystem of size 0.
    pub fn available_ratio(&self) -> f64 {
        if self.total_bytes == 0 {
            0.0
        } else {
            self.available_bytes as f64 / self.total_bytes as f64
        }
    }
}

/// The space of the filesystem holding `path` (statvfs(3)).
pub fn disk_space(path: &Path) -> io::Result<DiskSpace> {
    let stat = rustix::fs::statvfs(path)?;
    Ok(DiskSpace {
        total_bytes: stat.f_blocks.saturating_mul(stat.f_frsize),
        available_bytes: stat.f_bavail.saturating_mul(stat.f_frsize),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_the_filesystem_of_a_directory() {
        let dir = tempfile::tempdir().unwrap();
        let space = disk_space(dir.path()).unwrap();
        assert!(space.total_bytes > 0);
        assert!(space.available_bytes <= space.total_bytes);
        let ratio = space.available_ratio();
        assert!((0.0..=1.0).contains(&ratio), "{ratio}");
    }

    #[test]
    fn a_missing_path_is_an_error() {
        let err = disk_space(Path::new("/nonexistent/luminate")).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }
}
