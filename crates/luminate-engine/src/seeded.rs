//! A fixed pseudo-random sequence for tests that want varied but repeatable input.

/// Numbers below the bound passed to each call, from `seed` (a linear congruential generator: its
/// high bits, which are the well-mixed ones).
pub(crate) fn below(mut seed: u64) -> impl FnMut(u64) -> u64 {
    move |n| {
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        (seed >> 33) % n
    }
}
