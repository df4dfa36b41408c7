import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonicalize } from './canonical-json.js';
import { equalBytes, fromBase64Url, isUuid, toBase64Url } from './encoding.js';
import { CannotDecryptError } from './errors.js';
import { pad, paddedLength, unpad } from './padding.js';

describe('base64url (RFC 4648 §5, no padding)', () => {
  it('matches RFC 4648 §10 test vectors (url alphabet, unpadded)', () => {
    const cases: [string, string][] = [['', ''], ['f', 'Zg'], ['fo', 'Zm8'], ['foo', 'Zm9v'], ['foob', 'Zm9vYg'], ['fooba', 'Zm9vYmE'], ['foobar', 'Zm9vYmFy']];
    for (const [raw, enc] of cases) {
      expect(toBase64Url(new TextEncoder().encode(raw))).toBe(enc);
      expect(new TextDecoder().decode(fromBase64Url(enc))).toBe(raw);
    }
    expect(toBase64Url(new Uint8Array([0xfb, 0xff]))).toBe('-_8');
  });

  it('round-trips and agrees with Node (fast-check)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (b) => {
        const s = toBase64Url(b);
        expect(s).toBe(Buffer.from(b).toString('base64url'));
        expect(fromBase64Url(s)).toEqual(b);
      }),
    );
  });

  it('agrees with Node on large inputs (the table-driven loops and every tail length)', () => {
    const big = new Uint8Array(200_003).map((_, i) => (i * 7919 + (i >>> 8)) & 0xff);
    for (const n of [65_536, 65_537, 65_538, 200_003]) {
      const b = big.subarray(0, n);
      const s = toBase64Url(b);
      expect(s).toBe(Buffer.from(b).toString('base64url'));
      expect(equalBytes(fromBase64Url(s, n), b)).toBe(true);
    }
  });

  it('accepts exactly the canonical encodings of some bytes (fast-check against Node)', () => {
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const chars = fc.oneof(
      { weight: 20, arbitrary: fc.constantFrom(...alphabet) },
      { weight: 1, arbitrary: fc.constantFrom('=', '+', '/', ' ', '\n', '\0', 'é', '\u0100', '\ud800', '😀', '\u00ad') },
    );
    fc.assert(
      fc.property(fc.array(chars, { maxLength: 40 }), (parts) => {
        const s = parts.join('');
        const canonical = s.length % 4 !== 1 && /^[A-Za-z0-9_-]*$/.test(s) && Buffer.from(s, 'base64url').toString('base64url') === s;
        if (canonical) expect(fromBase64Url(s)).toEqual(new Uint8Array(Buffer.from(s, 'base64url')));
        else expect(() => fromBase64Url(s)).toThrow(TypeError);
      }),
      { numRuns: 2000 },
    );
  });

  it('refuses padding, other alphabets, bad lengths, and non-zero trailing bits', () => {
    for (const bad of ['Zg==', 'Zm9v+', 'Zm9v/', 'Z', 'Zm9 v', 'Zh', 'Zm9', 'Zm8\n']) {
      expect(() => fromBase64Url(bad)).toThrow(TypeError);
    }
    expect(() => fromBase64Url('Zg', 2)).toThrow(TypeError);
  });

  it('compares in constant time and checks ids', () => {
    expect(equalBytes(new Uint8Array([1, 2]), new Uint8Array([1, 2]))).toBe(true);
    expect(equalBytes(new Uint8Array([1, 2]), new Uint8Array([1, 3]))).toBe(false);
    expect(equalBytes(new Uint8Array([1]), new Uint8Array([1, 2]))).toBe(false);
    expect(isUuid('0193c2a0-0000-7000-8000-000000000001')).toBe(true);
    expect(isUuid('0193C2A0-0000-7000-8000-000000000001')).toBe(false);
  });
});

describe('canonical JSON (RFC 8785 subset)', () => {
  it('sorts keys by UTF-16 code units, no whitespace', () => {
    // RFC 8785 §3.2.3 sorting example keys.
    const obj = { '\u20ac': 'Euro Sign', '\r': 'Carriage Return', '\ufb33': 'Hebrew Letter Dalet With Dagesh', '1': 'One', '\ud83d\ude00': 'Emoji: Grinning Face', '\u0080': 'Control', '\u00f6': 'Latin Small Letter O With Diaeresis' };
    expect(canonicalize(obj)).toBe(
      '{"\\r":"Carriage Return","1":"One","\u0080":"Control","\u00f6":"Latin Small Letter O With Diaeresis","\u20ac":"Euro Sign","\ud83d\ude00":"Emoji: Grinning Face","\ufb33":"Hebrew Letter Dalet With Dagesh"}',
    );
    expect(canonicalize({ b: [1, true, 'x'], a: { d: -0, c: 'é\u0001"' } })).toBe('{"a":{"c":"é\\u0001\\"","d":0},"b":[1,true,"x"]}');
  });

  it('refuses floats, unsafe integers, null, undefined and lone surrogates', () => {
    for (const bad of [1.5, 2 ** 53, NaN, null, undefined, '\ud800', { x: undefined }, new Date(0)]) {
      expect(() => canonicalize(bad as never)).toThrow(TypeError);
    }
  });
});

describe('padding to size buckets', () => {
  it('uses power-of-two buckets from 256 B, then 1 MiB steps', () => {
    expect([0, 255, 256, 511, 1000, 1048575, 1048576].map(paddedLength)).toEqual([256, 256, 512, 512, 1024, 1048576, 2097152]);
  });

  it('round-trips and rejects malformed padding uniformly', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 2000 }), (b) => {
        expect(unpad(pad(b))).toEqual(b);
      }),
    );
    expect(() => unpad(new Uint8Array(256))).toThrow(CannotDecryptError);
    const p = pad(new Uint8Array(3));
    expect(() => unpad(p.subarray(0, 200))).toThrow(CannotDecryptError);
  });
});
