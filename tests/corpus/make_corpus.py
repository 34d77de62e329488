#!/usr/bin/env python3
"""Regenerate the hostile-input corpus. Each file is one case; manifest.txt says what each must give.

The files are the artifact (committed); this script documents how each was built. Run from the
repository root: `python3 tests/corpus/make_corpus.py`. Cases that come from fuzz crashes are
added by hand (or with `scripts/fuzz.sh`'s hint) and are not regenerated here.
"""
import json
import os

ROOT = os.path.dirname(os.path.abspath(__file__))
FAR = 4_000_000_000_000  # 2096: never expired for the tests
CASES = []  # (path, bytes, expected, why)


def case(path, data, expected, why):
    if isinstance(data, str):
        data = data.encode()
    CASES.append((path, data, expected, why))


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def pstr(s):
    if isinstance(s, str):
        s = s.encode()
    return varint(len(s)) + s


def frame(type_name="session", version=3, exp=FAR, tag=1):
    head = bytes([0xC5, 0x01, tag]) + pstr(type_name) + varint(version)
    head += b"\x00" if exp is None else b"\x01" + varint(exp)
    return head


def session_v3(user="u1", email="a@example.com", roles=()):
    body = pstr(user) + pstr(email)
    for t in (1_764_000_000_000, FAR, FAR, 1_764_000_000_000):
        body += varint(t)
    body += varint(len(roles)) + b"".join(pstr(r) for r in roles)
    return body


def session_v1_pc(user="u1", email="a@example.com"):
    return pstr(user) + pstr(email) + varint(1_764_000_000_000) + varint(FAR)


V3 = {
    "userId": "u1",
    "email": "a@example.com",
    "createdAt": 1_764_000_000_000,
    "expiresAt": FAR,
    "absoluteExpiresAt": FAR,
    "refreshedAt": 1_764_000_000_000,
    "roles": [],
}
V1 = {"userId": "u1", "email": "a@example.com", "createdAt": 1_764_000_000_000, "expiresAt": FAR}


def env(data, v=3, exp=FAR, type_name="session", raw_data=None):
    d = raw_data if raw_data is not None else json.dumps(data, separators=(",", ":"))
    e = "null" if exp is None else str(exp)
    return f'{{"kv":1,"type":"{type_name}","v":{v},"exp":{e},"data":{d}}}'


def with_(base, **kw):
    out = dict(base)
    out.update(kw)
    return out


# ---- controls: valid values the harness must accept (proves it can tell) ----
case("envelope/valid-v3.json", env(V3), "ok", "canonical current value")
case("envelope/valid-v1.json", env(V1, v=1), "ok", "old version, migrates")
case("envelope/valid-v3.bin", frame() + session_v3(), "ok", "postcard current value")
case("envelope/valid-v1.bin", frame(version=1) + session_v1_pc(), "ok", "postcard v1, migrates")
case("envelope/valid-never-expires.json", env(V3, exp=None), "ok", "exp null")
case("envelope/valid-data-first-key-order.json",
     '{"data":' + json.dumps(V3) + ',"exp":' + str(FAR) + ',"v":3,"type":"session","kv":1}',
     "ok", "another writer's key order: slow path")
case("envelope/valid-extra-keys-after-data.json",
     env(V3)[:-1] + ',"note":{"x":"}"}}', "ok", "unknown keys after data: tolerant path")
case("envelope/valid-leading-whitespace.json", "  \n\t" + env(V3), "ok", "JSON may start with whitespace")
case("envelope/valid-exp-u64-max.json", env(V3, exp=2**64 - 1), "ok", "largest expiry")

# ---- misses ----
case("envelope/expired.json", env(V3, exp=1000), "miss", "exp in the past: a clean miss")
case("envelope/expired.bin", frame(exp=1000) + session_v3(), "miss", "exp in the past: a clean miss")
case("envelope/expired-with-garbage-payload.json", env(None, exp=1000, raw_data='"x"'), "miss",
     "expiry is decided from the header alone")

