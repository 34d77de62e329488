//! The types a CLI knows: each registered [`Versioned`] type, type-erased behind plain function
//! pointers so the commands can work on bytes without knowing the Rust type.

use std::any::TypeId;

use serde_json::Value;

use kv_envelope::{
    __internal::{decode_value_in, encode_value_in},
    envelope::{self, Header},
    Codec, Error, KeyRing, Result, StoredSeal, ValidationIssue, Versioned,
};

/// The set of versioned types the command line knows, by their stable name.
///
/// ```
/// use kv_envelope_cli::Registry;
/// use kv_envelope::session::SessionRecord;
///
/// let mut registry = Registry::new();
/// registry.register::<SessionRecord>();
/// assert_eq!(registry.get("session").map(|t| t.current_version()), Some(3));
/// ```
#[derive(Debug, Clone, Default)]
pub struct Registry {
    types: Vec<RegisteredType>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// A registry holding every type this crate ships (see [`Registry::register_shipped`]).
    pub fn with_shipped() -> Self {
        let mut registry = Self::new();
        registry.register_shipped();
        registry
    }

    /// Register the types this crate ships, so a user's CLI also handles the values the crate's
    /// own products (sessions, …) write into the same namespace.
    pub fn register_shipped(&mut self) -> &mut Self {
        // One line per shipped type: this is the list `kv-envelope` (the crate's binary) knows.
        // Keep it in step with `shipped_schema_files` (a test in tests/cli.rs compares them).
        self.register::<kv_envelope::session::SessionRecord>()
            .register::<kv_envelope::session::SessionIndexEntry>()
            .register::<kv_envelope::cache::NamespaceGeneration>()
            .register::<kv_envelope::tower_sessions::TowerSessionRecord>()
            .register::<kv_envelope::tokens::TokenRecord>()
            .register::<kv_envelope::tokens::TokenIndexEntry>()
    }

    /// Register `T` under `T::NAME`. Registering the same type twice is a no-op.
    ///
    /// # Panics
    ///
    /// When a *different* type is already registered under the same name: two types sharing a
    /// name would make every envelope of that name ambiguous, which is a bug in the program
    /// that builds the registry (not something input data can cause).
    pub fn register<T: Versioned>(&mut self) -> &mut Self {
        let entry = RegisteredType::of::<T>();
        if let Some(existing) = self.types.iter().find(|t| t.name == entry.name) {
            assert!(
                existing.type_id == entry.type_id,
                "kv-envelope cli: type name {:?} registered twice, by {} and by {}",
                entry.name,
                existing.rust_type,
                entry.rust_type,
            );
            return self;
        }
        self.types.push(entry);
        self
    }

    /// Builder form of [`Registry::register`].
    #[must_use]
    pub fn with<T: Versioned>(mut self) -> Self {
        self.register::<T>();
        self
    }

    /// The registered type named `name`.
    pub fn get(&self, name: &str) -> Option<&RegisteredType> {
        self.types.iter().find(|t| t.name == name)
    }

    /// Every registered type, in registration order.
    pub fn types(&self) -> impl ExactSizeIterator<Item = &RegisteredType> {
        self.types.iter()
    }

    /// True when nothing is registered.
    pub fn is_empty(&self) -> bool {
        self.types.is_empty()
    }
}

