// Strict input at the edge (issue 14 items 5, 6): a bounded JSON depth scan
// and the refusal of control characters and lone surrogates in every string
// input. The HTTP-level defences (timeouts, connection caps, Node's own
// refusals in the error shape) live in @bil/runtime's http-edge, shared with delivery.
export { capConnectionsPerAddress, clientErrorHandler, createHttpServer, rawErrorResponse, type HttpTimeouts } from '@bil/runtime';

/** Deepest nesting of arrays and objects a request body may have (no route needs more than 8). */
export const DEFAULT_JSON_MAX_DEPTH = 32;

export type JsonScan = { ok: true } | { ok: false; reason: 'depth' | 'syntax' };

/**
 * One pass over the text that bails out at the first bracket past `maxDepth`,
 * before JSON.parse sees it: an 8 MiB `[[[…]]]` costs a few milliseconds, not a
 * parse and a validation of millions of nested arrays. Strings are skipped
 * (brackets inside them don't count). Unbalanced closers are a syntax error.
 */
export function scanJsonDepth(text: string, maxDepth: number): JsonScan {
  let depth = 0;
  const n = text.length;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      // Skip the string, honouring escapes.
      i++;
      while (i < n) {
        const d = text.charCodeAt(i);
        if (d === 0x5c /* \ */) i += 2;
        else if (d === 0x22) break;
        else i++;
      }
    } else if (c === 0x5b /* [ */ || c === 0x7b /* { */) {
      depth++;
      if (depth > maxDepth) return { ok: false, reason: 'depth' };
    } else if (c === 0x5d /* ] */ || c === 0x7d /* } */) {
      depth--;
      if (depth < 0) return { ok: false, reason: 'syntax' };
    }
  }
  return { ok: true };
}

// C0 controls, DEL and C1 controls.
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

// A high surrogate not followed by a low one, or a low one not preceded by a high one.
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

export interface BadString {
  /** Dotted path of the offending value (`devices.0.name`), or `''` for the root. */
  field: string;
  reason: string;
}

/** Why a string is refused at the edge, or null when it is fine. */
export function badCharacters(s: string): string | null {
  if (CONTROL.test(s)) return 'must not contain control characters';
  if (LONE_SURROGATE.test(s)) return 'must be valid Unicode (no lone surrogates)';
  return null;
}

/**
 * The first string (value or key) anywhere in `value` with a control
 * character or a lone surrogate. Iterative, so depth can't overflow the stack.
 */
export function findBadString(value: unknown): BadString | null {
  const stack: Array<[unknown, string]> = [[value, '']];
  while (stack.length > 0) {
    const [v, path] = stack.pop()!;
    if (typeof v === 'string') {
      const reason = badCharacters(v);
      if (reason) return { field: path, reason };
    } else if (Array.isArray(v)) {
      for (let i = v.length - 1; i >= 0; i--) stack.push([v[i], path ? `${path}.${i}` : String(i)]);
    } else if (v !== null && typeof v === 'object') {
      for (const [k, child] of Object.entries(v as Record<string, unknown>)) {
        const reason = badCharacters(k);
        if (reason) return { field: path ? `${path}.${printable(k)}` : printable(k), reason };
        stack.push([child, path ? `${path}.${k}` : k]);
      }
    }
  }
  return null;
}

function printable(k: string): string {
  // eslint-disable-next-line no-control-regex
  return k.replace(/[\u0000-\u001f\u007f-\u009f]/g, '?').slice(0, 64);
}

