// Compiled by `tsc -p ts` (test/types.test.js), never run: the generated types must let a caller
// branch on the stored version and must refuse writing a non-current shape.
import { createEnvelopes, EnvelopeError, keyRingFromEnv, KeyRingError, type KvNamespaceLike, type StoredSeal } from "@kv-envelope/ts";
import { registry, type SessionV3 } from "@kv-envelope/ts/generated";

declare const kv: KvNamespaceLike;
const { getValue, putValue, writeEnvelope, openEnvelope, sealEnvelope } = createEnvelopes(registry);

export async function example(): Promise<string> {
  const read = await getValue(kv, "session:abc", "session");
  if (read === null) return "miss";
  switch (read.version) {
    case 1:
      // v1 has no absolute cap.
      return read.data.email;
    case 3: {
      const s: SessionV3 = read.data;
      return String(s.refreshedAt);
    }
    default:
      return read.data.userId;
  }
}

export async function write(s: SessionV3): Promise<void> {
  await putValue(kv, "session:abc", "session", s, { expiresAt: Date.now() + 60_000 });
  // @ts-expect-error a v1 shape is not what writers write
  writeEnvelope("session", { userId: "u", email: "e", createdAt: 1, expiresAt: 2 });
  // @ts-expect-error not a type in the registry
  writeEnvelope("cart", s);
}

export function codeOf(e: unknown): string | undefined {
  return e instanceof EnvelopeError ? e.code : undefined;
}

// Sealed values: a ring changes what getValue returns (keyId, seal) and what putValue returns (bytes).
export async function sealed(env: { SEAL_KEYS: string }, s: SessionV3): Promise<StoredSeal | string> {
  let keyRing;
  try {
    keyRing = await keyRingFromEnv(env, "SEAL");
  } catch (e) {
    return e instanceof KeyRingError ? e.code : "?";
  }
  const bytes: Uint8Array = await putValue(kv, "session:abc", "session", s, { keyRing });
  const text: string = await putValue(kv, "session:abc", "session", s);
  const read = await getValue(kv, "session:abc", "session", { keyRing });
  if (read === null) return "miss";
  const id: string | null = read.keyId;
  const opened = await openEnvelope(keyRing, bytes, "session", "session:abc");
  const again: Uint8Array = await sealEnvelope(keyRing, "session:abc", "session", s);
  // @ts-expect-error a v1 shape is not what writers seal
  await sealEnvelope(keyRing, "session:abc", "session", { userId: "u", email: "e", createdAt: 1, expiresAt: 2 });
  return opened?.seal ?? `${id}${text}${again.length}${read.seal}`;
}
