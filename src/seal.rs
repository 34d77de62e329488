//! Sealed values: the payload encrypted and authenticated at rest, under a header that stays
//! readable.
//!
//! A [`KeyRing`] holds AES-256-GCM keys, each with a public id. Writes seal with the primary
//! (first) key; reads open with whichever key the frame's header names. The associated data is
//! the frame's header (magic, format, inner codec, type, version, expiry, key id) followed by
//! the KV key, so a value copied to another key, or a header edited in place, does not open.
//! Each write draws a fresh 96-bit nonce from the platform CSPRNG.
//!
//! Why AES-256-GCM: WebCrypto (every TypeScript Worker, browsers, Node, Deno) has it, and no
//! other AEAD, so other services can open what this crate seals. On wasm32 it runs the
//! constant-time software AES of the `aes` crate; BENCHMARKS.md gives its cost. Random nonces
//! keep the usual bound: rotate a key well before 2^32 writes with it.
//!
//! Key material never appears in `Debug`, in an error or in a log: errors name the key id (a
//! label) or the secret's name, never its value.

use std::{fmt, sync::Arc};

use aes_gcm::{
    aead::{AeadInOut, KeyInit},
    Aes256Gcm, Nonce,
};
use base64::Engine as _;

use crate::{
    codec::Codec,
    envelope::{self, Payload, SealedPayload, NONCE_LEN},
    error::{Error, Result, SealError},
};

/// Length of a key: 32 bytes (AES-256).
pub const KEY_LEN: usize = 32;

/// A key ring could not be built. Names secrets and key ids, never a key's value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// A key id is not 1 to 32 of `[A-Za-z0-9_]`.
    #[error("key id {id:?} is not 1 to 32 of [A-Za-z0-9_]")]
    InvalidId {
        /// The id (truncated to 40 characters).
        id: String,
    },
    /// A secret or variable the ring needs is not set.
    #[error("{source_name} is not set")]
    Missing {
        /// Name of the secret or variable.
        source_name: String,
    },
    /// A key is not valid base64 (standard alphabet, padding optional).
    #[error("{source_name} is not base64 of {KEY_LEN} bytes (not valid base64)")]
    BadBase64 {
        /// Name of the secret the key came from.
        source_name: String,
    },
    /// A key decodes to the wrong number of bytes.
    #[error("{source_name} is not base64 of {KEY_LEN} bytes (it decodes to {len} bytes)")]
    BadLength {
        /// Name of the secret the key came from.
        source_name: String,
        /// Decoded length.
        len: usize,
    },
    /// Two keys share an id.
    #[error("key id {id:?} appears twice in the key ring")]
    DuplicateId {
        /// The id.
        id: String,
    },
    /// The ring would hold no key.
    #[error("the key ring holds no key ({source_name} lists none)")]
    Empty {
        /// Where the ids were listed.
        source_name: String,
    },
}

/// One AES-256-GCM key and its id. `Debug` shows the id only.
#[derive(Clone)]
pub struct SealingKey {
    id: String,
    cipher: Aes256Gcm,
}

impl fmt::Debug for SealingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealingKey")
            .field("id", &self.id)
            .field("key", &"<redacted>")
            .finish()
    }
}

impl SealingKey {
    /// A key from its 32 bytes.
    pub fn from_bytes(id: &str, key: &[u8; KEY_LEN]) -> Result<Self, KeyError> {
        if !envelope::valid_key_id(id) {
            return Err(KeyError::InvalidId {
                id: id.chars().take(40).collect(),
            });
        }
        Ok(Self {
            id: id.to_string(),
            cipher: Aes256Gcm::new(key.into()),
        })
    }

    /// A key from base64 of its 32 bytes (standard alphabet, padding optional, surrounding
    /// whitespace ignored), as `openssl rand -base64 32` prints it. `source_name` names where
    /// it came from (a secret's name) for the error; the value is never echoed.
    pub fn from_base64(id: &str, encoded: &str, source_name: &str) -> Result<Self, KeyError> {
        let engine = base64::engine::GeneralPurpose::new(
            &base64::alphabet::STANDARD,
            base64::engine::GeneralPurposeConfig::new()
                .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
        );
        let bytes = engine
            .decode(encoded.trim())
            .map_err(|_| KeyError::BadBase64 {
                source_name: source_name.to_string(),
            })?;
        let key: [u8; KEY_LEN] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| KeyError::BadLength {
                source_name: source_name.to_string(),
                len: bytes.len(),
            })?;
        Self::from_bytes(id, &key)
    }

    /// The key's id.
    pub fn id(&self) -> &str {
        &self.id
    }
}

