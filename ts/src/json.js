// @ts-check
/**
 * A strict JSON reader for values read from KV.
 *
 * `JSON.parse` is too lenient to give the Rust reader's verdicts: it keeps the last of repeated
 * keys, accepts lone surrogates, rounds `18446744073709551616` to the same double as
 * `u64::MAX`, and gives no way to decide an envelope's expiry before its payload is parsed.
 * Hence two small readers over one string:
 *
 * - {@link skipValue}: checks the syntax of one value and returns where it ends, iteratively
 *   (no recursion, no depth limit: hostile nesting cannot overflow the stack). Used for the
 *   envelope frame, where `data` is only delimited, as serde_json's `RawValue` does.
 * - {@link parseValue}: builds the value of a payload, refusing repeated keys, lone surrogates
 *   and more than {@link MAX_DEPTH} nested containers (the limit of the Rust reader's document).
 *
 * Errors never quote the input: they carry a kind and a character offset.
 *
 * @module
 */

/** Most nested containers a payload may have (the Rust reader's `instance::MAX_DEPTH`). */
export const MAX_DEPTH = 127;

/** A JSON syntax or strictness error at a character offset. */
export class JsonError extends Error {
  /**
   * @param {"syntax" | "depth" | "duplicate_key" | "lone_surrogate" | "number_range"} kind
   * @param {number} offset
   * @param {string} what
   */
  constructor(kind, offset, what) {
    super(`${what} at offset ${offset}`);
    this.name = "JsonError";
    /** What went wrong, as a stable name. */
    this.kind = kind;
    /** Character offset into the text. */
    this.offset = offset;
  }
}

const NUMBER = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;

/**
 * Offset of the first non-whitespace character at or after `pos` (JSON whitespace only).
 * @param {string} s
 * @param {number} pos
 * @param {number} end
 */
export function skipWs(s, pos, end) {
  while (pos < end) {
    const c = s.charCodeAt(pos);
    if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) break;
    pos++;
  }
  return pos;
}

/**
 * Read the string literal starting at `pos` (which holds `"`).
 * @param {string} s
 * @param {number} pos
 * @param {number} end
 * @returns {[string, number]} the decoded string and the offset after the closing quote
 */
export function readString(s, pos, end) {
  let i = pos + 1;
  let out = "";
  let from = i;
  for (;;) {
    if (i >= end) throw new JsonError("syntax", i, "unterminated string");
    const c = s.charCodeAt(i);
    if (c === 0x22) {
      out += s.slice(from, i);
      return [out, i + 1];
    }
    if (c < 0x20) throw new JsonError("syntax", i, "control character in string");
    if (c !== 0x5c) {
      i++;
      continue;
    }
    out += s.slice(from, i);
    const e = s.charCodeAt(i + 1);
    switch (e) {
      case 0x22: out += '"'; break;
      case 0x5c: out += "\\"; break;
      case 0x2f: out += "/"; break;
      case 0x62: out += "\b"; break;
      case 0x66: out += "\f"; break;
      case 0x6e: out += "\n"; break;
      case 0x72: out += "\r"; break;
      case 0x74: out += "\t"; break;
      case 0x75: {
        const hex = s.slice(i + 2, i + 6);
        if (i + 6 > end || !/^[0-9a-fA-F]{4}$/.test(hex)) {
          throw new JsonError("syntax", i, "bad \\u escape");
        }
        out += String.fromCharCode(parseInt(hex, 16));
        i += 4;
        break;
      }
      default:
        throw new JsonError("syntax", i, "bad escape");
    }
    i += 2;
    from = i;
  }
}

/**
 * Check the syntax of the one value starting at `pos` (after optional whitespace) and return
 * the offset just after it. Iterative: any nesting depth is fine.
 * @param {string} s
 * @param {number} pos
 * @param {number} [end]
 * @returns {number}
 */
export function skipValue(s, pos, end = s.length) {
  /** @type {number[]} 0x5d for an array, 0x7d for an object */
  const stack = [];
  pos = skipWs(s, pos, end);
  for (;;) {
    // A value starts at `pos`.
    if (pos >= end) throw new JsonError("syntax", pos, "unexpected end of input");
    const c = s.charCodeAt(pos);
    if (c === 0x7b || c === 0x5b) {
      const close = c === 0x7b ? 0x7d : 0x5d;
      pos = skipWs(s, pos + 1, end);
      if (s.charCodeAt(pos) === close) {
        pos++;
      } else {
        stack.push(close);
        if (close === 0x7d) pos = skipKey(s, pos, end);
        continue;
      }
    } else if (c === 0x22) {
      pos = readString(s, pos, end)[1];
    } else {
      pos = skipScalar(s, pos, end);
    }
    // After a value: close containers or move to the next member.
    for (;;) {
      if (stack.length === 0) return pos;
      pos = skipWs(s, pos, end);
      const d = s.charCodeAt(pos);
      const close = stack[stack.length - 1];
      if (d === close) {
        stack.pop();
        pos++;
        continue;
      }
      if (d !== 0x2c) throw new JsonError("syntax", pos, "expected , or a closing bracket");
      pos = skipWs(s, pos + 1, end);
      if (close === 0x7d) pos = skipKey(s, pos, end);
      break;
    }
  }
}

