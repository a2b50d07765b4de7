//! What the soak's clients aim at: the address and process of a server that is killed and restarted
//! under them. A generation number tells a failure the kill caused from one the server caused: it is
//! odd while the server is down (from just before the kill until the restarted server listens) and
//! moves on at both edges, so a request that started in an even generation and ends in the same one ran
//! against one live process from start to finish, and any failure of it is the server's.

use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// The current server, shared by the writers, readers and the sampler.
#[derive(Debug)]
pub struct Target {
    current: RwLock<Current>,
    generation: AtomicU64,
}

#[derive(Debug, Clone)]
struct Current {
    url: String,
    pid: Option<String>,
}

impl Target {
    /// A target already up at `url`, process `pid`.
    pub fn new(url: String, pid: Option<String>) -> Self {
        Self {
            current: RwLock::new(Current { url, pid }),
            generation: AtomicU64::new(0),
        }
    }

    /// The generation now and the server's base URL. An odd generation means the server is down.
    pub fn current(&self) -> (u64, String) {
        // Generation first: a URL read after it is at least as new, never older.
        let generation = self.generation.load(Ordering::SeqCst);
        let url = self
            .current
            .read()
            .map(|c| c.url.clone())
            .unwrap_or_default();
        (generation, url)
    }

    /// The server's process id, while it is up.
    pub fn pid(&self) -> Option<String> {
        if self.generation.load(Ordering::SeqCst) % 2 == 1 {
            return None;
        }
        self.current.read().ok().and_then(|c| c.pid.clone())
    }

    /// The server is about to be killed.
    pub fn going_down(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    /// A restarted server listens at `url`.
    pub fn up(&self, url: String, pid: Option<String>) {
        if let Ok(mut current) = self.current.write() {
            *current = Current { url, pid };
        }
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    /// Whether a request that started in `generation` may have met a kill: the server was down then,
    /// or has gone down (and maybe up again) since.
    pub fn disturbed(&self, generation: u64) -> bool {
        generation % 2 == 1 || self.generation.load(Ordering::SeqCst) != generation
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kill_disturbs_requests_that_started_before_it_and_while_down() {
        let target = Target::new("http://a".into(), Some("1".into()));
        let (before, url) = target.current();
        assert_eq!((before, url.as_str()), (0, "http://a"));
        assert!(!target.disturbed(before));
        target.going_down();
        let (down, _) = target.current();
        assert!(target.disturbed(before) && target.disturbed(down));
        assert_eq!(target.pid(), None);
        target.up("http://b".into(), Some("2".into()));
        let (after, url) = target.current();
        assert_eq!((after, url.as_str()), (2, "http://b"));
        assert!(target.disturbed(before) && target.disturbed(down) && !target.disturbed(after));
        assert_eq!(target.pid().as_deref(), Some("2"));
    }
}
