//! What went wrong during a soak, from any thread: every problem counted, the first few kept word for
//! word for the report (a broken server repeats itself thousands of times).

use std::sync::Mutex;

/// Problems kept word for word; the rest are only counted.
const KEPT: usize = 20;

/// A shared, bounded list of problems.
#[derive(Debug, Default)]
pub struct Problems {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    count: u64,
    first: Vec<String>,
}

impl Problems {
    /// Records one problem.
    pub fn push(&self, problem: String) {
        if let Ok(mut inner) = self.inner.lock() {
            inner.count += 1;
            if inner.first.len() < KEPT {
                inner.first.push(problem);
            }
        }
    }

    /// How many problems were recorded, and the first of them.
    pub fn snapshot(&self) -> (u64, Vec<String>) {
        self.inner
            .lock()
            .map(|inner| (inner.count, inner.first.clone()))
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_all_and_keeps_the_first() {
        let problems = Problems::default();
        for i in 0..30 {
            problems.push(format!("p{i}"));
        }
        let (count, first) = problems.snapshot();
        assert_eq!(count, 30);
        assert_eq!(first.len(), KEPT);
        assert_eq!((first[0].as_str(), first[KEPT - 1].as_str()), ("p0", "p19"));
    }
}
