/**
 * Canonical JSON (RFC 8785, JSON Canonicalization Scheme) for the value subset
 * the protocol signs: strings, booleans, safe integers, arrays and objects.
 * Floats, null and undefined are refused rather than canonicalised, so the
 * number-formatting rules of RFC 8785 §3.2.2.3 never come into play.
 */

export type CanonicalValue = string | boolean | number | readonly CanonicalValue[] | CanonicalObject;
export interface CanonicalObject {
  readonly [key: string]: CanonicalValue;
}

// A lone surrogate can't be encoded as UTF-8 (RFC 8785 §3.2.2.2 requires
// well-formed input), so two different strings would sign the same bytes.
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * Serialises `value` canonically: object keys sorted by UTF-16 code units
 * (RFC 8785 §3.2.3), no whitespace, strings escaped as `JSON.stringify` does
 * (§3.2.2.2), integers without exponent or fraction.
 * @example
 * canonicalize({ b: 1, a: ['x', true] }); // '{"a":["x",true],"b":1}'
 */
export function canonicalize(value: CanonicalValue): string {
  return write(value, 0);
}

function write(value: unknown, depth: number): string {
  if (depth > 32) throw new TypeError('canonical json: too deep');
  switch (typeof value) {
    case 'string':
      if (LONE_SURROGATE.test(value)) throw new TypeError('canonical json: lone surrogate');
      return JSON.stringify(value);
    case 'boolean':
      return value ? 'true' : 'false';
    case 'number':
      if (!Number.isSafeInteger(value)) throw new TypeError('canonical json: only safe integers');
      return Object.is(value, -0) ? '0' : String(value);
    case 'object': {
      if (value === null) throw new TypeError('canonical json: null not allowed');
      if (Array.isArray(value)) return `[${value.map((v) => write(v, depth + 1)).join(',')}]`;
      const proto = Object.getPrototypeOf(value) as unknown;
      if (proto !== Object.prototype && proto !== null) throw new TypeError('canonical json: plain objects only');
      const keys = Object.keys(value).sort();
      const parts = keys.map((k) => {
        if (LONE_SURROGATE.test(k)) throw new TypeError('canonical json: lone surrogate');
        return `${JSON.stringify(k)}:${write((value as Record<string, unknown>)[k], depth + 1)}`;
      });
      return `{${parts.join(',')}}`;
    }
    default:
      throw new TypeError(`canonical json: ${typeof value} not allowed`);
  }
}

/**
 * UTF-8 bytes of {@link canonicalize}: what is signed, hashed, or used as a label.
 * @example
 * const signed = canonicalBytes({ type: 'bil.device-certificate.v1', user_id: userId });
 */
export function canonicalBytes(value: CanonicalValue): Uint8Array<ArrayBuffer> {
  return new TextEncoder().encode(canonicalize(value));
}
