//! String formats (`email`, `uuid`, `date`, `time`, `date-time`, `ipv4`, `ipv6`), with the
//! definitions the jsonschema crate uses.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Format {
    Email,
    Uuid,
    Date,
    Time,
    DateTime,
    Ipv4,
    Ipv6,
}

impl Format {
    pub(super) fn name(self) -> &'static str {
        match self {
            Format::Email => "email",
            Format::Uuid => "uuid",
            Format::Date => "date",
            Format::Time => "time",
            Format::DateTime => "date-time",
            Format::Ipv4 => "ipv4",
            Format::Ipv6 => "ipv6",
        }
    }

    pub(super) fn check(self, s: &str) -> bool {
        match self {
            Format::Email => is_plausible_email(s),
            Format::Uuid => is_uuid(s),
            Format::Date => is_date(s),
            Format::Time => is_time(s),
            Format::DateTime => s
                .bytes()
                .position(|b| b == b'T' || b == b't')
                .is_some_and(|t| is_date(&s[..t]) && is_time(&s[t + 1..])),
            Format::Ipv4 => s.parse::<std::net::Ipv4Addr>().is_ok(),
            Format::Ipv6 => s.parse::<std::net::Ipv6Addr>().is_ok(),
        }
    }
}

/// `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`, hex digits of either case.
fn is_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, &c)| match i {
            8 | 13 | 18 | 23 => c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

fn digits(b: &[u8]) -> Option<u32> {
    if b.is_empty() || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(b.iter().fold(0, |n, d| n * 10 + u32::from(d - b'0')))
}

/// RFC 3339 `full-date`: `YYYY-MM-DD` with a day that exists.
fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return false;
    }
    let (Some(year), Some(month), Some(day)) = (digits(&b[..4]), digits(&b[5..7]), digits(&b[8..]))
    else {
        return false;
    };
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    (1..=days).contains(&day)
}

/// RFC 3339 `full-time`: `HH:MM:SS[.frac](Z|±HH:MM)`; a leap second only at 23:59 UTC.
fn is_time(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() < 9 || b[2] != b':' || b[5] != b':' {
        return false;
    }
    let (Some(hour), Some(minute), Some(second)) =
        (digits(&b[..2]), digits(&b[3..5]), digits(&b[6..8]))
    else {
        return false;
    };
    if hour > 23 || minute > 59 || second > 60 {
        return false;
    }
    let mut i = 8;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return false;
        }
    }
    let Some(&sign) = b.get(i) else {
        return false;
    };
    let utc_is_23_59 = |offset: i32| {
        let local = (hour * 60 + minute) as i32;
        (local - offset).rem_euclid(24 * 60) == 23 * 60 + 59
    };
    match sign {
        b'Z' | b'z' => i == b.len() - 1 && (second != 60 || (hour == 23 && minute == 59)),
        b'+' | b'-' => {
            let rest = &b[i + 1..];
            if rest.len() != 5 || rest[2] != b':' {
                return false;
            }
            let (Some(oh), Some(om)) = (digits(&rest[..2]), digits(&rest[3..])) else {
                return false;
            };
            if oh > 23 || om > 59 {
                return false;
            }
            let offset = (oh * 60 + om) as i32 * if sign == b'+' { 1 } else { -1 };
            second != 60 || utc_is_23_59(offset)
        }
        _ => false,
    }
}

/// The `email` format: `local@domain`, the local part 1–64 bytes of RFC 5322 atom characters
/// and dots (no leading, trailing or double dot), the domain 1–253 bytes of dot-separated
/// labels of letters, digits and inner hyphens, with at least two labels. Quoted local parts
/// and IP-literal domains are refused: no browser login form produces them.
pub fn is_plausible_email(s: &str) -> bool {
    // One forward pass with a class table: this runs on every validated session read. The
    // first `@` ends the local part; any later `@` fails the domain, as an earlier one would
    // fail the local part when splitting at the last.
    let bytes = s.as_bytes();
    let mut at = 0;
    let mut after_dot = true;
    loop {
        let Some(&b) = bytes.get(at) else {
            return false;
        };
        if CLASS[b as usize] & ATOM != 0 {
            after_dot = false;
        } else if b == b'.' && !after_dot {
            after_dot = true;
        } else if b == b'@' {
            break;
        } else {
            return false;
        }
        at += 1;
    }
    if after_dot || at > 64 {
        return false;
    }
    let domain = bytes.get(at + 1..).unwrap_or_default();
    if domain.is_empty() || domain.len() > 253 {
        return false;
    }
    let (mut label_start, mut labels) = (0, 1);
    for (i, &b) in domain.iter().enumerate() {
        if CLASS[b as usize] & ALNUM != 0 {
            continue;
        }
        let label_ok = i > label_start && domain.get(i - 1) != Some(&b'-');
        match b {
            b'-' if i > label_start => {}
            b'.' if label_ok && i - label_start <= 63 => {
                label_start = i + 1;
                labels += 1;
            }
            _ => return false,
        }
    }
    let last = domain.len() - label_start;
    (1..=63).contains(&last) && domain.last() != Some(&b'-') && labels >= 2
}

const ATOM: u8 = 1;
const ALNUM: u8 = 2;

/// Byte classes for [`is_plausible_email`]: ASCII letters and digits are `ALNUM | ATOM`, the
/// other RFC 5322 atom characters (``!#$%&'*+/=?^_`{|}~-``) `ATOM`.
const CLASS: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        if (b as u8).is_ascii_alphanumeric() {
            table[b] = ATOM | ALNUM;
        }
        b += 1;
    }
    let specials = b"!#$%&'*+/=?^_`{|}~-";
    let mut i = 0;
    while i < specials.len() {
        table[specials[i] as usize] = ATOM;
        i += 1;
    }
    table
};
