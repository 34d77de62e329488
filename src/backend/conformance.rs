//! The backend conformance cases that need no clock of their own, run against a live namespace
//! (feature `conformance`): what every [`KvBackend`](super::KvBackend) must do, checked through
//! a [`Kv`] handle, on real Workers KV or Durable Objects as on the in-memory ones. The demo
//! worker runs them on workerd (`POST /_conformance` when `CONFORMANCE=on`), and
//! `tests/backend_conformance.rs` runs them natively beside the cases that move a test clock.
//!
//! Every key lives under `root` (give each run its own, e.g. `conformance:<random>:`; two
//! `:`-separated fields so that Durable Objects placed by group keep a run in one object), and
//! the run deletes what it wrote. Some cases write one key twice in a row: on Workers KV, whose
//! limit is one write per second per key, run them where that limit is not enforced (workerd's
//! local KV) or expect `overwrite` to meet a 429.

use serde::Serialize;

use super::{Consistency, Expected, Kv, Stamp, MAX_KEY_BYTES};
use crate::error::{Error, LimitError};

/// The outcome of one case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CaseReport {
    /// The case.
    pub name: &'static str,
    /// Whether every check of it held.
    pub passed: bool,
    /// The first check that failed (names keys by their suffix under the root only).
    pub failure: Option<String>,
}

type Outcome = Result<(), String>;

macro_rules! check {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(format!($($msg)+));
        }
    };
}

fn io<T>(what: &str, r: crate::error::Result<T>) -> Result<T, String> {
    r.map_err(|e| format!("{what}: {e}"))
}

fn same_json(got: Option<&str>, want: &str) -> bool {
    let parse = |t: &str| serde_json::from_str::<serde_json::Value>(t).ok();
    got.and_then(parse).is_some_and(|g| Some(g) == parse(want))
}

struct Run<'a> {
    kv: &'a Kv,
    root: &'a str,
}

