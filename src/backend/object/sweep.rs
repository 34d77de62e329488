//! The alarm: [`sweep`] deletes expired records, and the alarm is kept set for the next one.

use crate::error::Result;

use super::*;

/// The latest time an alarm can be set for: JavaScript's largest `Date` (ms). A record whose
/// expiration lies beyond it (KV accepts expirations up to 2^53 − 1 ms) is swept then.
pub const MAX_ALARM_MS: u64 = 8_640_000_000_000_000;

/// Make sure the alarm fires by `at_ms`.
pub(super) async fn schedule<S: ObjectStorage + ?Sized>(storage: &S, at_ms: u64) -> Result<()> {
    let at_ms = at_ms.min(MAX_ALARM_MS);
    match storage.alarm().await? {
        Some(current) if current <= at_ms => Ok(()),
        _ => storage.set_alarm(at_ms).await,
    }
}

/// Records one storage page of the alarm's scan holds.
pub const SWEEP_PAGE: usize = 1000;
/// Pages one alarm scans at most (100,000 records); an object with more gets the rest at the
/// next alarm, a second later, which scans from the start again (so expired records beyond the
/// first 100,000 live ones wait until those expire: an object that large should be split,
/// [`Placement::ByGroup`]).
pub const SWEEP_MAX_PAGES: usize = 100;

/// The least time between two sweeps (ms). Every sweep reads the whole object, and an object
/// with many records has an expiry every few moments: sweeping at each would read it again and
/// again. Reads never see an expired record, so a minute more in storage costs nothing else.
pub const SWEEP_SPACING_MS: u64 = 60_000;

/// The alarm: delete every expired record, page by page through the object's storage, and set
/// the alarm for the earliest expiration left, at least [`SWEEP_SPACING_MS`] away (a later
/// write expiring sooner may set it earlier: writes carry KV's expiration, a minute ahead or
/// more, so sweeps stay about that far apart). An entry
/// that is no record is left alone (never lose data). Returns how many records it deleted.
pub async fn sweep<S: ObjectStorage + ?Sized>(storage: &S, now_ms: u64) -> Result<usize> {
    let mut deleted = 0;
    let mut next: Option<u64> = None;
    let mut after: Option<String> = None;
    let mut complete = false;
    for _ in 0..SWEEP_MAX_PAGES {
        // `start` is inclusive: the previous page's last key comes back first and is dropped,
        // and one more than a page tells whether more follow.
        let mut page = storage.scan("", after.as_deref(), SWEEP_PAGE + 2).await?;
        if let Some(a) = &after {
            page.retain(|(k, _)| k != a);
        }
        let more = page.len() > SWEEP_PAGE;
        page.truncate(SWEEP_PAGE);
        for (key, record) in &page {
            let Some(record) = record else { continue };
            if record.live(now_ms) {
                if let Some(exp) = record.expiration {
                    let at = exp.saturating_mul(1000);
                    next = Some(next.map_or(at, |n| n.min(at)));
                }
            } else {
                storage.remove(key).await?;
                deleted += 1;
            }
        }
        if !more {
            complete = true;
            break;
        }
        after = page.last().map(|(k, _)| k.clone());
    }
    let next = if complete {
        next.map(|at| at.max(now_ms.saturating_add(SWEEP_SPACING_MS)))
    } else {
        Some(now_ms.saturating_add(1000))
    };
    if let Some(at) = next {
        storage.set_alarm(at.min(MAX_ALARM_MS)).await?;
    }
    Ok(deleted)
}
