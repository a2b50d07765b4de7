//! delete: a delete logged, then applied alone — rows removed from the active head, tombstones raised on
//! the frozen head and the parts — with the rows it hid counted exactly.

use std::sync::mpsc::Receiver;

use super::{Committer, Request};
use crate::apply::apply_delete;
use crate::error::EngineError;
use crate::record::DeleteBefore;
use crate::space::Job;
use crate::stored::{Stored, delete_in_frozen, delete_in_parts};

impl Committer {
    /// Logs a delete, then applies it to the active head (rows removed), the frozen head and the parts
    /// (tombstones raised); returns the rows it hid, counted exactly.
    pub(super) fn delete(
        &mut self,
        d: DeleteBefore,
        requests: &Receiver<Request>,
    ) -> Result<u64, EngineError> {
        self.ensure_not_poisoned()?;
        let record = d.encode();
        if let Err(e) = self.append(&record) {
            // Out of space, nothing was deleted and nothing poisoned: the delete can be asked again.
            return Err(self.unlogged(e, record.len(), requests));
        }
        self.shared.space.clear(Job::Wal);
        self.shared.observer.wal_appended(record.len() as u64);
        self.unsynced = true;
        self.sync_per_policy();
        self.ensure_not_poisoned()?;
        let catalog = self.shared.catalog();
        let stored = self.shared.read_stored();
        // The record is logged: a part that cannot be read now would fail replay too.
        let (parts, part_hidden) =
            match delete_in_parts(&stored.parts, &d.tenant, &d.metric, d.before) {
                Ok(r) => r,
                Err(e) => {
                    self.shared
                        .poison(format!("applying a delete to the parts failed: {e}"));
                    return Err(self.shared.poisoned_error());
                }
            };
        let (mut index, mut head) = self.shared.write_both();
        self.shared.count_delete(&index);
        let mut deleted = apply_delete(&mut index, &mut head, &d);
        let metric = index
            .tenant(&d.tenant)
            .and_then(|ti| ti.metric_id(&d.metric));
        if let (Some(ti), Some(m)) = (index.tenant(&d.tenant), metric) {
            self.newest
                .forget_before(&d.tenant, &ti.metric(m).series, d.before);
        }
        let frozen = match (&stored.frozen, metric) {
            (Some(f), Some(m)) => {
                let (next, hidden) = delete_in_frozen(f, &d.tenant, m, d.before);
                if let Some(ti) = index.existing_tenant_mut(&d.tenant) {
                    for &series in &hidden {
                        ti.add_points(series, -1);
                    }
                }
                deleted += hidden.len() as u64;
                Some(next)
            }
            (f, _) => f.clone(),
        };
        if let Some(ti) = index.existing_tenant_mut(&d.tenant) {
            for &(series, n) in &part_hidden {
                ti.add_points(series, -(n as i64));
                deleted += n;
            }
        }
        // Swapped before the index lock is released: a query sees the counts and the rows agree.
        self.shared.set_stored(&catalog, Stored { frozen, parts });
        drop((index, head, catalog));
        if !part_hidden.is_empty() {
            let _ = self.flush.compact.try_send(());
        }
        Ok(deleted)
    }
}