/// The keys a store seals and opens with: the first is the primary (writes seal with it), the
/// others open values sealed before a rotation. Cheap to clone (shared).
#[derive(Clone)]
pub struct KeyRing {
    inner: Arc<Inner>,
}

struct Inner {
    keys: Vec<SealingKey>,
    require_sealed: bool,
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyRing")
            .field("key_ids", &self.key_ids().collect::<Vec<_>>())
            .field("require_sealed", &self.inner.require_sealed)
            .finish()
    }
}

impl KeyRing {
    /// A ring of `keys`, the primary first. Refuses an empty list and duplicate ids.
    pub fn new(keys: Vec<SealingKey>) -> Result<Self, KeyError> {
        if keys.is_empty() {
            return Err(KeyError::Empty {
                source_name: "the list".into(),
            });
        }
        for (i, k) in keys.iter().enumerate() {
            if keys[..i].iter().any(|o| o.id == k.id) {
                return Err(KeyError::DuplicateId { id: k.id.clone() });
            }
        }
        Ok(Self {
            inner: Arc::new(Inner {
                keys,
                require_sealed: true,
            }),
        })
    }

    /// The ring from named secrets: `<prefix>_KEYS` lists the key ids, primary first, separated
    /// by commas or spaces (`"k2,k1"`); each key is `<prefix>_KEY_<id>`, base64 of 32 bytes.
    /// `lookup` returns a variable's value (a Worker's env, the process environment, a
    /// `.dev.vars` file). Every error names the variable, never its value.
    pub fn from_lookup(
        prefix: &str,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, KeyError> {
        let ids_name = format!("{prefix}_KEYS");
        let ids = lookup(&ids_name).ok_or_else(|| KeyError::Missing {
            source_name: ids_name.clone(),
        })?;
        let mut keys = Vec::new();
        for id in ids
            .split([',', ' '])
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            if !envelope::valid_key_id(id) {
                return Err(KeyError::InvalidId {
                    id: id.chars().take(40).collect(),
                });
            }
            let name = format!("{prefix}_KEY_{id}");
            let value = lookup(&name).ok_or_else(|| KeyError::Missing {
                source_name: name.clone(),
            })?;
            keys.push(SealingKey::from_base64(id, &value, &name)?);
        }
        if keys.is_empty() {
            return Err(KeyError::Empty {
                source_name: ids_name,
            });
        }
        Self::new(keys)
    }

    /// [`from_lookup`](Self::from_lookup) over a Worker's env: vars and secrets alike (a key
    /// belongs in a secret: `wrangler secret put <prefix>_KEY_<id>`, or `.dev.vars` locally).
    #[cfg(all(feature = "worker", target_arch = "wasm32"))]
    #[cfg_attr(docsrs, doc(cfg(feature = "worker")))]
    pub fn from_env(env: &worker::Env, prefix: &str) -> Result<Self, KeyError> {
        Self::from_lookup(prefix, |name| {
            env.secret(name)
                .map(|s| s.to_string())
                .or_else(|_| env.var(name).map(|v| v.to_string()))
                .ok()
        })
    }

    /// Whether values in clear are refused (`Error::Sealed` with [`SealError::NotSealed`]).
    /// **On by default**: a store that seals trusts nothing it did not seal, so a value
    /// planted in KV by someone without the key is refused, never served (a session forged
    /// with any roles, say).
    ///
    /// The migration path for an app that stored values in clear before it turned sealing
    /// on: `requiring_sealed(false)` while clear values remain. They are then read, and
    /// sealed at their next write (a session's refresh, update or rotation; a cache entry's
    /// recomputation; a [`TypedStore`](crate::TypedStore) read with write-back). When
    /// `kv-envelope census` counts no clear value left (or the longest lifetime has passed),
    /// drop the call: clear values are refused again.
    #[must_use]
    pub fn requiring_sealed(self, on: bool) -> Self {
        let keys = self.inner.keys.clone();
        Self {
            inner: Arc::new(Inner {
                keys,
                require_sealed: on,
            }),
        }
    }