# ---- frames ----
case("envelope/empty.bin", b"", "envelope", "zero bytes")
case("envelope/whitespace-only.json", " \r\n\t ", "envelope", "only whitespace")
case("envelope/truncated-frame.bin", b"\xc5\x01", "envelope", "shorter than the preamble")
case("envelope/magic-only.bin", b"\xc5", "envelope", "one byte")
case("envelope/truncated-header.bin", frame()[:8], "envelope", "type name cut")
case("envelope/truncated-expiry.bin", frame()[:-2], "envelope", "expiry varint cut")
case("envelope/truncated-payload.bin", (frame() + session_v3())[:-5], "codec", "payload cut")
case("envelope/wrong-magic.bin", b"\xc7\x01\x01" + (frame() + session_v3())[3:], "unknown_codec", "first byte neither C5 nor C6")
def sealed(type_name="session", version=3, exp=FAR, tag=0, key_id="k1"):
    head = bytes([0xC6, 0x01, tag]) + pstr(type_name) + varint(version)
    head += b"\x00" if exp is None else b"\x01" + varint(exp)
    return head + pstr(key_id)


# Sealed frames (C6): their header is read without a key; the readers of this corpus hold none.
case("envelope/sealed-no-key-ring.bin", sealed() + b"\x11" * 12 + b"\x22" * 40, "sealed_no_key_ring",
     "a sealed session read without a key ring: typed, never overwritten")
case("envelope/sealed-expired.bin", sealed(exp=1000) + b"\x11" * 12 + b"\x22" * 40, "miss",
     "a sealed value's expiry is decided from its readable header, without a key")
case("envelope/sealed-future-version.bin", sealed(version=9) + b"\x11" * 12 + b"\x22" * 40, "future_version",
     "a sealed value of a newer version is refused before opening")
case("envelope/sealed-truncated-nonce.bin", sealed() + b"\x11" * 5, "envelope", "nonce cut")
case("envelope/sealed-truncated-tag.bin", sealed() + b"\x11" * 12 + b"\x22" * 15, "envelope",
     "shorter than the 16-byte authentication tag")
case("envelope/sealed-bad-key-id.bin", sealed(key_id="bad id!") + b"\x11" * 12 + b"\x22" * 40, "envelope",
     "key id outside [A-Za-z0-9_]")
case("envelope/sealed-empty-key-id.bin", sealed(key_id="") + b"\x11" * 12 + b"\x22" * 40, "envelope",
     "empty key id")
case("envelope/sealed-inner-codec-7.bin", sealed(tag=7) + b"\x11" * 12 + b"\x22" * 40, "unknown_codec",
     "inner codec tag 7")
case("envelope/sealed-format-2.bin", b"\xc6\x02\x00" + (sealed() + b"\x11" * 28)[3:], "envelope",
     "sealed frame format 2")
case("envelope/wrong-frame-format.bin", b"\xc5\x02\x01" + (frame() + session_v3())[3:], "envelope", "frame format 2")
case("envelope/unknown-codec-tag.bin", frame(tag=7) + session_v3(), "unknown_codec", "codec tag 7")
case("envelope/codec-tag-zero.bin", frame(tag=0) + session_v3(), "unknown_codec", "codec tag 0")
case("envelope/nul-bytes.bin", b"\x00" * 64, "unknown_codec", "zeros")
case("envelope/utf8-bom.json", b"\xef\xbb\xbf" + env(V3).encode(), "unknown_codec", "BOM before JSON")
case("envelope/utf16le.json", b"\xff\xfe" + env(V3).encode("utf-16-le"), "unknown_codec", "UTF-16 JSON")
case("envelope/json-array.json", "[" + env(V3) + "]", "unknown_codec", "array, not an envelope object")
case("envelope/json-string.json", '"session"', "unknown_codec", "a JSON string")
case("envelope/huge-declared-length.bin",
     bytes([0xC5, 1, 1]) + varint(2**32 - 1) + b"session", "envelope", "type name length 4 GiB")
