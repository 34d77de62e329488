//! A deterministic, seeded simulator of Workers KV's semantics, for tests.
//!
//! [`MemoryKv`](super::MemoryKv) is a perfect map: code that passes on it can still break on
//! KV, which is eventually consistent, rate-limited per key and has an expiration floor.
//! [`SimKv`] models those behaviours so that stores (ours and yours) can be tested against
//! them, with every random choice drawn from one seed so a failing run replays exactly.
//!
//! (One file on purpose, past 600 lines: the central store, the per-location caches and the
//! write limits are one state machine over one history per key; split, each file would hold
//! half of an invariant.)
//!
//! # The model
//!
//! * **Central store, last write wins.** Every `put`/`delete` is appended, in call order, to
//!   the history of its key in one central store. There is no compare-and-swap: the newest write
//!   is the truth.
//! * **Locations.** [`SimKv::location`] hands out one [`SimLocation`] per simulated data centre;
//!   each implements [`KvBackend`]. A write made through location `i` is visible in `i` at once
//!   (Cloudflare documents that changes are "usually immediately visible in the location at
//!   which they are made"; set [`SimConfig::read_your_writes`] to `false` to drop even that).
//!   Every other location sees it after a delay drawn per (write, location) from
//!   `0..=`[`SimConfig::propagation`]. Until then it keeps seeing the previous value — or the
//!   previous absence, or a value that has since been deleted. A location never goes back to an
//!   older write once it has seen a newer one (as long as the clock does not go backwards).
//! * **Negative-lookup caching.** A `get` that finds nothing makes the location remember the
//!   miss for [`SimConfig::propagation`]; while remembered, writes made elsewhere stay hidden
//!   there even if they have "arrived". Every write is still visible in every location at most
//!   `propagation` after it was made: that bound is the model's single promise, and the one
//!   tests can rely on.
//! * **Rate limit.** A second `put` to the same key less than [`SimConfig::write_interval`]
//!   (1 s) after the previous accepted one fails with [`Error::RateLimited`] (KV's 429) and
//!   changes nothing. Deletes are not limited unless [`SimConfig::rate_limit_deletes`] is set.
//! * **Expiration floor.** A `put` whose `expiration` is less than
//!   [`SimConfig::min_expiration`] (60 s) in the future is refused like KV's HTTP 400, as an
//!   [`Error::Backend`] with `retryable: false`. [`Kv`] clamps before calling, so
//!   this only fires for raw backend use — which is the point: it proves the clamp exists.
//! * **Limits.** Keys (empty, `.`, `..`, over 512 bytes), values over 25 MiB and metadata over
//!   1024 bytes are refused with the same [`LimitError`]s [`Kv`] uses.
//! * **Late expiry.** KV deletes expired keys lazily. A value may still be returned by `get` for
//!   up to [`SimConfig::expiry_lag`] after its KV expiration and listed for up to
//!   [`SimConfig::list_linger`] after it. Stores must check the envelope's own `expires_at`.
//! * **Lists.** Pages follow key order under the prefix, with opaque cursors; a page may be empty
//!   while `list_complete` is false ([`SimConfig::empty_page_rate`]). Lists see each location's
//!   propagated view but not its negative cache.
//! * **Bulk gets.** [`KvBackend::get_bulk`] (up to 100 keys, more is a 400) is one call: one
//!   fault draw, one instant, and each key is read exactly as a single `get` would read it at
//!   that location — its own propagation delay, negative cache and late expiry.
//! * **Faults.** With [`SimConfig::fault_rate`], any call may fail with a retryable
//!   [`Error::Backend`] before doing anything.
//!
//! All randomness comes from a SplitMix64 generator seeded by [`SimKv::new`]; the same seed,
//! configuration and sequence of calls and clock moves give the same results.
//!
//! (One file on purpose, longer than the others: the doc above is the model's specification and
//! the code below is the one state machine that implements it, each rule next to the code that
//! keeps it; split, the promise and its keeping would sit in different files.)

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    time::Duration,
};

