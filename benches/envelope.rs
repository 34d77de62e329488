//! Envelope overhead, codecs, validation, migration and header-only rejection.
//! `make bench` runs this and writes the figures into BENCHMARKS.md.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use kv_envelope::{
    __internal::check_header, decode_value, encode_value, envelope, session::SessionRecord, Codec,
    Versioned,
};

mod common;

use common::{popular, session, session_v1, Popular, NOW};

fn read_group<T>(c: &mut Criterion, name: &str, value: &T)
where
    T: Versioned + Clone,
{
    T::warm_up().unwrap();
    let raw_json = serde_json::to_vec(value).unwrap();
    let env_json = encode_value(value, Codec::Json, Some(NOW + 60_000)).unwrap();
    let env_pc = encode_value(value, Codec::Postcard, Some(NOW + 60_000)).unwrap();
    eprintln!(
        "size {name}: raw_json={} envelope_json={} envelope_postcard={}",
        raw_json.len(),
        env_json.len(),
        env_pc.len()
    );
    let mut g = c.benchmark_group(format!("read/{name}"));
    g.bench_function("raw_serde_json", |b| {
        b.iter(|| serde_json::from_slice::<T>(black_box(&raw_json)).unwrap())
    });
    g.bench_function("json_unvalidated", |b| {
        b.iter(|| decode_value::<T>(black_box(&env_json), NOW, false).unwrap())
    });
    g.bench_function("json_validated", |b| {
        b.iter(|| decode_value::<T>(black_box(&env_json), NOW, true).unwrap())
    });
    g.bench_function("postcard_unvalidated", |b| {
        b.iter(|| decode_value::<T>(black_box(&env_pc), NOW, false).unwrap())
    });
    g.bench_function("postcard_validated", |b| {
        b.iter(|| decode_value::<T>(black_box(&env_pc), NOW, true).unwrap())
    });
    g.finish();

    let mut g = c.benchmark_group(format!("write/{name}"));
    g.bench_function("raw_serde_json", |b| {
        b.iter(|| serde_json::to_vec(black_box(value)).unwrap())
    });
    g.bench_function("json", |b| {
        b.iter(|| encode_value(black_box(value), Codec::Json, Some(NOW)).unwrap())
    });
    g.bench_function("postcard", |b| {
        b.iter(|| encode_value(black_box(value), Codec::Postcard, Some(NOW)).unwrap())
    });
    g.finish();
}

fn reads(c: &mut Criterion) {
    read_group(c, "session", &session());
    read_group::<Popular>(c, "cache_2k", &popular());
}

fn header_rejection(c: &mut Criterion) {
    let mut g = c.benchmark_group("reject");
    let big = popular();
    for codec in [Codec::Json, Codec::Postcard] {
        let expired = envelope::encode(codec, "session", 3, Some(NOW - 1), &big).unwrap();
        let future = envelope::encode(codec, "session", 9, None, &big).unwrap();
        g.bench_with_input(BenchmarkId::new("expired", codec), &expired, |b, bytes| {
            b.iter(|| {
                let h = envelope::peek_header(black_box(bytes)).unwrap();
                assert!(!check_header::<SessionRecord>(&h, NOW).unwrap());
            })
        });
        g.bench_with_input(
            BenchmarkId::new("future_version", codec),
            &future,
            |b, bytes| {
                b.iter(|| {
                    let h = envelope::peek_header(black_box(bytes)).unwrap();
                    assert!(check_header::<SessionRecord>(&h, NOW).is_err());
                })
            },
        );
    }
    g.finish();
}

fn migration(c: &mut Criterion) {
    SessionRecord::warm_up().unwrap();
    let v1 = session_v1();
    let mut g = c.benchmark_group("migrate");
    for codec in [Codec::Json, Codec::Postcard] {
        let old = envelope::encode(codec, "session", 1, None, &v1).unwrap();
        let cur = encode_value(&session(), codec, None).unwrap();
        g.bench_with_input(BenchmarkId::new("v1_to_v3", codec), &old, |b, bytes| {
            b.iter(|| decode_value::<SessionRecord>(black_box(bytes), NOW, true).unwrap())
        });
        g.bench_with_input(BenchmarkId::new("current_v3", codec), &cur, |b, bytes| {
            b.iter(|| decode_value::<SessionRecord>(black_box(bytes), NOW, true).unwrap())
        });
    }
    g.finish();
}

fn schema_compile(c: &mut Criterion) {
    let schema = SessionRecord::schema(3).unwrap();
    // What `SessionRecord::warm_up` pays per version, once per isolate.
    c.bench_function("schema_compile/session_v3", |b| {
        b.iter(|| kv_envelope::schema::compile("session", 3, black_box(&schema)).unwrap())
    });
}

criterion_group!(benches, reads, header_rejection, migration, schema_compile);
criterion_main!(benches);