case("envelope/overlong-varint-length.bin",
     bytes([0xC5, 1, 1]) + b"\xff" * 12 + b"session", "envelope", "varint longer than u64")
case("envelope/huge-declared-payload-length.bin",
     frame() + varint(2**63) + b"u1", "codec", "payload string length 2^63")
case("envelope/huge-roles-count.bin",
     frame() + session_v3()[:-1] + varint(2**40), "codec", "roles count 2^40 with no elements")
case("envelope/version-varint-overflow.bin",
     bytes([0xC5, 1, 1]) + pstr("session") + varint(2**33) + b"\x00", "envelope", "version > u32")
case("envelope/bad-option-tag.bin",
     bytes([0xC5, 1, 1]) + pstr("session") + varint(3) + b"\x02" + session_v3(), "envelope", "Option tag 2")
case("envelope/invalid-utf8-type.bin",
     bytes([0xC5, 1, 1]) + pstr(b"\xff\xfesession") + varint(3) + b"\x00" + session_v3(), "envelope",
     "type name not UTF-8")
case("envelope/invalid-utf8-payload.bin", frame() + pstr(b"\xc3\x28") + session_v3()[3:], "codec",
     "payload string not UTF-8")
case("envelope/trailing-bytes.bin", frame() + session_v3() + b"\x00\x01", "codec", "bytes after the payload")

# ---- versions ----
case("envelope/future-version.json", env(with_(V3, newField=1), v=4), "future_version", "written by newer code")
case("envelope/future-version.bin", frame(version=4) + b"\x99" * 8, "future_version", "written by newer code")
case("envelope/future-version-u32-max.json", env(V3, v=2**32 - 1), "future_version", "largest version")
case("envelope/version-0.json", env(V3, v=0), "unknown_version", "versions start at 1")
case("envelope/version-0.bin", frame(version=0) + session_v3(), "unknown_version", "versions start at 1")
case("envelope/version-overflow.json", env(V3, v=2**32), "envelope", "version > u32")
case("envelope/version-negative.json", env(V3, v=-1), "envelope", "negative version")
case("envelope/version-float.json", env(V3, v=3.0), "envelope", "version 3.0")
case("envelope/version-string.json", env(V3, v='"3"'), "envelope", "version as a string")
case("envelope/kv-format-2.json", env(V3).replace('"kv":1', '"kv":2', 1), "envelope", "unknown JSON layout")
case("envelope/wrong-type.json", env(V3, type_name="cart"), "type_mismatch", "another type's value")
case("envelope/wrong-type.bin", frame(type_name="cart") + session_v3(), "type_mismatch", "another type's value")
case("envelope/huge-type-name.json", env(V3, type_name="x" * 100_000), "type_mismatch", "100 kB type name")

# ---- JSON text ----
case("envelope/invalid-utf8.json", env(None, raw_data=json.dumps(V3).replace("u1", "\udcff", 1)).encode("utf-8", "surrogateescape"),
     "envelope", "raw 0xFF inside a string")
case("envelope/invalid-utf8-type.json", env(V3).encode().replace(b"session", b"sess\xffion", 1), "envelope",
     "type name not UTF-8")
case("envelope/lone-surrogate.json", env(None, raw_data=json.dumps(V3).replace("u1", "\\ud800", 1)), "codec",
     "escaped lone surrogate")
case("envelope/deeply-nested.json", env(None, raw_data="[" * 100_000), "envelope", "100k [ in data (stack)")
case("envelope/deeply-nested-objects.json", env(None, raw_data='{"a":' * 50_000 + "1" + "}" * 50_000), "codec",
     "50k nested objects, balanced")
case("envelope/deeply-nested-envelope.json", '{"kv":' + "[" * 100_000, "envelope", "nesting before the header")
case("envelope/duplicate-keys.json", env(V3)[:-1] + ',"data":' + json.dumps(V3) + "}", "envelope",
     "data twice")
case("envelope/duplicate-header-keys.json",
     '{"v":3,"v":1,"kv":1,"type":"session","exp":null,"data":' + json.dumps(V3) + "}", "envelope", "v twice")