use super::{
    check_key, BulkRead, Kv, KvBackend, ListKey, ListPage, Stored, WriteOptions, MAX_BULK_KEYS,
    MAX_LIST_LIMIT, MAX_METADATA_BYTES, MAX_VALUE_BYTES,
};
use crate::{
    clock::SharedClock,
    error::{Error, LimitError, Result},
};

/// How the simulator behaves. Start from [`SimConfig::default`] (KV-like, three locations) or
/// [`SimConfig::strong`] (one location, no staleness) and adjust fields.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct SimConfig {
    /// Number of simulated locations (at least 1).
    pub locations: usize,
    /// Longest time a write takes to become visible in every location; also how long a
    /// location remembers a miss. KV documents "60 seconds or more".
    pub propagation: Duration,
    /// Whether the location that made a write sees it at once.
    pub read_your_writes: bool,
    /// Whether misses are cached per location (KV caches negative lookups).
    pub negative_cache: bool,
    /// Minimum time between two accepted writes to one key (KV: 1 s); `ZERO` disables.
    pub write_interval: Duration,
    /// Whether deletes count as writes for the rate limit.
    pub rate_limit_deletes: bool,
    /// Shortest accepted distance between now and a `put`'s expiration (KV: 60 s).
    pub min_expiration: Duration,
    /// Longest time an expired value may still be returned by `get`.
    pub expiry_lag: Duration,
    /// Longest time an expired key may still appear in `list`.
    pub list_linger: Duration,
    /// Probability that a `list` page that could hold keys comes back empty (with a cursor).
    pub empty_page_rate: f64,
    /// Probability that any call fails with a retryable backend error.
    pub fault_rate: f64,
}

impl Default for SimConfig {
    /// KV as documented: three locations, 60 s propagation, negative caching, read-your-writes,
    /// 1 write/s per key, 60 s expiration floor, expired values served up to 10 s late and
    /// listed up to 60 s late, one list page in ten empty, no faults.
    fn default() -> Self {
        Self {
            locations: 3,
            propagation: Duration::from_secs(60),
            read_your_writes: true,
            negative_cache: true,
            write_interval: Duration::from_secs(1),
            rate_limit_deletes: false,
            min_expiration: Duration::from_secs(60),
            expiry_lag: Duration::from_secs(10),
            list_linger: Duration::from_secs(60),
            empty_page_rate: 0.1,
            fault_rate: 0.0,
        }
    }
}

impl SimConfig {
    /// One location, strongly consistent, expiry exact, no empty pages, no faults — but KV's
    /// rate limit, expiration floor and size limits still apply.
    pub fn strong() -> Self {
        Self {
            locations: 1,
            propagation: Duration::ZERO,
            negative_cache: false,
            expiry_lag: Duration::ZERO,
            list_linger: Duration::ZERO,
            empty_page_rate: 0.0,
            ..Self::default()
        }
    }

    /// Set the number of locations.
    #[must_use]
    pub fn with_locations(mut self, n: usize) -> Self {
        self.locations = n;
        self
    }

    /// Set the propagation window.
    #[must_use]
    pub fn with_propagation(mut self, window: Duration) -> Self {
        self.propagation = window;
        self
    }

    /// Set the fault probability.
    #[must_use]
    pub fn with_fault_rate(mut self, p: f64) -> Self {
        self.fault_rate = p;
        self
    }

    /// Set the probability of empty list pages.
    #[must_use]
    pub fn with_empty_page_rate(mut self, p: f64) -> Self {
        self.empty_page_rate = p;
        self
    }

    /// Set the rate-limit interval (`ZERO` disables the limit).
    #[must_use]
    pub fn with_write_interval(mut self, interval: Duration) -> Self {
        self.write_interval = interval;
        self
    }
}

