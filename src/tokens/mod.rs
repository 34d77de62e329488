//! One-time tokens: magic-link login, email verification, password reset, invitations — a
//! secret that works exactly once, for one purpose, until an exact expiry, carrying a small
//! typed payload.
//!
//! * Issued with 256 random bits ([`Token`]), stored only as their SHA-256, with the purpose,
//!   the user, the exact expiry and the payload (a [`Versioned`] type like any other: validated,
//!   migrated on read, its schema exported).
//! * **Consumed exactly once on a backend with a conditional write** (Durable Objects,
//!   [`DurableKv`](crate::backend)): the consume writes the token's record back as used *only
//!   if* it is still the record it read, so of two concurrent consumes one succeeds and the
//!   other is refused as [`TokenRefused::Used`]. Workers KV has no conditional write (last
//!   write wins, reads cached per location), so [`OneTimeTokens::new`] refuses it;
//!   [`OneTimeTokens::best_effort`] takes it and does not promise "once": two consumes at the
//!   same moment, or at two locations within KV's propagation window (about 60 s), can both
//!   succeed.
//! * Refusals are typed and told apart for logs ([`TokenRefused`]: malformed, unknown, expired,
//!   wrong purpose, used) and one sentence for the client.
//! * Per user, tokens are listed (by purpose) and revoked by an opaque handle, through an index
//!   like the sessions' (on KV its `list` is eventually consistent: a token issued at another
//!   location may be missing for about 60 s).
//!
//! ```
//! use std::time::Duration;
//! use kv_envelope::{backend::Placement, testing::SimObjects, tokens::{OneTimeTokens, TokenRefused}, Kv};
//! # use std::sync::Arc;
//!
//! #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
//! struct MagicLink { return_to: String }
//! kv_envelope::versioned! { name: "magic-link", versions: [MagicLink] }
//!
//! # futures::executor::block_on(async {
//! # let clock = kv_envelope::ManualClock::new(1_764_000_000_000);
//! // On Workers: Kv::new(DurableKv::from_env(&env, "TOKEN_OBJECTS")?); here the simulated objects.
//! let kv: Kv = SimObjects::new(Placement::ByGroup, Arc::new(clock.clone())).kv(0);
//! let tokens = OneTimeTokens::<MagicLink>::new(kv)?;
//! let link = MagicLink { return_to: "/me".into() };
//! let issued = tokens.issue("user-42", "magic-login", &link, Duration::from_secs(900)).await?;
//! // Mail `issued.token.expose()`; then, when the link is followed:
//! let redeemed = tokens.consume(issued.token.expose(), "magic-login").await?.unwrap();
//! assert_eq!((redeemed.user_id.as_str(), redeemed.data), ("user-42", link));
//! assert_eq!(
//!     tokens.consume(issued.token.expose(), "magic-login").await?,
//!     Err(TokenRefused::Used)
//! );
//! # Ok::<(), kv_envelope::Error>(())
//! # }).unwrap();
//! ```

mod record;
mod token;

use std::{marker::PhantomData, time::Duration};

use self::token::{HANDLE_BYTES, TOKEN_BYTES};
pub use self::{
    record::{TokenIndexEntry, TokenRecord},
    token::{Issued, Redeemed, Token, TokenHandle, TokenInfo, TokenRefused},
};
use crate::{
    backend::{sha256_hex, Consistency, Expected, Kv, Stamp},
    envelope::{Codec, Payload},
    error::{describe_json_error, Error, Result},
    random::OsRandom,
    schema,
    seal::KeyRing,
    store::TypedStore,
    versioned::{decode_value_in, Versioned},
};

/// Default key prefix of token records (`token:<sha256(token)>`).
const DEFAULT_PREFIX: &str = "token";
/// Pages of a user's index one list reads at most.
const MAX_INDEX_PAGES: usize = 16;

/// One-time tokens carrying a payload of type `P`. Cheap to clone.
pub struct OneTimeTokens<P> {
    records: TypedStore<TokenRecord>,
    index: TypedStore<TokenIndexEntry>,
    exactly_once: bool,
    payload: PhantomData<fn() -> P>,
}