case("envelope/duplicate-payload-keys.json", env(None, raw_data='{"userId":"u1","userId":"u2",' + json.dumps(V3)[1:]),
     "codec", "userId twice: a repeated struct field is refused, validated or not (as serde refuses it)")
case("envelope/missing-data.json", '{"kv":1,"type":"session","v":3,"exp":null}', "envelope", "no data")
case("envelope/data-null.json", env(None, raw_data="null"), "validation", "data is null")
case("envelope/exp-negative.json", env(V3, exp=-1), "envelope", "negative expiry")
case("envelope/exp-overflow.json", env(V3, exp=2**64), "envelope", "expiry > u64")
case("envelope/exp-float.json", env(V3, exp="1e30"), "envelope", "expiry as float")
case("envelope/nan.json", env(None, raw_data='{"userId":NaN}'), "envelope", "NaN is not JSON")
case("envelope/unterminated.json", env(V3)[:-20], "envelope", "cut mid-payload")
case("envelope/unterminated-string.json", '{"kv":1,"type":"sess', "envelope", "cut in the type name")

# ---- schema (the secret marker must never appear in an error) ----
case("envelope/schema-violating.json", env(with_(V3, email="not-an-email-SECRET-hunter2")), "validation",
     "email format")
case("envelope/schema-violating.bin", frame() + session_v3(email="not-an-email-SECRET-hunter2"), "validation",
     "email format, postcard payload is validated too")
case("envelope/schema-empty-user-id.json", env(with_(V3, userId="")), "validation", "minLength 1")
case("envelope/schema-long-user-id.json", env(with_(V3, userId="SECRET" * 100)), "validation", "maxLength 256")
case("envelope/schema-too-many-roles.json", env(with_(V3, roles=["r"] * 65)), "validation", "maxItems 64")
case("envelope/schema-wrong-type.json", env(with_(V3, createdAt="SECRET-hunter2")), "validation", "string for u64")
case("envelope/schema-float-time.json", env(with_(V3, createdAt=1.5)), "validation", "float for u64")
case("envelope/schema-negative-time.json", env(with_(V3, createdAt=-5)), "validation", "negative time")
case("envelope/schema-unknown-field.json", env(with_(V3, isAdmin=True)), "validation", "deny_unknown_fields")
case("envelope/schema-missing-field.json", env({k: v for k, v in V3.items() if k != "email"}), "validation",
     "email missing")
case("envelope/schema-v1-missing-field.json", env({"userId": "u1"}, v=1), "validation", "v1 shape incomplete")
case("envelope/schema-v3-shape-as-v1.json", env(V3, v=1), "validation", "v3 fields under v1")
case("envelope/schema-data-array.json", env([V3]), "validation", "array payload")

# ---- metadata (KV metadata is JSON text we did not necessarily write) ----
case("metadata/valid.json", '{"t":"session","v":3,"c":"json","e":1764000000000}', "some", "ours")
case("metadata/valid-no-expiry.json", '{"t":"session","v":1,"c":"postcard"}', "some", "ours, never expires")
case("metadata/non-json.txt", "session v3 json", "none", "plain text")
case("metadata/empty.txt", "", "none", "empty")
case("metadata/json-null.json", "null", "none", "null")
case("metadata/wrong-shape.json", '{"type":"session","version":3}', "none", "another tool's metadata")
case("metadata/unknown-codec.json", '{"t":"session","v":3,"c":"bson"}', "none", "codec we do not know")
case("metadata/version-overflow.json", '{"t":"session","v":4294967296,"c":"json"}', "none", "v > u32")
case("metadata/version-negative.json", '{"t":"session","v":-1,"c":"json"}', "none", "negative version")
case("metadata/deeply-nested.json", '{"t":' + "[" * 100_000, "none", "stack")
case("metadata/truncated.json", '{"t":"session","v":3,"c":"js', "none", "cut")
case("metadata/lone-surrogate.json", '{"t":"\\udc00","v":3,"c":"json"}', "none", "escaped lone surrogate")