/// What the simulator did that a perfect store would not have: lets a test assert that the
/// behaviour it meant to exercise really happened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SimStats {
    /// Reads that returned something other than the newest write (older value, deleted value,
    /// or a miss for a key that exists).
    pub stale_reads: u64,
    /// Reads answered "missing" because of a cached negative lookup.
    pub negative_cache_hits: u64,
    /// Writes refused with 429.
    pub rate_limited: u64,
    /// Writes refused for an expiration under the floor.
    pub rejected_expirations: u64,
    /// Reads that returned a value past its KV expiration.
    pub late_expiry_reads: u64,
    /// Empty list pages returned before the end.
    pub empty_pages: u64,
    /// Injected faults.
    pub faults: u64,
    /// Bulk gets served (each reads up to 100 keys).
    pub bulk_gets: u64,
}

/// Deterministic generator (SplitMix64): tiny, fast, and the same on every platform.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..=max`.
    fn up_to(&mut self, max: u64) -> u64 {
        match max.checked_add(1) {
            Some(0) | None => self.next_u64(),
            Some(n) => self.next_u64() % n,
        }
    }

    /// True with probability `p` (clamped to 0..=1; NaN is 0).
    fn chance(&mut self, p: f64) -> bool {
        if p.is_nan() || p <= 0.0 {
            return false;
        }
        // 53 random bits make an exactly representable uniform float in [0, 1).
        #[allow(clippy::cast_precision_loss)]
        let x = (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        x < p
    }
}

#[derive(Debug, Clone)]
struct Entry {
    value: Arc<Vec<u8>>,
    metadata: Option<String>,
    /// KV expiration, seconds since the epoch.
    expiration: Option<u64>,
    /// How late `get` still returns it after `expiration`.
    expiry_lag_ms: u64,
    /// How late `list` still shows it after `expiration`.
    list_linger_ms: u64,
}

impl Entry {
    fn expiration_ms(&self) -> Option<u64> {
        self.expiration.map(|e| e.saturating_mul(1000))
    }

    /// Whether `get` still returns it at `now`, and whether that is late.
    fn readable(&self, now: u64) -> (bool, bool) {
        match self.expiration_ms() {
            None => (true, false),
            Some(exp) if now < exp => (true, false),
            Some(exp) => (now < exp.saturating_add(self.expiry_lag_ms), true),
        }
    }

    fn listable(&self, now: u64) -> bool {
        self.expiration_ms()
            .is_none_or(|exp| now < exp.saturating_add(self.list_linger_ms))
    }
}

/// One write (or delete, when `entry` is `None`) in a key's history.
#[derive(Debug, Clone)]
struct Write {
    /// Position in the namespace's global write order, from 1.
    seq: u64,
    at: u64,
    writer: usize,
    /// Arrival delay in each location, ms.
    delays: Vec<u64>,
    entry: Option<Entry>,
}

/// A miss remembered by one location.
#[derive(Debug, Clone, Copy)]
struct Negative {
    /// Until when it is remembered.
    until: u64,
    /// The write it rests on (a delete, an expired value), 0 for "before any write".
    seq: u64,
}

#[derive(Debug)]
struct State {
    config: SimConfig,
    rng: Rng,
    seq: u64,
    /// The clock's time for the call in progress.
    now: u64,
    /// Oldest first. Writes older than the newest fully propagated one are pruned.
    keys: BTreeMap<String, Vec<Write>>,
    /// Time of the last accepted rate-limited write per key.
    last_write: HashMap<String, u64>,
    /// Per location: key → remembered miss.
    negative: Vec<HashMap<String, Negative>>,
    stats: SimStats,
}

impl State {
    fn window_ms(&self) -> u64 {
        duration_ms(self.config.propagation)
    }

    fn fault(&mut self, op: &'static str) -> Result<()> {
        if self.rng.chance(self.config.fault_rate) {
            self.stats.faults += 1;
            return Err(Error::Backend {
                op,
                message: "simulated kv fault".into(),
                retryable: true,
            });
        }
        Ok(())
    }

