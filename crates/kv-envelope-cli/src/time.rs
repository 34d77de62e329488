//! Timestamps for humans, without a date library: reports show envelope expiries as UTC
//! RFC 3339 and as "in 3d 4h" relative to the run's clock.

/// `ms` since the Unix epoch as `YYYY-MM-DDTHH:MM:SS.mmmZ` (UTC).
pub(crate) fn rfc3339_ms(ms: u64) -> String {
    let secs = ms / 1000;
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60,
        ms % 1000
    )
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

/// A duration in ms as its two largest units (`3d 4h`, `12m 5s`, `800ms`).
pub(crate) fn span(ms: u64) -> String {
    const UNITS: [(u64, &str); 4] = [
        (86_400_000, "d"),
        (3_600_000, "h"),
        (60_000, "m"),
        (1000, "s"),
    ];
    for (i, (size, name)) in UNITS.iter().enumerate() {
        if ms >= *size {
            let major = ms / size;
            let rest = ms % size;
            return match UNITS.get(i + 1) {
                Some((next, next_name)) if rest / next > 0 => {
                    format!("{major}{name} {}{next_name}", rest / next)
                }
                _ => format!("{major}{name}"),
            };
        }
    }
    format!("{ms}ms")
}

/// An envelope expiry as shown by reports: absolute, then relative to `now`.
pub(crate) fn describe_expiry(expires_at: Option<u64>, now: u64) -> String {
    match expires_at {
        None => "never".to_string(),
        Some(e) if e <= now => format!("{} (expired {} ago)", rfc3339_ms(e), span(now - e)),
        Some(e) => format!("{} (in {})", rfc3339_ms(e), span(e - now)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(rfc3339_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339_ms(1_764_000_000_123), "2025-11-24T16:00:00.123Z");
        // Leap day.
        assert_eq!(rfc3339_ms(951_782_400_000), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn spans_use_two_units() {
        assert_eq!(span(500), "500ms");
        assert_eq!(span(90_000), "1m 30s");
        assert_eq!(span(3 * 86_400_000 + 4 * 3_600_000 + 59_000), "3d 4h");
        assert_eq!(span(86_400_000), "1d");
    }
}
