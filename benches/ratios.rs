//! Ratios for BENCHMARKS.md that hold on a shared, noisy machine.
//!
//! * `ratios paired <a> <b> [rounds]`: runs case `a` and case `b` in alternating rounds of
//!   equal iteration counts and prints, as one JSON line, the median time per call of each and
//!   the median of the per-round ratios `b / a`. Load that comes and goes hits both sides of a
//!   round alike, so the ratio is steadier than two separately measured medians.
//! * `ratios run <case> <iterations>`: runs one case `iterations` times inside
//!   `kvbench_measured`; `scripts/bench.sh` runs it under
//!   `valgrind --tool=callgrind --toggle-collect=kvbench_measured` and divides the collected
//!   instructions by the iterations (deterministic: a second, noise-free column).
//! * `ratios list`: the cases.

use std::hint::black_box;

use kv_envelope::{
    __internal::check_header, decode_value, encode_value, envelope, session::SessionRecord, Codec,
    Versioned,
};
use serde::{de::DeserializeOwned, Serialize};

mod common;
/// Cases that use this tree's internals (the validation document, the crate's schema compile).
/// `scripts/bench.sh` builds this driver against the commit before the change too, with a
/// stub of this file, for the before/after rows.
#[path = "common/internals.rs"]
mod internals;

use common::{popular, session, session_v1, Popular, NOW};

/// Everything a case needs, built before measuring.
struct Inputs {
    raw_json: Vec<u8>,
    env_json: Vec<u8>,
    env_pc: Vec<u8>,
}

fn inputs<T: Versioned>(value: &T) -> Inputs {
    Inputs {
        raw_json: serde_json::to_vec(value).unwrap(),
        env_json: encode_value(value, Codec::Json, Some(NOW + 60_000)).unwrap(),
        env_pc: encode_value(value, Codec::Postcard, Some(NOW + 60_000)).unwrap(),
    }
}

#[inline(never)]
#[no_mangle]
fn kvbench_measured(n: usize, f: &mut dyn FnMut()) {
    for _ in 0..n {
        f();
    }
}

/// The closure of a read/write case for a value type.
fn value_case<T>(what: &str, value: T) -> Option<Box<dyn FnMut()>>
where
    T: Versioned + Serialize + DeserializeOwned + Clone,
{
    T::warm_up().unwrap();
    let inp = inputs(&value);
    let payload = serde_json::to_vec(&value).unwrap();
    Some(match what {
        "read/raw_serde_json" => Box::new(move || {
            black_box(serde_json::from_slice::<T>(black_box(&inp.raw_json)).unwrap());
        }),
        "read/json_unvalidated" => Box::new(move || {
            black_box(decode_value::<T>(black_box(&inp.env_json), NOW, false).unwrap());
        }),
        "read/json_validated" => Box::new(move || {
            black_box(decode_value::<T>(black_box(&inp.env_json), NOW, true).unwrap());
        }),
        "read/postcard_unvalidated" => Box::new(move || {
            black_box(decode_value::<T>(black_box(&inp.env_pc), NOW, false).unwrap());
        }),
        "read/postcard_validated" => Box::new(move || {
            black_box(decode_value::<T>(black_box(&inp.env_pc), NOW, true).unwrap());
        }),
        "write/raw_serde_json" => Box::new(move || {
            black_box(serde_json::to_vec(black_box(&value)).unwrap());
        }),
        "write/json" => Box::new(move || {
            black_box(encode_value(black_box(&value), Codec::Json, Some(NOW)).unwrap());
        }),
        "write/postcard" => Box::new(move || {
            black_box(encode_value(black_box(&value), Codec::Postcard, Some(NOW)).unwrap());
        }),
        "part/parse_value" => Box::new(move || {
            black_box(serde_json::from_slice::<serde_json::Value>(black_box(&payload)).unwrap());
        }),
        sealed if sealed.ends_with("_sealed") => return internals::sealed_case(sealed, value, NOW),
        part => return internals::value_case(part, value, payload),
    })
}

