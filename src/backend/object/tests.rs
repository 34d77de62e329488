//! The object's logic, natively: requests, replies, records, the sweep and bulk reads.

use std::{collections::BTreeMap, sync::Mutex};

use futures::executor::block_on;

use super::{client::*, record::*, serve::*, sweep::*, *};
use crate::{
    backend::{placement::Placement, Stamp},
    error::{Error, Result},
};

/// One object's storage, with entries that are no record and an alarm that can fail.
#[derive(Default)]
struct Storage {
    entries: Mutex<BTreeMap<String, Option<Record>>>,
    alarm: Mutex<Option<u64>>,
    alarm_fails: bool,
}

#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
impl ObjectStorage for Storage {
    async fn read(&self, key: &str) -> Result<Option<Record>> {
        match self.entries.lock().unwrap().get(key) {
            None => Ok(None),
            Some(Some(r)) => Ok(Some(r.clone())),
            // As the Workers object reads text that is no record.
            Some(None) => Ok(Some(Record::from_stored_text("junk"))),
        }
    }
    async fn write(&self, key: &str, record: &Record) -> Result<()> {
        let mut entries = self.entries.lock().unwrap();
        entries.insert(key.into(), Some(record.clone()));
        Ok(())
    }
    async fn remove(&self, key: &str) -> Result<()> {
        self.entries.lock().unwrap().remove(key);
        Ok(())
    }
    async fn scan(
        &self,
        prefix: &str,
        start: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Option<Record>)>> {
        let entries = self.entries.lock().unwrap();
        let from = start.unwrap_or(prefix).max(prefix).to_string();
        Ok(entries
            .range(from..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .take(limit)
            .map(|(k, r)| (k.clone(), r.clone()))
            .collect())
    }
    async fn alarm(&self) -> Result<Option<u64>> {
        Ok(*self.alarm.lock().unwrap())
    }
    async fn set_alarm(&self, at_ms: u64) -> Result<()> {
        if self.alarm_fails {
            return Err(Error::Backend {
                op: "alarm",
                message: "alarm refused".into(),
                retryable: true,
            });
        }
        *self.alarm.lock().unwrap() = Some(at_ms);
        Ok(())
    }
}

const NOW: u64 = 1_800_000_000_000;

fn put(key: &str, value: &[u8], expiration: Option<u64>) -> ObjectRequest {
    ObjectRequest::Put {
        key: key.into(),
        record: Record::new(value, None, expiration),
        expected: None,
    }
}

#[test]
fn a_put_whose_alarm_cannot_be_set_writes_nothing_and_says_so() {
    let storage = Storage {
        alarm_fails: true,
        ..Storage::default()
    };
    let reply = block_on(serve(&storage, NOW, put("k", b"v", Some(NOW / 1000 + 60))));
    assert_eq!(
        reply,
        ObjectReply::Failed {
            message: "alarm refused".into(),
            retryable: true
        }
    );
    assert!(
        storage.entries.lock().unwrap().is_empty(),
        "nothing written"
    );
    // Without an expiration no alarm is needed, and the write lands.
    let reply = block_on(serve(&storage, NOW, put("k", b"v", None)));
    assert_eq!(reply, ObjectReply::Written { written: true });
}

#[test]
fn the_alarm_is_never_set_beyond_javascripts_last_date() {
    let storage = Storage::default();
    let reply = block_on(serve(&storage, NOW, put("k", b"v", Some(u64::MAX / 1000))));
    assert_eq!(reply, ObjectReply::Written { written: true });
    assert_eq!(*storage.alarm.lock().unwrap(), Some(MAX_ALARM_MS));
}

#[test]
fn entries_that_are_no_record_are_listed_bare_and_survive_the_sweep() {
    let storage = Storage::default();
    block_on(serve(
        &storage,
        NOW,
        put("a:old", b"v", Some(NOW / 1000 + 60)),
    ));
    block_on(serve(
        &storage,
        NOW,
        put("a:soon", b"v", Some(NOW / 1000 + 90)),
    ));
    storage
        .entries
        .lock()
        .unwrap()
        .insert("a:junk".into(), None);
    let later = NOW + 70_000;
    let listed = block_on(serve(
        &storage,
        later,
        ObjectRequest::List {
            prefix: "a:".into(),
            cursor: None,
            limit: 10,
        },
    ));
    let ObjectReply::Page { keys, .. } = listed else {
        panic!("{listed:?}")
    };
    let names: Vec<&str> = keys.iter().map(|k| k.name.as_str()).collect();
    assert_eq!(names, ["a:junk", "a:soon"]);
    let junk = block_on(serve(
        &storage,
        later,
        ObjectRequest::Get {
            keys: vec!["a:junk".into()],
        },
    ));
    // Read as the bytes of the text: unreadable for the store above, not a failure.
    let ObjectReply::Values { values } = junk else {
        panic!("{junk:?}")
    };
    assert_eq!(values[0].as_ref().unwrap().stored().unwrap().value, b"junk");
    assert_eq!(block_on(sweep(&storage, later)).unwrap(), 1);
    let left: Vec<String> = storage.entries.lock().unwrap().keys().cloned().collect();
    assert_eq!(left, ["a:junk", "a:soon"]);
    // The next expiry is 20 s away, but sweeps are spaced a minute apart.
    assert_eq!(
        *storage.alarm.lock().unwrap(),
        Some(later + SWEEP_SPACING_MS)
    );
}

#[test]
fn a_conditional_delete_deletes_only_the_value_it_names() {
    let storage = Storage::default();
    block_on(serve(&storage, NOW, put("k", b"one", None)));
    let delete = |stamp: &[u8]| {
        block_on(serve(
            &storage,
            NOW,
            ObjectRequest::Delete {
                key: "k".into(),
                expected: Some(Stamp::of(stamp).to_hex()),
            },
        ))
    };
    let deleted = |d: bool| ObjectReply::Deleted { deleted: Some(d) };
    assert_eq!(delete(b"two"), deleted(false));
    assert!(storage.entries.lock().unwrap().contains_key("k"));
    assert_eq!(delete(b"one"), deleted(true));
    assert_eq!(delete(b"one"), deleted(false));
    // An object running older code answers without the field: it deleted unconditionally,
    // which is what a delete asked for, and what a conditional delete must not accept.
    let old = || serde_json::from_str::<ObjectReply>(r#"{"reply":"deleted"}"#).unwrap();
    assert_eq!(old().into_deleted(false), Ok(true));
    assert!(matches!(
        old().into_deleted(true),
        Err(Error::Backend {
            op: "delete_if",
            retryable: false,
            ..
        })
    ));
}

#[test]
fn text_that_is_no_record_reads_as_its_own_bytes() {
    let record = Record::from_stored_text(r#"{"not": "a record"}"#);
    assert_eq!(record.stored().unwrap().value, br#"{"not": "a record"}"#);
    assert_eq!(record.stored().unwrap().metadata, None);
    let bad_base64 = Record::from_stored_text(r#"{"v":"%%% not base64"}"#);
    assert_eq!(bad_base64.stored().unwrap().value, b"%%% not base64");
}

#[test]
fn a_record_is_stored_as_ascii_and_reads_back_the_same() {
    let metadata = r#"{"note":"é ✓ 😀 \" \\ end"}"#.to_string();
    let record = Record::new(b"\x00\xffvalue", Some(metadata), Some(1_900_000_000));
    let text = record.to_text();
    assert!(text.is_ascii(), "{text}");
    assert_eq!(Record::from_text(&text), Some(record.clone()));
    assert_eq!(
        serde_json::from_str::<Record>(&serde_json::to_string(&record).unwrap()).unwrap(),
        record,
        "the same record as plain JSON"
    );
    assert_eq!(Record::from_text("{\"v\": 1}"), None);
}

#[test]
fn debug_of_a_record_or_request_never_shows_the_value() {
    let record = Record::new(b"hunter2-SECRET", Some("{}".into()), None);
    let request = ObjectRequest::Put {
        key: "k".into(),
        record: record.clone(),
        expected: None,
    };
    for shown in [format!("{record:?}"), format!("{request:?}")] {
        assert!(!shown.contains(&record.value), "{shown}");
        assert!(!shown.contains("hunter2"), "{shown}");
    }
}

/// A client whose objects answer after yielding once, so that calls overlap: it records
/// how many were in flight at most, and fails the object named `fails`.
struct Overlapping {
    placement: Placement,
    in_flight: std::sync::atomic::AtomicUsize,
    most: std::sync::atomic::AtomicUsize,
    fails: &'static str,
}

impl Overlapping {
    /// Objects placed by group; the one named `fails` answers with a retryable failure.
    fn failing(fails: &'static str) -> Self {
        Self {
            placement: Placement::ByGroup,
            in_flight: Default::default(),
            most: Default::default(),
            fails,
        }
    }
}

#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
impl ObjectClient for Overlapping {
    fn placement(&self) -> &Placement {
        &self.placement
    }
    async fn call(&self, object: &str, request: &ObjectRequest) -> Result<ObjectReply> {
        use std::sync::atomic::Ordering::SeqCst;
        let now = self.in_flight.fetch_add(1, SeqCst) + 1;
        self.most.fetch_max(now, SeqCst);
        tokio::task::yield_now().await;
        self.in_flight.fetch_sub(1, SeqCst);
        if object == self.fails {
            return Ok(ObjectReply::Failed {
                message: "storage unavailable".into(),
                retryable: true,
            });
        }
        let ObjectRequest::Get { keys } = request else {
            panic!("a bulk read sends gets only");
        };
        // Every key holds its own name; keys ending in `-` hold nothing.
        let values = keys
            .iter()
            .map(|k| (!k.ends_with('-')).then(|| Record::new(k.as_bytes(), None, None)))
            .collect();
        Ok(ObjectReply::Values { values })
    }
}

#[test]
fn a_bulk_read_overlaps_its_objects_up_to_the_bound_and_keeps_the_order() {
    let client = Overlapping::failing("none");
    // 20 objects (`g:<n>`), two keys in some of them, one missing value.
    let keys: Vec<String> = (0..30)
        .map(|i| format!("g:{}:{}{}", i % 20, i, if i == 7 { "-" } else { "" }))
        .collect();
    let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    let got = block_on(get_bulk(&client, &refs)).expect("bulk read");
    assert_eq!(got.bulk_ops, 20, "one request per object");
    assert_eq!(got.values.len(), 30);
    for (key, value) in refs.iter().zip(&got.values) {
        match value {
            None => assert!(key.ends_with('-'), "{key}"),
            Some(v) => assert_eq!(v.value, key.as_bytes(), "in the order asked"),
        }
    }
    assert_eq!(got.values.iter().filter(|v| v.is_none()).count(), 1);
    assert_eq!(
        client.most.load(std::sync::atomic::Ordering::SeqCst),
        BULK_IN_FLIGHT,
        "calls overlap, never more than the bound"
    );
}

#[test]
fn a_bulk_read_fails_when_one_object_fails() {
    let client = Overlapping::failing("g:3");
    let keys: Vec<String> = (0..10).map(|i| format!("g:{i}:k")).collect();
    let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    let err = block_on(get_bulk(&client, &refs)).expect_err("one object failed");
    assert!(
        matches!(
            err,
            Error::Backend {
                op: "get",
                retryable: true,
                ..
            }
        ),
        "{err:?}"
    );
}