    /// Whether clear values are refused.
    pub fn requires_sealed(&self) -> bool {
        self.inner.require_sealed
    }

    /// The id writes seal with.
    pub fn primary_id(&self) -> &str {
        &self.inner.keys[0].id
    }

    /// Every id, the primary first.
    pub fn key_ids(&self) -> impl Iterator<Item = &str> {
        self.inner.keys.iter().map(|k| k.id.as_str())
    }

    fn key(&self, id: &str) -> Option<&SealingKey> {
        self.inner.keys.iter().find(|k| k.id == id)
    }

    /// Open a sealed payload read from `kv_key`: the plaintext, in `sealed.codec`.
    pub fn open(
        &self,
        kv_key: &str,
        sealed: &SealedPayload<'_>,
        type_name: &'static str,
    ) -> Result<Vec<u8>> {
        let err = |reason| Error::Sealed { type_name, reason };
        let key = self.key(sealed.key_id).ok_or_else(|| {
            err(SealError::UnknownKey {
                key_id: sealed.key_id.to_string(),
            })
        })?;
        let mut buf = sealed.ciphertext.to_vec();
        with_associated_data(sealed.header_bytes, kv_key, |aad| {
            key.cipher
                .decrypt_in_place(&Nonce::from(*sealed.nonce), aad, &mut buf)
        })
        .map_err(|_| {
            err(SealError::Unopenable {
                key_id: sealed.key_id.to_string(),
            })
        })?;
        Ok(buf)
    }

    /// Seal a clear envelope (either codec, any type and version, as any writer of the format
    /// produces it) for `kv_key` with the primary key: the bytes a store with this ring would
    /// have written there. For tools that write values on a store's behalf (a test seeding an
    /// older version, an import); a store seals by itself. A sealed input is refused.
    pub fn seal_envelope(&self, kv_key: &str, clear: &[u8]) -> Result<Vec<u8>> {
        let raw = envelope::decode(clear)?;
        let (codec, payload) = match raw.payload {
            Payload::Json(p) => (Codec::Json, p),
            Payload::Postcard(p) => (Codec::Postcard, p),
            Payload::Sealed(_) => {
                return Err(Error::Envelope {
                    codec: raw.header.codec,
                    reason: "already sealed".into(),
                })
            }
        };
        let frame = FrameFields {
            codec,
            type_name: &raw.header.type_name,
            version: raw.header.version,
            expires_at: raw.header.expires_at,
        };
        self.seal(kv_key, frame, payload.to_vec())
    }

    /// Seal `plaintext` (the payload in `codec`) for `kv_key` with the primary key and a fresh
    /// nonce from the platform CSPRNG.
    pub(crate) fn seal(
        &self,
        kv_key: &str,
        frame: FrameFields<'_>,
        plaintext: Vec<u8>,
    ) -> Result<Vec<u8>> {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).map_err(|e| Error::Backend {
            op: "getrandom",
            message: e.to_string(),
            retryable: true,
        })?;
        self.seal_with_nonce(kv_key, frame, plaintext, nonce)
    }

    /// [`seal`](Self::seal) with a given nonce: only for golden bytes and the tests that show a
    /// reused nonce is refused. Never reuse a nonce with a key.
    #[cfg(feature = "testing")]
    #[doc(hidden)]
    pub fn seal_with_fixed_nonce(
        &self,
        kv_key: &str,
        frame: FrameFields<'_>,
        plaintext: Vec<u8>,
        nonce: [u8; NONCE_LEN],
    ) -> Result<Vec<u8>> {
        self.seal_with_nonce(kv_key, frame, plaintext, nonce)
    }

    fn seal_with_nonce(
        &self,
        kv_key: &str,
        frame: FrameFields<'_>,
        mut plaintext: Vec<u8>,
        nonce: [u8; NONCE_LEN],
    ) -> Result<Vec<u8>> {
        let key = &self.inner.keys[0];
        let mut out = envelope::sealed_header(
            frame.codec,
            frame.type_name,
            frame.version,
            frame.expires_at,
            &key.id,
        )?;
        with_associated_data(&out, kv_key, |aad| {
            key.cipher
                .encrypt_in_place(&Nonce::from(nonce), aad, &mut plaintext)
        })
        .map_err(|_| Error::Encode {
            type_name: "sealed frame",
            reason: "payload too large to seal".into(),
        })?;
        out.reserve(NONCE_LEN + plaintext.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&plaintext);
        Ok(out)
    }
}