    /// Whether write `w` has reached location `loc` at `now`, ignoring negative caching.
    fn arrived(&self, w: &Write, loc: usize, now: u64) -> bool {
        if loc == w.writer && self.config.read_your_writes {
            return true;
        }
        let delay = w.delays.get(loc).copied().unwrap_or(0);
        now >= w.at.saturating_add(delay)
    }

    /// Index of the newest write of `history` visible in `loc` (negative cache ignored).
    fn visible(&self, history: &[Write], loc: usize, now: u64) -> Option<usize> {
        history.iter().rposition(|w| self.arrived(w, loc, now))
    }

    fn get(&mut self, loc: usize, key: &str) -> Result<Option<Stored>> {
        self.fault("get")?;
        self.read(loc, key)
    }

    /// A bulk get: one operation (one fault draw), every key read at the same instant with
    /// its own staleness, negative caching and late expiry, as single gets would.
    fn get_bulk(&mut self, loc: usize, keys: &[&str]) -> Result<BulkRead> {
        self.fault("get_bulk")?;
        if keys.len() > MAX_BULK_KEYS {
            return Err(Error::Backend {
                op: "get_bulk",
                message: format!("400: at most {MAX_BULK_KEYS} keys per bulk get"),
                retryable: false,
            });
        }
        for key in keys {
            check_key(key)?;
        }
        let values = keys
            .iter()
            .map(|k| self.read(loc, k))
            .collect::<Result<_>>()?;
        self.stats.bulk_gets += 1;
        Ok(BulkRead {
            values,
            bulk_ops: 1,
            single_reads: 0,
        })
    }

    fn read(&mut self, loc: usize, key: &str) -> Result<Option<Stored>> {
        check_key(key)?;
        let now = self.now;
        let history: &[Write] = self.keys.get(key).map_or(&[], Vec::as_slice);
        let newest_live = history
            .last()
            .and_then(|w| w.entry.as_ref())
            .is_some_and(|e| e.readable(now).0);
        let visible = self.visible(history, loc, now);
        let view_seq = visible.map_or(0, |i| history[i].seq);
        let hidden = self.hidden_by_negative(loc, key, history, now);
        let hit = match visible {
            Some(i) if !hidden => history[i].entry.as_ref().and_then(|e| {
                let (readable, late) = e.readable(now);
                readable.then(|| {
                    let stored = Stored {
                        value: e.value.as_ref().clone(),
                        metadata: e.metadata.clone(),
                    };
                    (stored, i + 1 != history.len(), late)
                })
            }),
            _ => None,
        };
        match hit {
            Some((stored, stale, late)) => {
                self.stats.stale_reads += u64::from(stale);
                self.stats.late_expiry_reads += u64::from(late);
                Ok(Some(stored))
            }
            None => {
                self.stats.negative_cache_hits += u64::from(hidden);
                Ok(self.miss(loc, key, now, newest_live, view_seq))
            }
        }
    }

    /// Whether a remembered miss still hides the writes made after it. It may only while none
    /// of them is the location's own write and the oldest is younger than the window: that
    /// keeps "every write visible everywhere within the window" true.
    fn hidden_by_negative(&self, loc: usize, key: &str, history: &[Write], now: u64) -> bool {
        if !self.config.negative_cache {
            return false;
        }
        let Some(neg) = self.negative[loc].get(key) else {
            return false;
        };
        if now >= neg.until {
            return false;
        }
        let mut after = history.iter().filter(|w| w.seq > neg.seq).peekable();
        let Some(oldest) = after.peek() else {
            return false;
        };
        if now >= oldest.at.saturating_add(self.window_ms()) {
            return false;
        }
        !after.any(|w| w.writer == loc && self.config.read_your_writes)
    }

