//! Large buffers filled by writing, not by asking the allocator for zeroed memory.
//!
//! `vec![0; n]` allocates zeroed memory (`calloc`). jemalloc gives a recycled extent zeroed by
//! returning its pages to the kernel (`madvise(MADV_DONTNEED)`, its `ehooks_default_zero_impl`), so
//! every page of the buffer faults in afresh on its first write, query after query: a range rate over
//! a head of 1.4 M rows faulted in its 22 MB of samples each time, about a third of its time. Writing
//! the value over pages the process already holds costs a fraction of that; a fresh extent faults in
//! either way. Use [`filled`] for buffers of more than a few pages on query and write paths.

/// A vector of `len` copies of `value`, written into memory allocated without zeroing.
pub(crate) fn filled<T: Clone>(len: usize, value: T) -> Vec<T> {
    let mut out = Vec::with_capacity(len);
    out.resize(len, value);
    out
}