impl Run<'_> {
    fn key(&self, suffix: &str) -> String {
        format!("{}{suffix}", self.root)
    }

    async fn put(&self, suffix: &str, value: &[u8], metadata: Option<&str>) -> Outcome {
        io(
            "put",
            self.kv
                .put(&self.key(suffix), value, None, metadata.map(Into::into))
                .await,
        )
    }

    async fn get(&self, suffix: &str) -> Result<Option<super::Stored>, String> {
        io("get", self.kv.get(&self.key(suffix)).await)
    }

    async fn names(&self, suffix: &str, limit: u32) -> Result<Vec<String>, String> {
        let prefix = self.key(suffix);
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..1000 {
            let page = io(
                "list",
                self.kv.list(&prefix, cursor.as_deref(), limit).await,
            )?;
            check!(page.keys.len() <= limit as usize, "a page over its limit");
            out.extend(
                page.keys
                    .into_iter()
                    .map(|k| k.name[self.root.len()..].to_string()),
            );
            if page.list_complete {
                return Ok(out);
            }
            cursor = Some(page.cursor.ok_or("an incomplete page without a cursor")?);
        }
        Err("list never completed".into())
    }

    async fn missing_is_none(&self) -> Outcome {
        check!(
            self.get("nothing-here").await?.is_none(),
            "a missing key read as a value"
        );
        Ok(())
    }

    async fn round_trip(&self) -> Outcome {
        let meta = r#"{"t":"session","v":3,"c":"json"}"#;
        self.put("rt", b"\x00\xffbytes", Some(meta)).await?;
        let got = self.get("rt").await?.ok_or("written value missing")?;
        check!(got.value == b"\x00\xffbytes", "value bytes changed");
        // KV keeps metadata as a JSON object, not as text: equal as JSON (key order may not be
        // kept; workerd's KV sorts it).
        check!(same_json(got.metadata.as_deref(), meta), "metadata changed");
        self.put("rt-plain", b"v", None).await?;
        let got = self.get("rt-plain").await?.ok_or("written value missing")?;
        check!(
            got.metadata.is_none(),
            "metadata appeared on a write without it"
        );
        self.put("rt-empty", b"", None).await?;
        let got = self.get("rt-empty").await?.ok_or("empty value missing")?;
        check!(got.value.is_empty(), "empty value changed");
        let unicode = "sessión:ключ:🔑";
        self.put(unicode, b"u", None).await?;
        check!(
            self.get(unicode).await?.map(|s| s.value) == Some(b"u".to_vec()),
            "unicode key"
        );
        Ok(())
    }

    async fn overwrite(&self) -> Outcome {
        self.put("ow", b"one", None).await?;
        self.put("ow", b"two", None).await?;
        let got = self.get("ow").await?.ok_or("overwritten value missing")?;
        check!(got.value == b"two", "the last write did not win");
        Ok(())
    }

    async fn delete(&self) -> Outcome {
        self.put("del", b"v", None).await?;
        io("delete", self.kv.delete(&self.key("del")).await)?;
        check!(self.get("del").await?.is_none(), "deleted key still read");
        io("delete", self.kv.delete(&self.key("del")).await)?;
        io("delete", self.kv.delete(&self.key("never-written")).await)?;
        Ok(())
    }

    async fn list_prefix_order_and_pages(&self) -> Outcome {
        for k in ["l:b:2", "l:a:1", "l:b:1", "l:ba", "l:c", "l:b:10"] {
            self.put(k, b"v", None).await?;
        }
        check!(
            self.names("l:b:", 1000).await? == ["l:b:1", "l:b:10", "l:b:2"],
            "prefix l:b: in key order"
        );
        check!(self.names("l:b", 1000).await?.len() == 4, "prefix l:b");
        check!(self.names("l:", 1000).await?.len() == 6, "prefix l:");
        check!(self.names("l:zzz", 1000).await?.is_empty(), "empty prefix");
        let expected: Vec<String> = (0..25).map(|i| format!("p:{i:03}")).collect();
        for k in &expected {
            self.put(k, b"v", None).await?;
        }
        for limit in [1, 7, 1000] {
            check!(
                self.names("p:", limit).await? == expected,
                "pages of {limit} did not cover each key once"
            );
        }
        let page = io("list", self.kv.list(&self.key("p:"), None, 3).await)?;
        check!(page.keys.len() <= 3, "page over limit 3");
        check!(
            !page.list_complete && page.cursor.is_some(),
            "a partial page says so"
        );
        let nothing = io("list", self.kv.list(&self.key("none:"), None, 10).await)?;
        check!(
            nothing.keys.is_empty() && nothing.list_complete,
            "a list of nothing"
        );
        Ok(())
    }

    async fn list_metadata_expiration_and_deletes(&self) -> Outcome {
        let expires_at = self.kv.now_ms() + 3_600_000;
        io(
            "put",
            self.kv
                .put(
                    &self.key("m:1"),
                    b"v",
                    Some(expires_at),
                    Some(r#"{"v":2}"#.into()),
                )
                .await,
        )?;
        self.put("m:2", b"v", None).await?;
        self.put("m:3", b"v", None).await?;
        io("delete", self.kv.delete(&self.key("m:3")).await)?;
        let keys = io("list", self.kv.list_all(&self.key("m:"), 100).await)?;
        check!(
            keys.len() == 2,
            "listed {} keys, not 2 (a deleted key listed?)",
            keys.len()
        );
        check!(
            keys[0].expiration == Some(expires_at.div_ceil(1000)),
            "listed expiration"
        );
        check!(
            keys[0].metadata.as_deref() == Some(r#"{"v":2}"#),
            "listed metadata"
        );
        check!(
            keys[1].expiration.is_none() && keys[1].metadata.is_none(),
            "plain key"
        );
        Ok(())
    }

    async fn get_many(&self) -> Outcome {
        self.put("gm:1", b"one", Some(r#"{"n":1}"#)).await?;
        self.put("gm:2", b"two", None).await?;
        let mut keys = vec![
            self.key("gm:1"),
            self.key("gm:none"),
            self.key("gm:2"),
            self.key("gm:1"),
        ];
        // Absent keys outside the root's group, each its own Durable Object when placed by
        // group (read only, never written): a bulk read that spans more objects than it
        // keeps in flight at once.
        let under_root = keys.len();
        let elsewhere = self.root.replace(':', "/");
        keys.extend((0..8).map(|i| format!("{elsewhere}gm-{i}:absent")));
        let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
        let many = io("get_many", self.kv.get_many(&refs).await)?;
        check!(many.len() == keys.len(), "one answer per key");
        check!(
            many[under_root..].iter().all(Option::is_none),
            "a key nothing was written to"
        );
        for (key, got) in refs.iter().zip(&many) {
            let single = io("get", self.kv.get(key).await)?;
            check!(&single == got, "a bulk answer differs from a single get");
        }
        check!(many[1].is_none(), "a missing key in bulk");
        Ok(())
    }

    async fn conditional_write(&self) -> Outcome {
        let key = self.key("cw");
        let put_if = |value: &'static [u8], expected: Expected| {
            let key = key.clone();
            async move {
                io(
                    "put_if",
                    self.kv.put_if(&key, value, None, None, &expected).await,
                )
            }
        };
        if self.kv.consistency() == Consistency::Eventual {
            let refused = self
                .kv
                .put_if(&key, b"x", None, None, &Expected::Absent)
                .await;
            check!(
                matches!(refused, Err(Error::Backend { op: "put_if", .. })),
                "an eventually consistent backend must refuse put_if"
            );
            check!(self.get("cw").await?.is_none(), "a refused put_if wrote");
            return Ok(());
        }
        check!(
            put_if(b"one", Expected::Absent).await?,
            "absent: not written"
        );
        check!(
            !put_if(b"two", Expected::Absent).await?,
            "present: written anyway"
        );
        check!(
            !put_if(b"two", Expected::Stamp(Stamp::of(b"other"))).await?,
            "another stamp: written anyway"
        );
        check!(
            put_if(b"two", Expected::Stamp(Stamp::of(b"one"))).await?,
            "its stamp: not written"
        );
        check!(
            !put_if(b"three", Expected::Stamp(Stamp::of(b"one"))).await?,
            "a stale stamp: written anyway"
        );
        io("delete", self.kv.delete(&key).await)?;
        check!(
            !put_if(b"back", Expected::Stamp(Stamp::of(b"two"))).await?,
            "a deleted value came back"
        );
        check!(self.get("cw").await?.is_none(), "deleted value readable");
        Ok(())
    }

    async fn conditional_delete(&self) -> Outcome {
        let key = self.key("cd");
        io("put", self.kv.put(&key, b"one", None, None).await)?;
        if self.kv.consistency() == Consistency::Eventual {
            let refused = self.kv.delete_if(&key, &Stamp::of(b"one")).await;
            check!(
                matches!(
                    refused,
                    Err(Error::Backend {
                        op: "delete_if",
                        ..
                    })
                ),
                "an eventually consistent backend must refuse delete_if"
            );
            check!(
                self.get("cd").await?.is_some(),
                "a refused delete_if deleted"
            );
            return Ok(());
        }
        let delete_if = |stamp: Stamp| {
            let key = key.clone();
            async move { io("delete_if", self.kv.delete_if(&key, &stamp).await) }
        };
        check!(
            !delete_if(Stamp::of(b"other")).await?,
            "another stamp: deleted anyway"
        );
        check!(
            self.get("cd").await?.is_some(),
            "a refused delete_if deleted"
        );
        check!(
            delete_if(Stamp::of(b"one")).await?,
            "its stamp: not deleted"
        );
        check!(self.get("cd").await?.is_none(), "deleted value readable");
        check!(
            !delete_if(Stamp::of(b"one")).await?,
            "nothing stored: reported deleted"
        );
        Ok(())
    }

    /// A large value: on KV (25 MiB per value) 1.9 MB round-trips; on Durable Objects, whose
    /// entries hold 2 MB, it is refused before any request with the largest value that fits,
    /// and a value of exactly that size round-trips (the storage really holds it).
    async fn largest_value(&self) -> Outcome {
        let key = self.key("big");
        let big = vec![0x5au8; 1_900_000];
        let size = match self.kv.put(&key, &big, None, None).await {
            Ok(()) => big.len(),
            Err(Error::Limit(LimitError::ValueTooLarge { max, .. })) => {
                check!(
                    self.kv.consistency() == Consistency::Linearizable,
                    "KV refused a 1.9 MB value"
                );
                check!(
                    self.get("big").await?.is_none(),
                    "a refused value was written"
                );
                let fits = vec![0x5au8; max];
                io("put", self.kv.put(&key, &fits, None, None).await)?;
                max
            }
            Err(e) => return Err(format!("put: {}", e.kind())),
        };
        let back = self.get("big").await?;
        check!(
            back.is_some_and(|s| s.value.len() == size && s.value.iter().all(|&b| b == 0x5a)),
            "the large value did not come back whole"
        );
        io("delete", self.kv.delete(&key).await)?;
        Ok(())
    }

    async fn bad_keys_refused_before_io(&self) -> Outcome {
        let before = self.kv.counters().snapshot();
        let long = format!("{}{}", self.root, "k".repeat(MAX_KEY_BYTES));
        for key in ["", ".", "..", long.as_str()] {
            check!(
                matches!(self.kv.get(key).await, Err(Error::Limit(_))),
                "a bad key was read"
            );
            check!(
                matches!(
                    self.kv.put(key, b"v", None, None).await,
                    Err(Error::Limit(_))
                ),
                "a bad key was written"
            );
        }
        let after = self.kv.counters().snapshot();
        check!(
            after.kv_writes == before.kv_writes,
            "a refused write was counted as I/O"
        );
        Ok(())
    }

    async fn clean_up(&self) -> Outcome {
        let keys = io("list", self.kv.list_all(self.root, 100).await)?;
        for key in keys {
            io("delete", self.kv.delete(&key.name).await)?;
        }
        Ok(())
    }
}

/// Run every case under `root` (which should hold nothing) and delete what they wrote. One
/// report per case, in order; a failed case does not stop the others.
pub async fn run(kv: &Kv, root: &str) -> Vec<CaseReport> {
    let run = Run { kv, root };
    let mut reports = Vec::new();
    let mut record = |name: &'static str, outcome: Outcome| {
        reports.push(CaseReport {
            name,
            passed: outcome.is_ok(),
            failure: outcome.err(),
        });
    };
    record("missing_is_none", run.missing_is_none().await);
    record("round_trip", run.round_trip().await);
    record("overwrite", run.overwrite().await);
    record("delete", run.delete().await);
    record(
        "list_prefix_order_and_pages",
        run.list_prefix_order_and_pages().await,
    );
    record(
        "list_metadata_expiration_and_deletes",
        run.list_metadata_expiration_and_deletes().await,
    );
    record("get_many", run.get_many().await);
    record("conditional_write", run.conditional_write().await);
    record("conditional_delete", run.conditional_delete().await);
    record("largest_value", run.largest_value().await);
    record(
        "bad_keys_refused_before_io",
        run.bad_keys_refused_before_io().await,
    );
    record("clean_up", run.clean_up().await);
    reports
}