/// Whether a store with `ring` could open a value with this header, judged from the header
/// alone (a writer's cheap guard): a sealed value whose key id the ring lacks is
/// [`SealError::UnknownKey`] (or [`SealError::NoKeyRing`]), and must not be replaced.
pub(crate) fn check_key_id(
    ring: Option<&KeyRing>,
    header: &envelope::Header<'_>,
    type_name: &'static str,
) -> Result<()> {
    let Some(id) = header.key_id.as_deref() else {
        return Ok(());
    };
    let reason = match ring {
        None => SealError::NoKeyRing,
        Some(r) if r.key(id).is_some() => return Ok(()),
        Some(_) => SealError::UnknownKey {
            key_id: id.to_string(),
        },
    };
    Err(Error::Sealed { type_name, reason })
}

/// The one rule of reading a payload with a store's ring: a sealed payload is opened into
/// `opened` (its key id must be in the ring, and it must have been sealed for `kv_key`), a sealed
/// payload without a ring is [`SealError::NoKeyRing`], a clear payload is refused under a ring
/// that [requires sealing](KeyRing::requiring_sealed) and passed through otherwise.
pub(crate) fn open_payload<'a>(
    payload: Payload<'a>,
    ring: Option<&KeyRing>,
    kv_key: &str,
    type_name: &'static str,
    opened: &'a mut Vec<u8>,
) -> Result<Payload<'a>> {
    let refuse = |reason| Err(Error::Sealed { type_name, reason });
    match (payload, ring) {
        (Payload::Sealed(s), Some(ring)) => {
            *opened = ring.open(kv_key, &s, type_name)?;
            Ok(match s.codec {
                Codec::Json => Payload::Json(opened),
                Codec::Postcard => Payload::Postcard(opened),
            })
        }
        (Payload::Sealed(_), None) => refuse(SealError::NoKeyRing),
        (_, Some(ring)) if ring.requires_sealed() => refuse(SealError::NotSealed),
        (clear, _) => Ok(clear),
    }
}

/// How a value read from KV was stored, as seen by the ring that read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoredSeal {
    /// In clear.
    Clear,
    /// Sealed with the ring's primary key.
    Primary,
    /// Sealed with another key of the ring (written before the last rotation).
    OlderKey,
}

/// The readable fields of a frame being sealed.
#[derive(Debug, Clone, Copy)]
#[doc(hidden)]
pub struct FrameFields<'a> {
    /// Codec of the plaintext.
    pub codec: Codec,
    /// Stable type name.
    pub type_name: &'a str,
    /// Schema version of the plaintext.
    pub version: u32,
    /// Absolute expiry in ms.
    pub expires_at: Option<u64>,
}

/// What the AEAD authenticates besides the ciphertext: the frame's header bytes, then the KV
/// key. The header is self-delimiting (postcard lengths), so the concatenation is unambiguous.
/// Built on the stack when it fits (KV keys are at most 512 bytes): no allocation per read.
fn with_associated_data<R>(header_bytes: &[u8], kv_key: &str, f: impl FnOnce(&[u8]) -> R) -> R {
    const STACK: usize = 768;
    let len = header_bytes.len() + kv_key.len();
    if len <= STACK {
        let mut buf = [0u8; STACK];
        buf[..header_bytes.len()].copy_from_slice(header_bytes);
        buf[header_bytes.len()..len].copy_from_slice(kv_key.as_bytes());
        f(&buf[..len])
    } else {
        let mut aad = Vec::with_capacity(len);
        aad.extend_from_slice(header_bytes);
        aad.extend_from_slice(kv_key.as_bytes());
        f(&aad)
    }
}
