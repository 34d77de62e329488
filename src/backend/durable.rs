//! A KV namespace kept in Durable Objects (wasm32 only): [`DurableKv`], the client a Worker
//! uses as its [`KvBackend`](super::KvBackend), and [`DurableKvObject`], what the Durable Object class runs.
//! Both sides speak the JSON of the private object protocol; the object runs
//! the same logic the native tests check. Keys are placed on objects by
//! [`Placement`].

use worker::js_sys::{self, Array, Map, Number};
use worker::wasm_bindgen::JsCast;

use super::{
    object::{self, serve, sweep, ObjectClient, ObjectReply, ObjectRequest, ObjectStorage, Record},
    placement::Placement,
};
use crate::{
    clock::system_clock,
    error::{Error, Result},
};

/// The URL a request to an object carries (the object never looks at it).
const OBJECT_URL: &str = "https://kv-envelope.object/";

fn backend_error(op: &'static str, e: impl std::fmt::Display) -> Error {
    Error::Backend {
        op,
        message: e.to_string(),
        retryable: true,
    }
}

/// A KV namespace in the Durable Object namespace bound as `binding`, strongly consistent:
/// [`Consistency::Linearizable`](super::Consistency::Linearizable), with a conditional write.
/// Each operation is one subrequest to the object that holds the key ([`Placement`], by group
/// unless set).
pub struct DurableKv {
    namespace: worker::ObjectNamespace,
    placement: Placement,
}

impl DurableKv {
    /// The Durable Object namespace bound as `binding` in `env` (`[[durable_objects.bindings]]`
    /// in `wrangler.toml`, whose class runs [`DurableKvObject`]), keys placed by group.
    pub fn from_env(env: &worker::Env, binding: &str) -> worker::Result<Self> {
        Ok(Self {
            namespace: env.durable_object(binding)?,
            placement: Placement::ByGroup,
        })
    }

    /// Place keys with `placement`.
    #[must_use]
    pub fn with_placement(mut self, placement: Placement) -> Self {
        self.placement = placement;
        self
    }
}

#[async_trait::async_trait(?Send)]
impl ObjectClient for DurableKv {
    fn placement(&self) -> &Placement {
        &self.placement
    }

    /// One subrequest: the request's JSON POSTed to the object's stub.
    async fn call(&self, object: &str, request: &ObjectRequest) -> Result<ObjectReply> {
        let op = request.op();
        let body = serde_json::to_string(request).map_err(|e| backend_error(op, e))?;
        let stub = self
            .namespace
            .get_by_name(object)
            .map_err(|e| backend_error(op, e))?;
        let mut init = worker::RequestInit::new();
        init.with_method(worker::Method::Post)
            .with_body(Some(body.into()));
        let request =
            worker::Request::new_with_init(OBJECT_URL, &init).map_err(|e| backend_error(op, e))?;
        let mut response = stub
            .fetch_with_request(request)
            .await
            .map_err(|e| backend_error(op, e))?;
        let text = response.text().await.map_err(|e| backend_error(op, e))?;
        // serde_json's message can quote the reply: only its category and place are told.
        serde_json::from_str(&text).map_err(|e| Error::Backend {
            op,
            message: format!(
                "the Durable Object's answer is not an object reply ({:?} error at line {} column {})",
                e.classify(),
                e.line(),
                e.column()
            ),
            retryable: false,
        })
    }
}

object::object_backend!(DurableKv);

/// What a Durable Object class holding [`DurableKv`] data runs: declare the class in the
/// Worker and hand it its requests and alarms.
///
/// ```ignore
/// #[durable_object]
/// pub struct SessionObject(kv_envelope::backend::DurableKvObject);
///
/// impl DurableObject for SessionObject {
///     fn new(state: State, _env: Env) -> Self {
///         Self(kv_envelope::backend::DurableKvObject::new(&state))
///     }
///     async fn fetch(&self, req: Request) -> Result<Response> {
///         self.0.fetch(req).await
///     }
///     async fn alarm(&self) -> Result<Response> {
///         self.0.alarm().await
///     }
/// }
/// ```
///
/// Records are stored as JSON text (the value in base64) under their KV key. A request is
/// served while the object awaits only its own storage, so the runtime's input gate delivers
/// no other request in between: a conditional write's comparison and write are one step.
pub struct DurableKvObject {
    storage: ObjectStore,
}

struct ObjectStore(worker::Storage);

impl DurableKvObject {
    /// The object over `state`'s storage.
    pub fn new(state: &worker::State) -> Self {
        Self {
            storage: ObjectStore(state.storage()),
        }
    }

    /// Serve one request from a [`DurableKv`]. A body that is no object request gets a
    /// "failed" answer, never a panic.
    pub async fn fetch(&self, mut request: worker::Request) -> worker::Result<worker::Response> {
        let body = request.text().await?;
        let reply = match serde_json::from_str::<ObjectRequest>(&body) {
            Ok(r) => serve(&self.storage, system_clock().now_ms(), r).await,
            Err(_) => ObjectReply::Failed {
                message: "the request body is not an object request".into(),
                retryable: false,
            },
        };
        worker::Response::from_json(&reply)
    }

    /// The alarm: delete expired records and set the next alarm.
    pub async fn alarm(&self) -> worker::Result<worker::Response> {
        let deleted = sweep(&self.storage, system_clock().now_ms())
            .await
            .map_err(|e| worker::Error::RustError(e.to_string()))?;
        worker::Response::ok(format!("{deleted} expired records deleted"))
    }
}

fn storage_error(op: &'static str) -> impl Fn(worker::Error) -> Error {
    move |e| backend_error(op, e)
}

#[async_trait::async_trait(?Send)]
impl ObjectStorage for ObjectStore {
    async fn read(&self, key: &str) -> Result<Option<Record>> {
        match self
            .0
            .get::<String>(key)
            .await
            .map_err(storage_error("get"))?
        {
            Some(text) => Ok(Some(Record::from_stored_text(&text))),
            None => Ok(None),
        }
    }

    async fn write(&self, key: &str, record: &Record) -> Result<()> {
        self.0
            .put(key, record.to_text())
            .await
            .map_err(storage_error("put"))
    }

    async fn remove(&self, key: &str) -> Result<()> {
        self.0
            .delete(key)
            .await
            .map(|_| ())
            .map_err(storage_error("delete"))
    }

    async fn scan(
        &self,
        prefix: &str,
        start: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Option<Record>)>> {
        let mut options = worker::ListOptions::new().prefix(prefix).limit(limit);
        if let Some(start) = start {
            options = options.start(start);
        }
        let map: Map = self
            .0
            .list_with_options(options)
            .await
            .map_err(storage_error("list"))?;
        let mut out = Vec::with_capacity(map.size() as usize);
        for entry in map.entries() {
            let entry: Array = entry
                .map_err(|_| backend_error("list", "unreadable list entry"))?
                .unchecked_into();
            let Some(key) = entry.get(0).as_string() else {
                continue;
            };
            let record = entry.get(1).as_string().and_then(|t| Record::from_text(&t));
            out.push((key, record));
        }
        Ok(out)
    }

    async fn alarm(&self) -> Result<Option<u64>> {
        Ok(self
            .0
            .get_alarm()
            .await
            .map_err(storage_error("alarm"))?
            .map(|ms| ms.max(0) as u64))
    }

    async fn set_alarm(&self, at_ms: u64) -> Result<()> {
        let date = js_sys::Date::new(&Number::from(at_ms as f64));
        self.0
            .set_alarm(worker::ScheduledTime::new(date))
            .await
            .map_err(storage_error("alarm"))
    }
}
