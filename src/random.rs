//! The platform CSPRNG, one type for every consumer: session ids (`session::IdSource`) and the
//! cache's early-refresh draws (`cache::RandomSource`) implement their seam for it.

/// The platform CSPRNG through `getrandom`: the OS generator natively, Web Crypto's
/// `getRandomValues` on Workers.
#[derive(Debug, Default, Clone, Copy)]
pub struct OsRandom;