/** @param {string} s @param {number} pos @param {number} end */
function skipKey(s, pos, end) {
  if (s.charCodeAt(pos) !== 0x22) throw new JsonError("syntax", pos, "expected a key");
  pos = skipWs(s, readString(s, pos, end)[1], end);
  if (s.charCodeAt(pos) !== 0x3a) throw new JsonError("syntax", pos, "expected :");
  return skipWs(s, pos + 1, end);
}

/** @param {string} s @param {number} pos @param {number} end */
function skipScalar(s, pos, end) {
  for (const lit of ["true", "false", "null"]) {
    if (s.startsWith(lit, pos) && pos + lit.length <= end) return pos + lit.length;
  }
  NUMBER.lastIndex = pos;
  const m = NUMBER.exec(s);
  if (!m || pos + m[0].length > end) throw new JsonError("syntax", pos, "expected a value");
  return pos + m[0].length;
}

/**
 * Parse exactly one JSON value filling `[start, end)` (whitespace around it allowed), strictly:
 * repeated keys, lone surrogates, numbers out of double range and nesting deeper than
 * `maxDepth` are errors.
 * @param {string} s
 * @param {number} [start]
 * @param {number} [end]
 * @param {number} [maxDepth]
 * @returns {unknown}
 */
export function parseValue(s, start = 0, end = s.length, maxDepth = MAX_DEPTH) {
  const p = new Parser(s, end, maxDepth);
  const value = p.value(skipWs(s, start, end), 0);
  const after = skipWs(s, p.pos, end);
  if (after !== end) throw new JsonError("syntax", after, "trailing characters after the value");
  return value;
}

class Parser {
  /** @param {string} s @param {number} end @param {number} maxDepth */
  constructor(s, end, maxDepth) {
    this.s = s;
    this.end = end;
    this.maxDepth = maxDepth;
    this.pos = 0;
  }

  /** @param {number} pos @param {number} depth @returns {unknown} */
  value(pos, depth) {
    const { s, end } = this;
    if (pos >= end) throw new JsonError("syntax", pos, "unexpected end of input");
    const c = s.charCodeAt(pos);
    if (c === 0x22) {
      const [str, next] = this.string(pos);
      this.pos = next;
      return str;
    }
    if (c === 0x7b || c === 0x5b) {
      // Checked before descending, so recursion is bounded by maxDepth.
      if (depth + 1 > this.maxDepth) {
        throw new JsonError("depth", pos, `more than ${this.maxDepth} nested containers`);
      }
      return c === 0x7b ? this.object(pos, depth + 1) : this.array(pos, depth + 1);
    }
    const next = skipScalar(s, pos, end);
    this.pos = next;
    const lexeme = s.slice(pos, next);
    if (lexeme === "true") return true;
    if (lexeme === "false") return false;
    if (lexeme === "null") return null;
    const n = Number(lexeme);
    if (!Number.isFinite(n)) throw new JsonError("number_range", pos, "number out of range");
    return n;
  }

  /** @param {number} pos */
  string(pos) {
    const r = readString(this.s, pos, this.end);
    if (!r[0].isWellFormed()) throw new JsonError("lone_surrogate", pos, "lone surrogate in string");
    return r;
  }

  /** @param {number} pos @param {number} depth */
  object(pos, depth) {
    const { s, end } = this;
    /** @type {Record<string, unknown>} */
    const out = {};
    const seen = new Set();
    pos = skipWs(s, pos + 1, end);
    if (s.charCodeAt(pos) === 0x7d) {
      this.pos = pos + 1;
      return out;
    }
    for (;;) {
      if (s.charCodeAt(pos) !== 0x22) throw new JsonError("syntax", pos, "expected a key");
      const [key, afterKey] = this.string(pos);
      if (seen.has(key)) throw new JsonError("duplicate_key", pos, "repeated key");
      seen.add(key);
      pos = skipWs(s, afterKey, end);
      if (s.charCodeAt(pos) !== 0x3a) throw new JsonError("syntax", pos, "expected :");
      const v = this.value(skipWs(s, pos + 1, end), depth);
      // defineProperty: a key named "__proto__" is data, not the object's prototype.
      Object.defineProperty(out, key, { value: v, enumerable: true, writable: true, configurable: true });
      pos = skipWs(s, this.pos, end);
      const d = s.charCodeAt(pos);
      if (d === 0x7d) {
        this.pos = pos + 1;
        return out;
      }
      if (d !== 0x2c) throw new JsonError("syntax", pos, "expected , or }");
      pos = skipWs(s, pos + 1, end);
    }
  }

  /** @param {number} pos @param {number} depth */
  array(pos, depth) {
    const { s, end } = this;
    /** @type {unknown[]} */
    const out = [];
    pos = skipWs(s, pos + 1, end);
    if (s.charCodeAt(pos) === 0x5d) {
      this.pos = pos + 1;
      return out;
    }
    for (;;) {
      out.push(this.value(pos, depth));
      pos = skipWs(s, this.pos, end);
      const d = s.charCodeAt(pos);
      if (d === 0x5d) {
        this.pos = pos + 1;
        return out;
      }
      if (d !== 0x2c) throw new JsonError("syntax", pos, "expected , or ]");
      pos = skipWs(s, pos + 1, end);
    }
  }
}