/// One registered type: its name, current version, schemas, and type-erased decode/re-encode.
#[derive(Debug, Clone)]
pub struct RegisteredType {
    name: &'static str,
    version: u32,
    type_id: TypeId,
    rust_type: &'static str,
    schema: fn(u32) -> Option<Value>,
    inspect: fn(&[u8], Sealing<'_>) -> Result<Inspected>,
    reencode: fn(&[u8], Option<Codec>, Sealing<'_>, bool) -> Result<Reencoded>,
    validate: fn(u32, &Value) -> Result<Vec<ValidationIssue>>,
    encode_current: EncodeCurrentFn,
}

/// `encode_current`'s erased form: payload, codec, expiry, sealing → envelope bytes.
type EncodeCurrentFn = fn(&Value, Codec, Option<u64>, Sealing<'_>) -> Result<Vec<u8>>;

/// The key ring a command was given and the KV key a value is (or will be) stored under: a
/// sealed value is bound to its KV key (associated data).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sealing<'a> {
    /// The ring, `None` when the command was given none (sealed values stay closed).
    pub ring: Option<&'a KeyRing>,
    /// The KV key of the value.
    pub kv_key: &'a str,
}

/// A stored value decoded, validated and migrated, as JSON.
pub(crate) struct Inspected {
    /// The value at the current version.
    pub value: Value,
    /// The value pretty-printed in its struct's field order (a JSON `Value` sorts keys).
    pub pretty: String,
    /// Violations of the *current* schema by the migrated value (empty: valid). A non-empty list
    /// means a migration step produced data its own target schema rejects.
    pub current_issues: Vec<ValidationIssue>,
}

/// A stored value rewritten at the current version.
pub(crate) struct Reencoded {
    /// The new envelope bytes.
    pub bytes: Vec<u8>,
    /// The header of the new envelope (its metadata is what KV should store).
    pub header: Header<'static>,
}

impl RegisteredType {
    fn of<T: Versioned>() -> Self {
        Self {
            name: T::NAME,
            version: T::VERSION,
            type_id: TypeId::of::<T>(),
            rust_type: std::any::type_name::<T>(),
            schema: T::schema,
            inspect: inspect_erased::<T>,
            reencode: reencode_erased::<T>,
            validate: validate_erased::<T>,
            encode_current: encode_current_erased::<T>,
        }
    }

    /// The stable type name (`T::NAME`).
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The current schema version (`T::VERSION`).
    pub fn current_version(&self) -> u32 {
        self.version
    }

    /// The Rust type registered (for messages; not stable across compiler versions).
    pub fn rust_type(&self) -> &'static str {
        self.rust_type
    }

    /// JSON Schema of `version`, `None` outside `1..=current_version()`.
    pub fn schema(&self, version: u32) -> Option<Value> {
        (self.schema)(version)
    }

    /// Every (file name, schema) of versions `1..=current_version()`,
    /// named `<type>.v<version>.schema.json`.
    pub fn schema_files(&self) -> Vec<(String, Value)> {
        (1..=self.version)
            .filter_map(|v| {
                self.schema(v)
                    .map(|s| (kv_envelope::__internal::schema_file_name(self.name, v), s))
            })
            .collect()
    }

    /// The whole-value schema of this type ([`kv_envelope::export::envelope_schema_of`]) and its file name,
    /// `<type>.envelope.schema.json`.
    pub fn envelope_schema_file(&self) -> (String, Value) {
        let versions = (1..=self.version).filter_map(|v| self.schema(v).map(|s| (v, s)));
        (
            kv_envelope::__internal::envelope_schema_file_name(self.name),
            kv_envelope::__internal::whole_value_schema(self.name, versions),
        )
    }

    /// Decode, validate and migrate a stored value, opening it with `sealing` when sealed.
    pub(crate) fn inspect(&self, bytes: &[u8], sealing: Sealing<'_>) -> Result<Inspected> {
        (self.inspect)(bytes, sealing)
    }

    /// The value at the current version, in `codec` (default: its own), sealed with the ring's
    /// primary key for `sealing.kv_key` when `seal` is set (and a ring given), in clear
    /// otherwise; read back before it is returned.
    pub(crate) fn reencode(
        &self,
        bytes: &[u8],
        codec: Option<Codec>,
        sealing: Sealing<'_>,
        seal: bool,
    ) -> Result<Reencoded> {
        (self.reencode)(bytes, codec, sealing, seal)
    }

    /// Violations of `version`'s schema by `payload` (empty: valid).
    pub(crate) fn validate(&self, version: u32, payload: &Value) -> Result<Vec<ValidationIssue>> {
        (self.validate)(version, payload)
    }

    /// Envelope bytes of `payload` as the current version, sealed for `sealing.kv_key` when a
    /// ring is given.
    pub(crate) fn encode_current(
        &self,
        payload: &Value,
        codec: Codec,
        expires_at: Option<u64>,
        sealing: Sealing<'_>,
    ) -> Result<Vec<u8>> {
        (self.encode_current)(payload, codec, expires_at, sealing)
    }

    /// A sealed envelope of `payload` (JSON text) written at `version`, for `sealing.kv_key`
    /// with the ring's primary key: how `encode` writes an old version sealed.
    pub(crate) fn seal_json_at(
        &self,
        payload: &Value,
        version: u32,
        expires_at: Option<u64>,
        ring: &KeyRing,
        kv_key: &str,
    ) -> Result<Vec<u8>> {
        let plaintext = serde_json::to_vec(payload).map_err(|e| Error::Encode {
            type_name: self.name,
            reason: kv_envelope::__internal::describe_json_error(&e),
        })?;
        let frame = kv_envelope::__internal::FrameFields {
            codec: Codec::Json,
            type_name: self.name,
            version,
            expires_at,
        };
        kv_envelope::__internal::seal(ring, kv_key, frame, plaintext)
    }
}

/// Decode at any time: the CLI reports expiry itself, it never hides an expired value.
fn decode_any_time<T: Versioned>(
    bytes: &[u8],
    sealing: Sealing<'_>,
) -> Result<kv_envelope::Decoded<T>> {
    // `now = 0` disables the expiry check for every real timestamp.
    if let Some(decoded) = decode_value_in::<T>(bytes, sealing.ring, sealing.kv_key, 0, true)? {
        return Ok(decoded);
    }
    // Only `exp: 0` lands here; decode it the long way rather than pretend it is absent.
    let raw = envelope::decode(bytes)?;
    let (opened, seal);
    let payload = match (raw.payload, sealing.ring) {
        (envelope::Payload::Sealed(s), Some(ring)) => {
            opened = ring.open(sealing.kv_key, &s, T::NAME)?;
            seal = if s.key_id == ring.primary_id() {
                StoredSeal::Primary
            } else {
                StoredSeal::OlderKey
            };
            match s.codec {
                Codec::Json => envelope::Payload::Json(&opened),
                Codec::Postcard => envelope::Payload::Postcard(&opened),
            }
        }
        (clear, _) => {
            seal = StoredSeal::Clear;
            clear
        }
    };
    let value = T::decode_payload(raw.header.version, payload, true)?;
    Ok(kv_envelope::Decoded {
        value,
        codec: raw.header.codec,
        stored_version: raw.header.version,
        expires_at: raw.header.expires_at,
        seal,
    })
}

fn validate_erased<T: Versioned>(version: u32, json: &Value) -> Result<Vec<ValidationIssue>> {
    let validator = T::validator(version)?;
    match kv_envelope::__internal::validate(validator, T::NAME, version, json) {
        Ok(()) => Ok(Vec::new()),
        Err(Error::Validation { issues, .. }) => Ok(issues),
        Err(e) => Err(e),
    }
}

fn current_issues<T: Versioned>(json: &Value) -> Result<Vec<ValidationIssue>> {
    validate_erased::<T>(T::VERSION, json)
}

fn encode_current_erased<T: Versioned>(
    payload: &Value,
    codec: Codec,
    expires_at: Option<u64>,
    sealing: Sealing<'_>,
) -> Result<Vec<u8>> {
    let value = T::deserialize(payload).map_err(|e| Error::Codec {
        codec: Codec::Json,
        type_name: T::NAME,
        version: T::VERSION,
        reason: kv_envelope::__internal::describe_json_error(&e),
    })?;
    encode_value_in(&value, codec, expires_at, sealing.ring, sealing.kv_key)
}

fn to_json<T: Versioned>(value: &T) -> Result<Value> {
    serde_json::to_value(value).map_err(|e| Error::Encode {
        type_name: T::NAME,
        reason: kv_envelope::__internal::describe_json_error(&e),
    })
}

fn inspect_erased<T: Versioned>(bytes: &[u8], sealing: Sealing<'_>) -> Result<Inspected> {
    let decoded = decode_any_time::<T>(bytes, sealing)?;
    let value = to_json(&decoded.value)?;
    let current_issues = current_issues::<T>(&value)?;
    let pretty = serde_json::to_string_pretty(&decoded.value).unwrap_or_default();
    Ok(Inspected {
        value,
        pretty,
        current_issues,
    })
}

fn reencode_erased<T: Versioned>(
    bytes: &[u8],
    codec: Option<Codec>,
    sealing: Sealing<'_>,
    seal: bool,
) -> Result<Reencoded> {
    let decoded = decode_any_time::<T>(bytes, sealing)?;
    // A migration step that produces data its own target schema rejects would make every
    // worker read of the rewritten value fail: refuse it here, before anything is written.
    let issues = current_issues::<T>(&to_json(&decoded.value)?)?;
    if !issues.is_empty() {
        return Err(Error::Validation {
            type_name: T::NAME,
            version: T::VERSION,
            issues,
        });
    }
    let codec = codec.unwrap_or(decoded.codec);
    let ring = sealing.ring.filter(|_| seal);
    let out = encode_value_in(
        &decoded.value,
        codec,
        decoded.expires_at,
        ring,
        sealing.kv_key,
    )?;
    // Read back what we are about to write, exactly as a worker will (a sealed value opened
    // for its KV key).
    let again = decode_any_time::<T>(&out, sealing)?;
    let sealed_as = ring.map(|r| r.primary_id().to_string());
    let want_seal = if ring.is_some() {
        StoredSeal::Primary
    } else {
        StoredSeal::Clear
    };
    if again.stored_version != T::VERSION
        || again.expires_at != decoded.expires_at
        || again.seal != want_seal
    {
        return Err(Error::Encode {
            type_name: T::NAME,
            reason: "re-encoded value does not read back with the same header".into(),
        });
    }
    Ok(Reencoded {
        bytes: out,
        header: Header {
            codec,
            type_name: T::NAME.into(),
            version: T::VERSION,
            expires_at: decoded.expires_at,
            key_id: sealed_as.map(Into::into),
        },
    })
}
