//! The write budget of saves. tower-sessions saves on every request that modified the session,
//! and on every request with `always_save` (which `Expiry::OnInactivity` users turn on, so that
//! each request pushes the expiry out): one KV write per request, at ten times the price of a
//! read, and KV refuses more than one write per second to a key. A save that changes nothing
//! but a slightly later expiry is skipped instead.

use std::time::Duration;

use super::record::TowerSessionRecord;

/// When a save may be skipped: never ([`SaveBudget::always`], the default), or when it only
/// moves the expiry later by less than a refresh window ([`SaveBudget::refresh_window`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SaveBudget {
    window_ms: u64,
}

impl SaveBudget {
    /// Write every save.
    pub const fn always() -> Self {
        Self { window_ms: 0 }
    }

    /// Skip a save whose record equals the stored one except for an expiry later by less than
    /// `window`: at most one KV write per session per window while only the expiry slides. A
    /// change of the data is always written, and so is an earlier expiry.
    ///
    /// The price: a skipped extension is lost, so the session can end up to `window` before
    /// the expiry tower-sessions computed (its cookie may outlive it by as much). Keep `window`
    /// a small part of the inactivity period (an hour of a day, a day of a week).
    pub fn refresh_window(window: Duration) -> Self {
        Self {
            window_ms: u64::try_from(window.as_millis()).unwrap_or(u64::MAX),
        }
    }

    /// The window (zero: every save is written).
    pub fn window(&self) -> Duration {
        Duration::from_millis(self.window_ms)
    }

    /// Whether writing `new` over `stored` may be skipped.
    pub(super) fn skips(&self, stored: &TowerSessionRecord, new: &TowerSessionRecord) -> bool {
        stored.data == new.data
            && new.expiry_date >= stored.expiry_date
            && new.expiry_date - stored.expiry_date < self.window_ms
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(n: i64, expiry_date: u64) -> TowerSessionRecord {
        TowerSessionRecord {
            data: [("n".to_string(), serde_json::json!(n))].into(),
            expiry_date,
            expiry_nanos: 0,
        }
    }

    #[test]
    fn only_a_small_later_expiry_is_skipped() {
        let budget = SaveBudget::refresh_window(Duration::from_secs(60));
        let stored = record(1, 1_000_000);
        assert!(budget.skips(&stored, &record(1, 1_000_000)));
        assert!(budget.skips(&stored, &record(1, 1_059_999)));
        assert!(!budget.skips(&stored, &record(1, 1_060_000)));
        assert!(
            !budget.skips(&stored, &record(1, 999_999)),
            "earlier expiry"
        );
        assert!(
            !budget.skips(&stored, &record(2, 1_000_000)),
            "data changed"
        );
    }

    #[test]
    fn the_default_writes_every_save() {
        let stored = record(1, 1_000_000);
        assert!(!SaveBudget::default().skips(&stored, &record(1, 1_000_000)));
        assert_eq!(SaveBudget::always(), SaveBudget::default());
    }
}