impl<P> Clone for OneTimeTokens<P> {
    fn clone(&self) -> Self {
        Self {
            records: self.records.clone(),
            index: self.index.clone(),
            exactly_once: self.exactly_once,
            payload: PhantomData,
        }
    }
}

impl<P> std::fmt::Debug for OneTimeTokens<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OneTimeTokens")
            .field("exactly_once", &self.exactly_once)
            .finish_non_exhaustive()
    }
}

impl<P: Versioned> OneTimeTokens<P> {
    /// Tokens consumed exactly once, on `kv` — which must have a conditional write (Durable
    /// Objects): on Workers KV this is [`Error::Unsupported`] (see [`best_effort`](Self::best_effort)).
    pub fn new(kv: Kv) -> Result<Self> {
        if kv.consistency() != Consistency::Linearizable {
            return Err(Error::Unsupported {
                what: "one-time tokens consumed exactly once need a backend with a conditional \
                       write (Durable Objects); on Workers KV use OneTimeTokens::best_effort",
            });
        }
        Ok(Self::on(kv, true))
    }

    /// Tokens on any backend, consumed at most once *per location and moment*: on Workers KV
    /// two consumes of one token at the same time, or at two locations within KV's propagation
    /// window (about 60 s), can both succeed. On a backend with a conditional write it is
    /// exactly once all the same.
    pub fn best_effort(kv: Kv) -> Self {
        let exactly_once = kv.consistency() == Consistency::Linearizable;
        Self::on(kv, exactly_once)
    }

    fn on(kv: Kv, exactly_once: bool) -> Self {
        Self {
            records: TypedStore::new(kv.clone()).with_prefix(DEFAULT_PREFIX),
            index: TypedStore::new(kv).with_prefix(format!("{DEFAULT_PREFIX}-user")),
            exactly_once,
            payload: PhantomData,
        }
    }

    /// Keys `<prefix>:<sha256(token)>`, and the user index under `<prefix>-user:…`.
    #[must_use]
    pub fn with_prefix(mut self, prefix: &str) -> Self {
        self.records = self.records.with_prefix(prefix);
        self.index = self.index.with_prefix(format!("{prefix}-user"));
        self
    }

    /// Seal records and index entries with `ring` (the user id and the payload unreadable at
    /// rest without a key).
    #[must_use]
    pub fn with_sealing(mut self, ring: KeyRing) -> Self {
        self.records = self.records.with_sealing(ring.clone());
        self.index = self.index.with_sealing(ring);
        self
    }

    /// Whether a consume is exactly once here (a backend with a conditional write).
    pub fn is_exactly_once(&self) -> bool {
        self.exactly_once
    }

    /// The KV handle.
    pub fn kv(&self) -> &Kv {
        self.records.kv()
    }

