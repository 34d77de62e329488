//! The platform CSPRNG, one type for every consumer: session ids (`session::IdSource`) and the
//! cache's early-refresh draws (`cache::RandomSource`) implement their seam for it.

/// The platform CSPRNG through `getrandom`: the OS generator natively, Web Crypto's
/// `getRandomValues` on Workers.
#[derive(Debug, Default, Clone, Copy)]
pub struct OsRandom;

impl OsRandom {
    /// Fill `dest` from the platform CSPRNG; its failure is a backend error, not retried.
    pub(crate) fn fill_bytes(dest: &mut [u8]) -> crate::error::Result<()> {
        getrandom::fill(dest).map_err(|e| crate::error::Error::Backend {
            op: "getrandom",
            message: e.to_string(),
            retryable: false,
        })
    }
}
