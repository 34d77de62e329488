//! The one key builder of the cache, and the namespace generation record.

use serde::{Deserialize, Serialize};

/// Builds every KV key the cache touches:
///
/// * entries: `<prefix>:<namespace>:g<generation>:<key>`
/// * the namespace generation: `<prefix>:<namespace>:generation`
///
/// `%` and `:` in the namespace are percent-encoded so a namespace can never reach into
/// another's keys; the caller's key is used as given (it is the last segment). `generation`
/// can never collide with an entry key, whose third segment is `g` followed by digits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheKeys {
    /// `<prefix>:<escaped namespace>:`
    base: String,
}

impl CacheKeys {
    /// Keys under `prefix` (used as given; may contain `:`) and `namespace` (escaped).
    pub fn new(prefix: &str, namespace: &str) -> Self {
        let mut base = String::with_capacity(prefix.len() + namespace.len() + 2);
        base.push_str(prefix);
        base.push(':');
        for c in namespace.chars() {
            match c {
                '%' => base.push_str("%25"),
                ':' => base.push_str("%3A"),
                c => base.push(c),
            }
        }
        base.push(':');
        Self { base }
    }

    /// The key of `key` in `generation`.
    pub fn entry(&self, generation: u64, key: &str) -> String {
        let generation = generation.to_string();
        let mut k = String::with_capacity(self.base.len() + 2 + generation.len() + key.len());
        k.push_str(&self.base);
        k.push('g');
        k.push_str(&generation);
        k.push(':');
        k.push_str(key);
        k
    }

    /// The key holding the namespace's generation.
    pub fn generation(&self) -> String {
        let mut k = self.base.clone();
        k.push_str("generation");
        k
    }

    /// `<prefix>:<namespace>:`, the prefix of every key of the namespace (for `list`).
    pub fn namespace_prefix(&self) -> &str {
        &self.base
    }
}

/// The generation of a cache namespace, stored (without expiry) at
/// [`CacheKeys::generation`]. Bumping it orphans every entry of the old generation at once;
/// orphans expire by their own TTL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct NamespaceGeneration {
    /// The current generation; 0 when the record does not exist yet.
    pub generation: u64,
}

crate::versioned! {
    name: "kv-envelope.cache-generation",
    versions: [NamespaceGeneration],
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout() {
        let k = CacheKeys::new("cache", "product");
        assert_eq!(k.entry(0, "42"), "cache:product:g0:42");
        assert_eq!(k.entry(17, "a:b"), "cache:product:g17:a:b");
        assert_eq!(k.generation(), "cache:product:generation");
        assert_eq!(k.namespace_prefix(), "cache:product:");
    }

    #[test]
    fn namespace_cannot_reach_into_another() {
        // Unescaped, namespace "a:g1" would put its generation record at an entry key of "a".
        let evil = CacheKeys::new("cache", "a:g1");
        let plain = CacheKeys::new("cache", "a");
        assert_eq!(evil.generation(), "cache:a%3Ag1:generation");
        assert_ne!(evil.generation(), plain.entry(1, "generation"));
        assert_eq!(CacheKeys::new("c", "50%").namespace_prefix(), "c:50%25:");
    }
}