# ---- cookies: a `Cookie` header each, read with the default config (name `session`). A live
# session is stored under ID; expected is `found` or the NoSession code. ----
ID = "11" * 32
ID2 = "22" * 32
case("cookies/valid.txt", f"session={ID}", "found", "the one form")
case("cookies/valid-among-others.txt", f"theme=dark; session={ID}; lang=en", "found", "other cookies around it")
case("cookies/valid-duplicate-same-value.txt", f"session={ID}; session={ID}", "found", "path duplicate, same id")
case("cookies/duplicate-malformed-and-valid.txt", f"session=SECRET-hunter2; session={ID}", "found",
     "a non-id value can never select a session: ignored")
case("cookies/ambiguous-two-ids.txt", f"session={ID}; session={ID2}", "ambiguous_cookie", "tossed cookie")
case("cookies/empty.txt", "", "no_cookie", "empty header")
case("cookies/semicolons-only.txt", ";;;; ;", "no_cookie", "no pairs")
case("cookies/no-equals.txt", "session", "no_cookie", "name without value")
case("cookies/empty-value.txt", "session=", "malformed_id", "empty value")
case("cookies/upper-hex-id.txt", "session=" + "AB" * 32, "malformed_id", "upper-case hex")
case("cookies/quoted-id.txt", f'session="{ID}"', "malformed_id", "quotes are not stripped")
case("cookies/percent-encoded-id.txt", "session=" + "".join(f"%{ord(c):02x}" for c in ID[:20]) + ID[20:],
     "malformed_id", "no percent-decoding")
case("cookies/short-id.txt", f"session={ID[:-1]}", "malformed_id", "63 characters")
case("cookies/long-id.txt", f"session={ID}0", "malformed_id", "65 characters")
case("cookies/secret-in-value.txt", "session=SECRET-hunter2-" + ID[:40], "malformed_id",
     "the reason carries the length, never the value")
case("cookies/name-case.txt", f"Session={ID}", "no_cookie", "names are case-sensitive")
case("cookies/name-prefix.txt", f"xsession={ID}", "no_cookie", "another cookie")
case("cookies/name-suffix.txt", f"session_={ID}", "no_cookie", "another cookie")
case("cookies/host-prefixed-under-plain-config.txt", f"__Host-session={ID}", "no_cookie", "another name")
case("cookies/comma-smuggled.txt", f"x=1,session={ID}", "no_cookie", "split on ; only")
case("cookies/two-lines-joined.txt", f"session={ID}, theme=dark", "found",
     "two Cookie lines joined by the runtime with ', ': the session cookie's own value")
case("cookies/two-lines-joined-session-second.txt", f"theme=dark, session={ID}", "no_cookie",
     "inside another cookie's value: indistinguishable from a tossed value, not read")
case("cookies/comma-after-id.txt", f"session={ID},x=1", "malformed_id", "a comma is part of the value")
case("cookies/nul-byte.txt", f"session={ID}\0", "malformed_id", "NUL after the id")
case("cookies/crlf-injection.txt", f"session={ID}\r\nSet-Cookie: admin=1", "malformed_id", "header injection")
case("cookies/unicode-name.txt", f"séssion={ID}", "no_cookie", "lookalike name")
case("cookies/fullwidth-digits.txt", "session=" + "\uff11" * 64, "malformed_id", "fullwidth 1s")
case("cookies/many-cookies.txt", "a=b; " * 1000 + f"session={ID}", "found", "1000 other pairs")
case("cookies/oversize-header.txt", "a=" + "b" * (8 * 1024 - 2 - len(f"; session={ID}") + 1) + f"; session={ID}",
     "header_too_large", "8 KiB + 1")
case("cookies/limit-sized-header.txt", "a=" + "b" * (8 * 1024 - 2 - len(f"; session={ID}")) + f"; session={ID}",
     "found", "exactly 8 KiB")
