//! Process and disk figures read from Linux `/proc` and the file system: resident memory (current and
//! peak), CPU time, open file descriptors, and the bytes under a directory. Elsewhere (or when a file is unreadable) the
//! figures are `None`: the report shows them as unknown rather than failing the benchmark.

use std::fs;
use std::io;
use std::path::Path;

/// Clock ticks per second of `/proc/<pid>/stat` times. `USER_HZ` is 100 on every Linux architecture
/// Luminate builds for; reading `sysconf(_SC_CLK_TCK)` would need `libc` and `unsafe` for a constant.
const USER_HZ: f64 = 100.0;

/// Resident memory of a process, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Memory {
    /// `VmRSS`: resident now.
    pub rss: u64,
    /// `VmHWM`: the peak resident size since the process started.
    pub peak: u64,
}

/// `VmRSS` and `VmHWM` of `pid` (`"self"` for this process).
pub fn memory(pid: &str) -> Option<Memory> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib = |field: &str| -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with(field))?;
        let number = line[field.len()..].trim().trim_end_matches("kB").trim();
        number.parse::<u64>().ok().map(|k| k * 1024)
    };
    Some(Memory {
        rss: kib("VmRSS:")?,
        peak: kib("VmHWM:")?,
    })
}

/// User plus system CPU seconds consumed so far by all threads of `pid` (`"self"` for this process).
pub fn cpu_seconds(pid: &str) -> Option<f64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_cpu_ticks(&stat).map(|ticks| ticks as f64 / USER_HZ)
}

/// `utime + stime` (fields 14 and 15) of a `/proc/<pid>/stat` line. The command name (field 2) is in
/// parentheses and may contain spaces, so fields are counted after its closing parenthesis.
fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// Open file descriptors of `pid` (the entries of `/proc/<pid>/fd`): what a leak of files or sockets
/// grows.
pub fn open_fds(pid: &str) -> Option<u64> {
    Some(fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count() as u64)
}

/// Total size of the regular files under `dir`, recursively (what the data directory costs on disk,
/// as `du --apparent-size` counts it).
pub fn dir_bytes(dir: &Path) -> io::Result<u64> {
    let mut total = 0;
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        if kind.is_dir() {
            total += dir_bytes(&entry.path())?;
        } else if kind.is_file() {
            total += entry.metadata()?.len();
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_ticks_after_a_name_with_spaces() {
        let stat = "4242 (my (odd) name) S 1 4242 4242 0 -1 4194304 100 0 0 0 250 75 0 0 20 0 1 0";
        assert_eq!(parse_cpu_ticks(stat), Some(325));
        assert_eq!(parse_cpu_ticks("garbage"), None);
    }

    #[test]
    fn this_process_has_figures() {
        if !Path::new("/proc/self/status").exists() {
            return;
        }
        let memory = memory("self").expect("VmRSS and VmHWM");
        assert!(memory.rss > 0 && memory.peak >= memory.rss);
        assert!(cpu_seconds("self").is_some());
        // stdin, stdout and stderr at least (other tests' threads may open more meanwhile).
        assert!(open_fds("self").expect("fd count") >= 3);
    }

    #[test]
    fn directory_sizes_add_up() {
        let dir = tempfile::tempdir().expect("temp dir");
        fs::write(dir.path().join("a"), [0u8; 100]).expect("write");
        fs::create_dir(dir.path().join("sub")).expect("mkdir");
        fs::write(dir.path().join("sub/b"), [0u8; 23]).expect("write");
        assert_eq!(dir_bytes(dir.path()).expect("walk"), 123);
    }
}