fn case(name: &str) -> Option<Box<dyn FnMut()>> {
    if let Some(what) = name.strip_prefix("session/") {
        return value_case(what, session());
    }
    if let Some(what) = name.strip_prefix("cache_2k/l1/") {
        return internals::memory_tier_case::<Popular>(what, popular(), NOW);
    }
    if let Some(what) = name.strip_prefix("cache_2k/") {
        return value_case::<Popular>(what, popular());
    }
    let big = popular();
    let codec = |s: &str| match s {
        "json" => Codec::Json,
        _ => Codec::Postcard,
    };
    SessionRecord::warm_up().unwrap();
    let mut parts = name.split('/');
    Some(match (parts.next()?, parts.next()?, parts.next()) {
        ("reject", "expired", Some(c)) => {
            let bytes = envelope::encode(codec(c), "session", 3, Some(NOW - 1), &big).unwrap();
            Box::new(move || {
                let h = envelope::peek_header(black_box(&bytes)).unwrap();
                assert!(!check_header::<SessionRecord>(&h, NOW).unwrap());
            })
        }
        ("reject", "future_version", Some(c)) => {
            let bytes = envelope::encode(codec(c), "session", 9, None, &big).unwrap();
            Box::new(move || {
                let h = envelope::peek_header(black_box(&bytes)).unwrap();
                assert!(check_header::<SessionRecord>(&h, NOW).is_err());
            })
        }
        ("migrate", "v1_to_v3", Some(c)) => {
            let bytes = envelope::encode(codec(c), "session", 1, None, &session_v1()).unwrap();
            Box::new(move || {
                black_box(decode_value::<SessionRecord>(black_box(&bytes), NOW, true).unwrap());
            })
        }
        ("migrate", "current_v3", Some(c)) => {
            let bytes = encode_value(&session(), codec(c), None).unwrap();
            Box::new(move || {
                black_box(decode_value::<SessionRecord>(black_box(&bytes), NOW, true).unwrap());
            })
        }
        ("schema_compile", "session_v3", None) => return internals::schema_compile(),
        _ => return None,
    })
}

const CASES: &[&str] = &[
    "session/read/raw_serde_json",
    "session/read/json_unvalidated",
    "session/read/json_validated",
    "session/read/postcard_unvalidated",
    "session/read/postcard_validated",
    "session/write/raw_serde_json",
    "session/write/json",
    "session/write/postcard",
    "session/read/json_sealed",
    "session/read/postcard_sealed",
    "session/write/json_sealed",
    "session/write/postcard_sealed",
    "cache_2k/read/raw_serde_json",
    "cache_2k/read/json_unvalidated",
    "cache_2k/read/json_validated",
    "cache_2k/read/postcard_unvalidated",
    "cache_2k/read/postcard_validated",
    "cache_2k/write/raw_serde_json",
    "cache_2k/write/json",
    "cache_2k/write/postcard",
    "cache_2k/read/json_sealed",
    "cache_2k/read/postcard_sealed",
    "cache_2k/write/json_sealed",
    "cache_2k/l1/hit",
    "cache_2k/l1/hit_json",
    "cache_2k/l1/kv_hit",
    "reject/expired/json",
    "reject/expired/postcard",
    "reject/future_version/json",
    "reject/future_version/postcard",
    "migrate/v1_to_v3/json",
    "migrate/v1_to_v3/postcard",
    "migrate/current_v3/json",
    "migrate/current_v3/postcard",
    "schema_compile/session_v3",
    "session/part/parse_value",
    "session/part/parse_document",
    "session/part/validate_document",
    "session/part/deserialize_document",
    "session/part/serialize_document",
    "cache_2k/part/parse_value",
    "cache_2k/part/parse_document",
    "cache_2k/part/validate_document",
    "cache_2k/part/deserialize_document",
    "cache_2k/part/serialize_document",
];