    /// Issue a token to `user_id` for `purpose` (1–64 characters), carrying `data`, working
    /// for `ttl` from now. Two writes: the user's index entry, then the record. `data` that
    /// fails its schema is [`Error::InvalidValue`], before any write.
    pub async fn issue(
        &self,
        user_id: &str,
        purpose: &str,
        data: &P,
        ttl: Duration,
    ) -> Result<Issued> {
        let now = self.kv().now_ms();
        let expires_at = now.saturating_add(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX));
        let json = serde_json::to_value(data).map_err(|e| Error::Encode {
            type_name: P::NAME,
            reason: describe_json_error(&e),
        })?;
        if let Err(Error::Validation { issues, .. }) =
            schema::validate(P::validator(P::VERSION)?, P::NAME, P::VERSION, &json)
        {
            return Err(Error::InvalidValue {
                type_name: P::NAME,
                version: P::VERSION,
                issues,
            });
        }
        let record = TokenRecord {
            purpose: purpose.to_string(),
            user_id: user_id.to_string(),
            created_at: now,
            expires_at,
            consumed_at: None,
            data_type: P::NAME.to_string(),
            data_version: P::VERSION,
            data: json,
        };
        self.records.check_value(&record)?;
        let mut secret = [0u8; TOKEN_BYTES];
        let mut handle = [0u8; HANDLE_BYTES];
        OsRandom::fill_bytes(&mut secret)?;
        OsRandom::fill_bytes(&mut handle)?;
        let token = Token::from_bytes(&secret);
        let handle = TokenHandle::from_bytes(&handle);
        let hash = token.hashed();
        let entry = TokenIndexEntry {
            purpose: purpose.to_string(),
            handle: handle.as_str().to_string(),
            created_at: now,
            expires_at,
        };
        // The entry first: a token without an entry would escape its user's revocation.
        self.index
            .insert_new(&self.index_id(user_id, &hash), &entry, Some(expires_at))
            .await?;
        self.records
            .insert_new(&hash, &record, Some(expires_at))
            .await?;
        Ok(Issued {
            token,
            handle,
            expires_at,
        })
    }

    /// Consume `token` for `purpose`: its payload, once. `Ok(Err(_))` says why not — told apart
    /// for logs, one sentence for the client ([`TokenRefused::public_message`]). A token for
    /// another purpose is left usable for its own. `Err` is KV failing (503), or a stored record
    /// this code cannot read (409; it is left as it is).
    ///
    /// Exactly once ([`is_exactly_once`](Self::is_exactly_once)): the record is written back as
    /// used only if it is still the one read, so a concurrent consume that wrote first makes
    /// this one [`TokenRefused::Used`].
    pub async fn consume(
        &self,
        token: &str,
        purpose: &str,
    ) -> Result<std::result::Result<Redeemed<P>, TokenRefused>> {
        let Some(token) = Token::parse(token) else {
            return Ok(Err(TokenRefused::Malformed));
        };
        let hash = token.hashed();
        let key = self.records.key(&hash);
        let Some(stored) = self.kv().get(&key).await? else {
            return Ok(Err(TokenRefused::Unknown));
        };
        // Read with no expiry check (now = 0), so an expired token is told from an unknown one.
        let Some(decoded) =
            decode_value_in::<TokenRecord>(&stored.value, self.records.key_ring(), &key, 0, true)?
        else {
            return Ok(Err(TokenRefused::Unknown));
        };
        let record = decoded.value;
        if record.purpose != purpose {
            return Ok(Err(TokenRefused::WrongPurpose));
        }
        if record.consumed_at.is_some() {
            return Ok(Err(TokenRefused::Used));
        }
        let now = self.kv().now_ms();
        if now >= record.expires_at {
            return Ok(Err(TokenRefused::Expired));
        }
        // The payload before the token is spent: one this code cannot read spends nothing.
        let data = decode_data::<P>(&record)?;
        let mut used = record.clone();
        used.consumed_at = Some(now);
        let expected = self
            .exactly_once
            .then(|| Expected::Stamp(Stamp::of(&stored.value)));
        let written = self
            .records
            .put_after_read(&hash, &used, Some(record.expires_at), expected.as_ref())
            .await?;
        if !written {
            // Another consume (or a revocation) came between the read and the write.
            return Ok(Err(match self.kv().get(&key).await? {
                None => TokenRefused::Unknown,
                Some(_) => TokenRefused::Used,
            }));
        }
        // Best effort: a stale entry only lists a spent token until its expiry.
        let _ = self
            .kv()
            .delete(&self.index.key(&self.index_id(&record.user_id, &hash)))
            .await;
        Ok(Ok(Redeemed {
            user_id: record.user_id,
            data,
            created_at: record.created_at,
        }))
    }

    /// The live, unspent tokens of `user_id`, of `purpose` only when given, newest first.
    /// One `list` of the user's index and two bulk reads (entries and records).
    pub async fn list(&self, user_id: &str, purpose: Option<&str>) -> Result<Vec<TokenInfo>> {
        Ok(self
            .listed(user_id)
            .await?
            .into_iter()
            .filter(|l| purpose.is_none_or(|p| l.info.purpose == p))
            .map(|l| l.info)
            .collect())
    }

    /// Revoke the token `handle` of `user_id`: its record, then its index entry. `false` when
    /// the user has no live token with that handle.
    pub async fn revoke(&self, user_id: &str, handle: &TokenHandle) -> Result<bool> {
        let listed = self.listed(user_id).await?;
        let Some(target) = listed.iter().find(|l| &l.info.handle == handle) else {
            return Ok(false);
        };
        self.drop_token(target).await?;
        Ok(true)
    }

    /// Revoke every live token of `user_id` (of `purpose` only when given): how many went.
    pub async fn revoke_all(&self, user_id: &str, purpose: Option<&str>) -> Result<usize> {
        let listed = self.listed(user_id).await?;
        let mut revoked = 0;
        for l in listed
            .iter()
            .filter(|l| purpose.is_none_or(|p| l.info.purpose == p))
        {
            self.drop_token(l).await?;
            revoked += 1;
        }
        Ok(revoked)
    }

    async fn drop_token(&self, listed: &Listed) -> Result<()> {
        self.kv().delete(&self.records.key(&listed.hash)).await?;
        self.kv().delete(&listed.entry_key).await
    }

    /// `user_id`'s live, unspent tokens with what revoking them needs, newest first.
    async fn listed(&self, user_id: &str) -> Result<Vec<Listed>> {
        let prefix = format!("{}{}:", self.index.key(""), user_hash(user_id));
        let keys = self.kv().list_all(&prefix, MAX_INDEX_PAGES).await?;
        let now = self.kv().now_ms();
        let hashes: Vec<&str> = keys
            .iter()
            .filter_map(|k| k.name.strip_prefix(&prefix))
            .filter(|h| h.len() == 64)
            .collect();
        let entry_ids: Vec<String> = hashes.iter().map(|h| self.index_id(user_id, h)).collect();
        let entry_refs: Vec<&str> = entry_ids.iter().map(String::as_str).collect();
        let entries = self.index.get_many_entries(&entry_refs).await?;
        let records = self.records.get_many_entries(&hashes).await?;
        let mut listed = Vec::new();
        for ((hash, entry), record) in hashes.iter().zip(entries).zip(records) {
            let (Ok(Some(entry)), Ok(Some(record))) = (entry, record) else {
                continue;
            };
            let (entry, record) = (entry.value, record.value);
            if record.consumed_at.is_some() || now >= record.expires_at || record.user_id != user_id
            {
                continue;
            }
            let Some(handle) = TokenHandle::parse(&entry.handle) else {
                continue;
            };
            listed.push(Listed {
                info: TokenInfo {
                    handle,
                    purpose: record.purpose,
                    created_at: record.created_at,
                    expires_at: record.expires_at,
                },
                hash: hash.to_string(),
                entry_key: self.index.key(&self.index_id(user_id, hash)),
            });
        }
        listed.sort_by_key(|l| std::cmp::Reverse(l.info.created_at));
        Ok(listed)
    }

    fn index_id(&self, user_id: &str, hash: &str) -> String {
        format!("{}:{hash}", user_hash(user_id))
    }
}

/// A listed token with the keys revoking it deletes.
struct Listed {
    info: TokenInfo,
    hash: String,
    entry_key: String,
}

fn user_hash(user_id: &str) -> String {
    sha256_hex(user_id.as_bytes())
}

/// The record's payload as `P`, through `P`'s migrations and schema.
fn decode_data<P: Versioned>(record: &TokenRecord) -> Result<P> {
    if record.data_type != P::NAME {
        return Err(Error::TypeMismatch {
            expected: P::NAME,
            found: record.data_type.chars().take(64).collect(),
        });
    }
    if record.data_version > P::VERSION {
        return Err(Error::FutureVersion {
            type_name: P::NAME,
            found: record.data_version,
            known: P::VERSION,
        });
    }
    let text = serde_json::to_vec(&record.data).map_err(|e| Error::Codec {
        codec: Codec::Json,
        type_name: P::NAME,
        version: record.data_version,
        reason: describe_json_error(&e),
    })?;
    P::decode_payload(record.data_version, Payload::Json(&text), true)
}