    /// Serve a miss: count it as stale when the key has a live value, and remember it (resting
    /// on write `view_seq`, 0 for "before any write") unless a miss is already remembered.
    fn miss(
        &mut self,
        loc: usize,
        key: &str,
        now: u64,
        newest_live: bool,
        view_seq: u64,
    ) -> Option<Stored> {
        if newest_live {
            self.stats.stale_reads += 1;
        }
        if self.config.negative_cache {
            let until = now.saturating_add(self.window_ms());
            let slot = self.negative[loc]
                .entry(key.to_string())
                .or_insert(Negative { until: 0, seq: 0 });
            if slot.until <= now {
                *slot = Negative {
                    until,
                    seq: view_seq,
                };
            }
        }
        None
    }

    fn check_rate(&mut self, key: &str) -> Result<()> {
        let interval = duration_ms(self.config.write_interval);
        if interval == 0 {
            return Ok(());
        }
        if let Some(&last) = self.last_write.get(key) {
            if self.now < last.saturating_add(interval) {
                self.stats.rate_limited += 1;
                return Err(Error::RateLimited);
            }
        }
        self.last_write.insert(key.to_string(), self.now);
        Ok(())
    }

    fn put(&mut self, loc: usize, key: &str, value: &[u8], options: &WriteOptions) -> Result<()> {
        self.fault("put")?;
        check_key(key)?;
        if value.len() > MAX_VALUE_BYTES {
            return Err(LimitError::ValueTooLarge {
                len: value.len(),
                max: MAX_VALUE_BYTES,
            }
            .into());
        }
        if let Some(m) = &options.metadata {
            if m.len() > MAX_METADATA_BYTES {
                return Err(LimitError::MetadataTooLarge {
                    len: m.len(),
                    max: MAX_METADATA_BYTES,
                }
                .into());
            }
        }
        if let Some(exp) = options.expiration {
            let floor = self
                .now
                .saturating_add(duration_ms(self.config.min_expiration));
            if exp.saturating_mul(1000) < floor {
                self.stats.rejected_expirations += 1;
                return Err(Error::Backend {
                    op: "put",
                    message: "400: expiration must be at least 60 seconds in the future".into(),
                    retryable: false,
                });
            }
        }
        self.check_rate(key)?;
        let entry = Entry {
            value: Arc::new(value.to_vec()),
            metadata: options.metadata.clone(),
            expiration: options.expiration,
            expiry_lag_ms: self.rng.up_to(duration_ms(self.config.expiry_lag)),
            list_linger_ms: self.rng.up_to(duration_ms(self.config.list_linger)),
        };
        self.append(loc, key, Some(entry));
        Ok(())
    }

    fn delete(&mut self, loc: usize, key: &str) -> Result<()> {
        self.fault("delete")?;
        check_key(key)?;
        if self.config.rate_limit_deletes {
            self.check_rate(key)?;
        }
        self.append(loc, key, None);
        Ok(())
    }

    fn append(&mut self, loc: usize, key: &str, entry: Option<Entry>) {
        let window = self.window_ms();
        let delays = (0..self.config.locations)
            .map(|_| self.rng.up_to(window))
            .collect();
        self.seq += 1;
        let now = self.now;
        let history = self.keys.entry(key.to_string()).or_default();
        history.push(Write {
            seq: self.seq,
            at: now,
            writer: loc,
            delays,
            entry,
        });
        // Everything before the newest write that every location has seen can never be
        // served again.
        if let Some(settled) = history
            .iter()
            .rposition(|w| now >= w.at.saturating_add(window))
        {
            history.drain(..settled);
        }
    }