/// Encoded sizes of a value, and where the bytes go: what any encoding must carry (string
/// contents), and what each codec adds (JSON: keys, quotes, punctuation, numbers as text;
/// postcard: length prefixes, varints, 8-byte floats).
fn sizes<T: Versioned>(name: &str, value: &T) {
    let json = serde_json::to_value(value).unwrap();
    let (mut strings, mut string_count, mut floats, mut ints, mut keys) = (0, 0, 0, 0, 0);
    let mut stack = vec![&json];
    while let Some(v) = stack.pop() {
        match v {
            serde_json::Value::String(s) => {
                strings += s.len();
                string_count += 1;
            }
            serde_json::Value::Number(n) if n.is_f64() => floats += 1,
            serde_json::Value::Number(_) => ints += 1,
            serde_json::Value::Array(a) => stack.extend(a),
            serde_json::Value::Object(o) => {
                keys += o.keys().map(String::len).sum::<usize>();
                stack.extend(o.values());
            }
            _ => {}
        }
    }
    let raw_json = serde_json::to_vec(value).unwrap().len();
    let env_json = encode_value(value, Codec::Json, Some(NOW)).unwrap().len();
    let env_pc = encode_value(value, Codec::Postcard, Some(NOW))
        .unwrap()
        .len();
    let payload_pc = postcard::to_allocvec(value).unwrap().len();
    println!(
        "{{\"value\":\"{name}\",\"raw_json\":{raw_json},\"envelope_json\":{env_json},\"envelope_postcard\":{env_pc},\"payload_postcard\":{payload_pc},\"string_bytes\":{strings},\"strings\":{string_count},\"key_bytes\":{keys},\"floats\":{floats},\"integers\":{ints}}}"
    );
}

/// Median of `xs` (sorted in place).
fn median(xs: &mut [f64]) -> f64 {
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    }
}

fn time_ns(n: usize, f: &mut dyn FnMut()) -> f64 {
    let start = std::time::Instant::now();
    kvbench_measured(n, f);
    start.elapsed().as_nanos() as f64 / n as f64
}

/// Alternating rounds of `a` and `b`; see the module docs.
fn paired(a_name: &str, b_name: &str, rounds: usize) {
    let (Some(mut a), Some(mut b)) = (case(a_name), case(b_name)) else {
        eprintln!("unknown case; `ratios list` prints them");
        std::process::exit(2);
    };
    // Iterations per round: about 2 ms of the slower side (the fastest of three tries, so a
    // preemption during calibration does not shrink the rounds).
    let mut n = 1;
    loop {
        let per_call =
            |f: &mut dyn FnMut()| (0..3).map(|_| time_ns(n, f)).fold(f64::INFINITY, f64::min);
        let t = per_call(&mut a).max(per_call(&mut b)) * n as f64;
        if t > 2e6 || n >= 1 << 20 {
            break;
        }
        n *= 2;
    }
    let (mut ta, mut tb, mut ratio) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        // Alternate which side goes first, so neither always runs on a warmer cache.
        let (x, y) = if round % 2 == 0 {
            let x = time_ns(n, &mut a);
            (x, time_ns(n, &mut b))
        } else {
            let y = time_ns(n, &mut b);
            (time_ns(n, &mut a), y)
        };
        ta.push(x);
        tb.push(y);
        ratio.push(y / x);
    }
    println!(
        "{{\"a\":\"{a_name}\",\"b\":\"{b_name}\",\"rounds\":{rounds},\"iters\":{n},\"a_ns\":{:.1},\"b_ns\":{:.1},\"ratio\":{:.3}}}",
        median(&mut ta),
        median(&mut tb),
        median(&mut ratio)
    );
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| args.get(i).map(String::as_str);
    // `cargo bench` runs every bench target with `--bench`: nothing to do then.
    match arg(0) {
        None | Some("--bench") => {}
        Some("list") => CASES.iter().for_each(|c| println!("{c}")),
        Some("sizes") => {
            sizes("session", &session());
            sizes("cache_2k", &popular());
        }
        Some("paired") => {
            let rounds = arg(3).and_then(|r| r.parse().ok()).unwrap_or(101);
            paired(arg(1).unwrap_or(""), arg(2).unwrap_or(""), rounds);
        }
        Some("run") => {
            let name = arg(1).unwrap_or("");
            let n: usize = arg(2).and_then(|n| n.parse().ok()).unwrap_or(1000);
            let Some(mut f) = case(name) else {
                eprintln!("unknown case {name}; `ratios list` prints them");
                std::process::exit(2);
            };
            // One call outside the measurement: lazy statics, first allocations.
            f();
            kvbench_measured(n, &mut f);
        }
        Some(other) => {
            eprintln!("unknown command {other}: list | run <case> <n> | paired <a> <b> [rounds]");
            std::process::exit(2);
        }
    }
}
