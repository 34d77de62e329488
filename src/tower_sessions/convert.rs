//! Between tower-sessions' `Record` and the stored [`TowerSessionRecord`]: the id stays out of
//! the stored form, the expiry goes to milliseconds plus their nanoseconds, and back exactly.

use time::OffsetDateTime;
use tower_sessions_core::session::{Id, Record};

use super::record::TowerSessionRecord;
use crate::session::hash_hex;

/// The part of the KV key that names the session of `id`: the SHA-256 of its 16 bytes, by the
/// one hashing rule of session ids (`session::id`). 128 random bits leave nothing to
/// brute-force, so a KV dump or `list` reveals no live id.
pub(super) fn hashed_id(id: &Id) -> String {
    hash_hex(&id.0.to_le_bytes())
}

/// `expiry` as whole ms since the epoch and the nanoseconds past that millisecond; `(0, 0)` for
/// instants before the epoch (already expired everywhere).
pub(super) fn expiry_parts(expiry: OffsetDateTime) -> (u64, u32) {
    let nanos = expiry.unix_timestamp_nanos();
    if nanos < 0 {
        return (0, 0);
    }
    let ms = u64::try_from(nanos / 1_000_000).unwrap_or(u64::MAX);
    // Below 1 000 000: always fits.
    let sub = u32::try_from(nanos % 1_000_000).unwrap_or(0);
    (ms, sub)
}

/// The stored form of `record` (without its id).
pub(super) fn to_stored(record: &Record) -> TowerSessionRecord {
    let (expiry_date, expiry_nanos) = expiry_parts(record.expiry_date);
    TowerSessionRecord {
        data: record
            .data
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        expiry_date,
        expiry_nanos,
    }
}

/// The tower-sessions record of `stored`, read under `id`; `None` when its expiry is no
/// instant `time` can represent (a record no writer of ours produced).
pub(super) fn from_stored(id: Id, stored: TowerSessionRecord) -> Option<Record> {
    let nanos = i128::from(stored.expiry_date)
        .checked_mul(1_000_000)?
        .checked_add(i128::from(stored.expiry_nanos))?;
    let expiry_date = OffsetDateTime::from_unix_timestamp_nanos(nanos).ok()?;
    Some(Record {
        id,
        data: stored.data.into_iter().collect(),
        expiry_date,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at_ms(ms: i128) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp_nanos(ms * 1_000_000).unwrap()
    }

    #[test]
    fn expiry_splits_into_milliseconds_and_nanoseconds_and_clamps_at_the_epoch() {
        let just_after = OffsetDateTime::from_unix_timestamp_nanos(1_001_900_007).unwrap();
        assert_eq!(expiry_parts(just_after), (1001, 900_007));
        assert_eq!(expiry_parts(at_ms(-1000)), (0, 0));
    }

    /// Issue 27: the expiry was cut to the millisecond, so a loaded record was not the saved
    /// one (tower-sessions' `test_load`), and two saves within a millisecond looked alike.
    #[test]
    fn the_expiry_round_trips_to_the_nanosecond() {
        let id = Id(7);
        for nanos in [1_893_456_000_123_456_789_i128, 1_000_000, 999_999, 0] {
            let record = Record {
                id,
                data: Default::default(),
                expiry_date: OffsetDateTime::from_unix_timestamp_nanos(nanos).unwrap(),
            };
            let back = from_stored(id, to_stored(&record)).unwrap();
            assert_eq!(back.expiry_date.unix_timestamp_nanos(), nanos);
        }
    }

    #[test]
    fn the_stored_form_round_trips_without_the_id() {
        let id = Id(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef);
        let mut record = Record {
            id,
            data: Default::default(),
            expiry_date: at_ms(1_893_456_000_123),
        };
        record.data.insert("n".into(), serde_json::json!(1));
        let stored = to_stored(&record);
        let text = serde_json::to_string(&stored).unwrap();
        assert!(!text.contains(&id.to_string()) && !text.contains(&id.0.to_string()));
        assert_eq!(from_stored(id, stored), Some(record));
    }

    #[test]
    fn an_unrepresentable_expiry_is_no_record() {
        let stored = TowerSessionRecord {
            data: Default::default(),
            expiry_date: u64::MAX,
            expiry_nanos: 0,
        };
        assert_eq!(from_stored(Id(1), stored), None);
    }
}