    fn list(
        &mut self,
        loc: usize,
        prefix: &str,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<ListPage> {
        self.fault("list")?;
        let after = match cursor {
            None => None,
            Some(c) => Some(decode_cursor(c).ok_or_else(|| Error::Backend {
                op: "list",
                message: "400: invalid list cursor".into(),
                retryable: false,
            })?),
        };
        let limit = limit.clamp(1, MAX_LIST_LIMIT) as usize;
        let now = self.now;
        // A cursor from an empty first page (or from another prefix) may point before the prefix.
        let start = match &after {
            Some(a) if a.as_str() > prefix => a.clone(),
            _ => prefix.to_string(),
        };
        let mut keys = Vec::new();
        let mut more = false;
        let mut any_candidate = false;
        for (name, history) in self.keys.range(start..) {
            if !name.starts_with(prefix) {
                break;
            }
            if after.as_deref() == Some(name.as_str()) {
                continue;
            }
            let Some(i) = self.visible(history, loc, now) else {
                continue;
            };
            let Some(entry) = &history[i].entry else {
                continue;
            };
            if !entry.listable(now) {
                continue;
            }
            any_candidate = true;
            if keys.len() == limit {
                more = true;
                break;
            }
            keys.push(ListKey {
                name: name.clone(),
                expiration: entry.expiration,
                metadata: entry.metadata.clone(),
            });
        }
        if any_candidate && self.rng.chance(self.config.empty_page_rate) {
            self.stats.empty_pages += 1;
            // Same position again: the caller must follow the cursor, not stop.
            return Ok(ListPage {
                keys: Vec::new(),
                cursor: Some(encode_cursor(after.as_deref().unwrap_or(""))),
                list_complete: false,
            });
        }
        let cursor = if more {
            keys.last().map(|k| encode_cursor(&k.name))
        } else {
            None
        };
        Ok(ListPage {
            keys,
            cursor,
            list_complete: !more,
        })
    }
}

fn duration_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Cursors are opaque (`s1` + hex of the last key returned) so callers cannot build their own.
fn encode_cursor(after: &str) -> String {
    let mut out = String::with_capacity(2 + after.len() * 2);
    out.push_str("s1");
    for b in after.bytes() {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

fn decode_cursor(cursor: &str) -> Option<String> {
    let hex = cursor.strip_prefix("s1")?.as_bytes();
    if hex.len() % 2 != 0 {
        return None;
    }
    let bytes = hex
        .chunks(2)
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok())
        .collect::<Option<Vec<u8>>>()?;
    String::from_utf8(bytes).ok()
}

/// The shared state plus the clock; `now` is read once per call so one call sees one instant.
struct Shared {
    state: Mutex<State>,
    clock: SharedClock,
}

/// A simulated Workers KV namespace: a central store and [`SimConfig::locations`] locations.
/// Cheap to clone; clones share the namespace.
#[derive(Clone)]
pub struct SimKv {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for SimKv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimKv")
            .field("config", &self.config())
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl SimKv {
    /// A namespace driven by `clock`, with every random choice drawn from `seed`. A config with
    /// zero locations gets one.
    pub fn new(seed: u64, mut config: SimConfig, clock: SharedClock) -> Self {
        config.locations = config.locations.max(1);
        let locations = config.locations;
        Self {
            shared: Arc::new(Shared {
                state: Mutex::new(State {
                    config,
                    rng: Rng(seed),
                    seq: 0,
                    now: 0,
                    keys: BTreeMap::new(),
                    last_write: HashMap::new(),
                    negative: vec![HashMap::new(); locations],
                    stats: SimStats::default(),
                }),
                clock,
            }),
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> SimConfig {
        self.lock().config.clone()
    }

    /// Number of locations.
    pub fn locations(&self) -> usize {
        self.lock().config.locations
    }

    /// The propagation window: after it, every write is visible everywhere.
    pub fn propagation(&self) -> Duration {
        self.lock().config.propagation
    }

    /// The clock driving the simulation.
    pub fn clock(&self) -> &SharedClock {
        &self.shared.clock
    }

    /// Location `index` as a raw backend.
    ///
    /// # Panics
    /// When `index` is not below [`SimKv::locations`] (a bug in the test, not input).
    pub fn location(&self, index: usize) -> SimLocation {
        let n = self.locations();
        assert!(index < n, "SimKv has {n} locations, asked for {index}");
        SimLocation {
            sim: self.clone(),
            index,
        }
    }

    /// Location `index` wrapped in a [`Kv`] on the simulator's clock, ready for stores.
    ///
    /// # Panics
    /// When `index` is not below [`SimKv::locations`].
    pub fn kv(&self, index: usize) -> Kv {
        Kv::new(self.location(index)).with_clock(self.shared.clock.clone())
    }

    /// Counts of the non-ideal behaviours served so far.
    pub fn stats(&self) -> SimStats {
        self.lock().stats
    }

    /// Change the fault probability mid-test (e.g. to let a repair step run cleanly).
    pub fn set_fault_rate(&self, p: f64) {
        self.lock().config.fault_rate = p;
    }

    /// Plant a value as if written long ago: visible everywhere at once, no rate limit, no
    /// limits checked (for fixtures such as hostile bytes).
    pub fn insert_raw(&self, key: &str, value: Vec<u8>, expiration_secs: Option<u64>) {
        let mut inner = self.lock();
        inner.seq += 1;
        let write = Write {
            seq: inner.seq,
            at: 0,
            writer: 0,
            delays: Vec::new(),
            entry: Some(Entry {
                value: Arc::new(value),
                metadata: None,
                expiration: expiration_secs,
                expiry_lag_ms: 0,
                list_linger_ms: 0,
            }),
        };
        inner.keys.insert(key.to_string(), vec![write]);
    }

    /// The newest write of `key` in the central store (what every location converges to),
    /// ignoring expiry: `None` when never written or deleted.
    pub fn central(&self, key: &str) -> Option<Stored> {
        let inner = self.lock();
        let entry = inner.keys.get(key)?.last()?.entry.as_ref()?;
        Some(Stored {
            value: entry.value.as_ref().clone(),
            metadata: entry.metadata.clone(),
        })
    }

    /// Number of writes (puts and deletes) accepted by the central store so far.
    pub fn writes_accepted(&self) -> u64 {
        self.lock().seq
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Calls never panic while holding the lock; if a test thread did, the state is still
        // whole, so keep serving.
        self.shared
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Lock and read the clock, so a whole call happens at one instant.
    fn at_now(&self) -> MutexGuard<'_, State> {
        let now = self.shared.clock.now_ms();
        let mut inner = self.lock();
        inner.now = now;
        inner
    }
}

/// One simulated location of a [`SimKv`]: a [`KvBackend`] with that location's view.
#[derive(Clone)]
pub struct SimLocation {
    sim: SimKv,
    index: usize,
}

impl std::fmt::Debug for SimLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimLocation")
            .field("index", &self.index)
            .finish_non_exhaustive()
    }
}

impl SimLocation {
    /// Which location this is.
    pub fn index(&self) -> usize {
        self.index
    }

    /// The namespace this location belongs to.
    pub fn sim(&self) -> &SimKv {
        &self.sim
    }
}

#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
impl KvBackend for SimLocation {
    async fn get(&self, key: &str) -> Result<Option<Stored>> {
        self.sim.at_now().get(self.index, key)
    }

    async fn get_bulk(&self, keys: &[&str]) -> Result<BulkRead> {
        self.sim.at_now().get_bulk(self.index, keys)
    }

    async fn put(&self, key: &str, value: &[u8], options: &WriteOptions) -> Result<()> {
        self.sim.at_now().put(self.index, key, value, options)
    }

    async fn delete(&self, key: &str) -> Result<()> {
        self.sim.at_now().delete(self.index, key)
    }

    async fn list(&self, prefix: &str, cursor: Option<&str>, limit: u32) -> Result<ListPage> {
        self.sim.at_now().list(self.index, prefix, cursor, limit)
    }
}
