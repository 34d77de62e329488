//! The random source of XFetch early refresh, behind a seam so tests are deterministic.

/// Uniform random numbers in `(0, 1]`.
///
/// Any `Fn() -> f64 + Send + Sync` closure is one (tests pass `|| 0.5`). Values outside
/// `(0, 1]` or not finite are read as `1.0`, which never refreshes early.
pub trait RandomSource: Send + Sync {
    /// A uniform sample in `(0, 1]`.
    fn next_unit(&self) -> f64;
}

impl<F: Fn() -> f64 + Send + Sync> RandomSource for F {
    fn next_unit(&self) -> f64 {
        self()
    }
}

#[doc(inline)]
pub(crate) use crate::random::OsRandom;

/// A failure of the platform CSPRNG reads as `1.0`: no early refresh, which is the safe direction.
impl RandomSource for OsRandom {
    fn next_unit(&self) -> f64 {
        match getrandom::u64() {
            // 53 random bits, shifted to (0, 1]: ln(0) must never happen.
            Ok(bits) => ((bits >> 11) as f64 + 1.0) / (1u64 << 53) as f64,
            Err(_) => 1.0,
        }
    }
}

/// `r` clamped to `(0, 1]`, anything else as `1.0`.
pub(crate) fn sanitize(r: f64) -> f64 {
    if r.is_finite() && r > 0.0 {
        r.min(1.0)
    } else {
        1.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_random_is_in_range() {
        for _ in 0..1000 {
            let r = OsRandom.next_unit();
            assert!(r > 0.0 && r <= 1.0, "{r}");
        }
    }

    #[test]
    fn sanitize_never_yields_zero() {
        assert_eq!(sanitize(0.0), 1.0);
        assert_eq!(sanitize(-1.0), 1.0);
        assert_eq!(sanitize(f64::NAN), 1.0);
        assert_eq!(sanitize(7.0), 1.0);
        assert_eq!(sanitize(0.25), 0.25);
    }
}
