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
    decode_value, encode_value,
    envelope::{self, Codec},
    migrate::check_header,
    schema::instance::Document,
    session::Session,
    Versioned,
};
use serde::{de::DeserializeOwned, Serialize};

mod common;

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
        // The parts of a validated read, for profiles.
        "part/parse_value" => Box::new(move || {
            black_box(serde_json::from_slice::<serde_json::Value>(black_box(&payload)).unwrap());
        }),
        "part/parse_document" => Box::new(move || {
            black_box(Document::parse(black_box(&payload)).unwrap());
        }),
        "part/validate_document" => {
            let validator = T::validator(T::VERSION).unwrap();
            let doc = Document::parse(&payload).unwrap().to_value();
            let doc = Document::from_serialize(&doc).unwrap();
            Box::new(move || {
                black_box(validator.is_valid(black_box(&doc).root()));
            })
        }
        "part/deserialize_document" => {
            let doc = Document::from_serialize(
                &serde_json::from_slice::<serde_json::Value>(&payload).unwrap(),
            )
            .unwrap();
            Box::new(move || {
                black_box(T::deserialize(black_box(&doc).root()).unwrap());
            })
        }
        "part/serialize_document" => Box::new(move || {
            black_box(Document::from_serialize(black_box(&value)).unwrap());
        }),
        _ => return None,
    })
}

fn case(name: &str) -> Option<Box<dyn FnMut()>> {
    if let Some(what) = name.strip_prefix("session/") {
        return value_case(what, session());
    }
    if let Some(what) = name.strip_prefix("cache_2k/") {
        return value_case::<Popular>(what, popular());
    }
    let big = popular();
    let codec = |s: &str| match s {
        "json" => Codec::Json,
        _ => Codec::Postcard,
    };
    Session::warm_up().unwrap();
    let mut parts = name.split('/');
    Some(match (parts.next()?, parts.next()?, parts.next()) {
        ("reject", "expired", Some(c)) => {
            let bytes = envelope::encode(codec(c), "session", 3, Some(NOW - 1), &big).unwrap();
            Box::new(move || {
                let h = envelope::peek_header(black_box(&bytes)).unwrap();
                assert!(!check_header::<Session>(&h, NOW).unwrap());
            })
        }
        ("reject", "future_version", Some(c)) => {
            let bytes = envelope::encode(codec(c), "session", 9, None, &big).unwrap();
            Box::new(move || {
                let h = envelope::peek_header(black_box(&bytes)).unwrap();
                assert!(check_header::<Session>(&h, NOW).is_err());
            })
        }
        ("migrate", "v1_to_v3", Some(c)) => {
            let bytes = envelope::encode(codec(c), "session", 1, None, &session_v1()).unwrap();
            Box::new(move || {
                black_box(decode_value::<Session>(black_box(&bytes), NOW, true).unwrap());
            })
        }
        ("migrate", "current_v3", Some(c)) => {
            let bytes = encode_value(&session(), codec(c), None).unwrap();
            Box::new(move || {
                black_box(decode_value::<Session>(black_box(&bytes), NOW, true).unwrap());
            })
        }
        ("schema_compile", "session_v3", None) => {
            let schema = Session::schema(3).unwrap();
            Box::new(move || {
                black_box(kv_envelope::schema::compile("session", 3, black_box(&schema)).unwrap());
            })
        }
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
    "cache_2k/read/raw_serde_json",
    "cache_2k/read/json_unvalidated",
    "cache_2k/read/json_validated",
    "cache_2k/read/postcard_unvalidated",
    "cache_2k/read/postcard_validated",
    "cache_2k/write/raw_serde_json",
    "cache_2k/write/json",
    "cache_2k/write/postcard",
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
    // Iterations per round: about 2 ms of the slower side.
    let mut n = 1;
    loop {
        let t = time_ns(n, &mut a).max(time_ns(n, &mut b)) * n as f64;
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