case("cookies/invalid-utf8.txt", b"session=" + b"\xff" * 64, "malformed_id", "read lossily: U+FFFD is not hex")
case("cookies/id-with-attributes.txt", f"session={ID}; Path=/; HttpOnly", "found", "Set-Cookie syntax sent back")
case("cookies/whitespace-around-value.txt", f"a=1; session=\n\n{ID}", "found",
     "fuzz regression (cookie_parse): the cookie crate trims whitespace around values; the id is still strict")
case("cookies/nbsp-around-value.txt", f"session=\u00a0{ID}\u00a0", "found",
     "Unicode whitespace is trimmed too")
case("cookies/whitespace-inside-value.txt", f"session={ID[:32]} {ID[32:]}", "malformed_id", "not trimmed inside")
case("cookies/only-attributes.txt", "Path=/; Secure; HttpOnly", "no_cookie", "no session pair")

# ---- session ids: the text SessionId::parse gets; `ok` or `malformed_id` ----
case("session-ids/valid.txt", ID, "ok", "64 lowercase hex")
case("session-ids/valid-all-zero.txt", "0" * 64, "ok", "well-formed (never generated in practice)")
case("session-ids/empty.txt", "", "malformed_id", "empty")
case("session-ids/short.txt", ID[:-1], "malformed_id", "63")
case("session-ids/long.txt", ID + "1", "malformed_id", "65")
case("session-ids/huge.txt", "a" * 100_000, "malformed_id", "100 kB")
case("session-ids/uppercase.txt", ID.upper().replace("1", "A"), "malformed_id", "upper case")
case("session-ids/non-hex.txt", "g" + ID[1:], "malformed_id", "g")
case("session-ids/trailing-newline.txt", ID[:-1] + "\n", "malformed_id", "newline in place of a digit")
case("session-ids/padded.txt", " " + ID[1:-1] + " ", "malformed_id", "spaces")
case("session-ids/nul-byte.txt", ID[:-1] + "\0", "malformed_id", "NUL (not `nul.txt`: a reserved file name on Windows, refused by cargo package)")
case("session-ids/fullwidth.txt", "\uff11" * 64, "malformed_id", "64 fullwidth characters")
case("session-ids/fullwidth-short.txt", "\uff11" * 21 + "1", "malformed_id", "64 bytes of non-ASCII")
case("session-ids/combining.txt", ID[:-1] + "1\u0301", "malformed_id", "combining accent")
case("session-ids/uuid.txt", "123e4567-e89b-12d3-a456-426614174000", "malformed_id", "UUID form")
case("session-ids/base64.txt", "ERERERERERERERERERERERERERERERERERERERERERE=", "malformed_id", "base64 form")
case("session-ids/hash-of-id.txt", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", "ok",
     "well-formed: a KV key hash sent as a cookie finds nothing")
case("session-ids/path-traversal.txt", "../" * 21 + "a", "malformed_id", "64 bytes of ../")
case("session-ids/kv-key.txt", "session:" + ID[8:], "malformed_id", "a KV key")


def main():
    manifest = [
        "# Hostile-input corpus: <path> <expected> -- why",
        "# expected: an Error::kind() name, `miss` (Ok(None)), `ok` (controls) for envelope/;",
        "# `some`/`none` (Header::from_metadata) for metadata/; `found` or a NoSession code for",
        "# cookies/; `ok` or a NoSession code for session-ids/. Generated by make_corpus.py;",
        "# fuzz regressions are appended by hand.",
    ]
    for path, data, expected, why in CASES:
        full = os.path.join(ROOT, path)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "wb") as f:
            f.write(data)
        manifest.append(f"{path} {expected} -- {why}")
    # Fuzz regressions (`<kind>/fuzz-*`) are committed by hand: keep their lines.
    path = os.path.join(ROOT, "manifest.txt")
    if os.path.exists(path):
        with open(path) as f:
            manifest += [l.rstrip("\n") for l in f if "/fuzz-" in l.split(" ")[0]]
    with open(path, "w") as f:
        f.write("\n".join(manifest) + "\n")
    print(f"{len(CASES)} cases")


if __name__ == "__main__":
    main()
