//! Cache-aside on KV: TTL presets, namespace invalidation, stampede defences.
