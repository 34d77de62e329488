//! Sessions on KV.

mod record;

pub use record::{Session, SessionV1, SessionV2, DEFAULT_ABSOLUTE_LIFETIME_MS};
