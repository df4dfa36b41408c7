// Strict input at the edge (issue 14 items 5, 6, 8, 9): a bounded JSON
// parser, the refusal of control characters and lone surrogates in every
// string input, the one error shape for errors Node and Fastify answer before
// any route runs, and per-address connection caps.
import { createServer, type RequestListener, type Server } from 'node:http';
import type { Socket } from 'node:net';
import { errorBody } from './errors.js';

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

/** A complete HTTP/1.1 error response in the documented shape, for a raw socket. */
export function rawErrorResponse(status: number, reason: string, code: string, message: string): string {
  const body = JSON.stringify(errorBody(code, message));
  return (
    `HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json; charset=utf-8\r\n` +
    `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`
  );
}

/**
 * Node's own refusals before a request exists (malformed HTTP, headers too
 * large, the request timeout) in the documented shape, instead of Node's or
 * Fastify's bodies. Used by the gateway (Fastify `clientErrorHandler`) and by
 * delivery's HTTP server.
 */
export function clientErrorHandler(err: NodeJS.ErrnoException, socket: Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  let res: string;
  if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
    res = rawErrorResponse(408, 'Request Timeout', 'request_timeout', 'the request took too long to arrive');
  } else if (err.code === 'HPE_HEADER_OVERFLOW') {
    res = rawErrorResponse(431, 'Request Header Fields Too Large', 'headers_too_large', 'the request headers are too large');
  } else if (err.code === 'HPE_URI_TOO_LONG') {
    res = rawErrorResponse(414, 'URI Too Long', 'uri_too_long', 'the request URI is too long');
  } else {
    res = rawErrorResponse(400, 'Bad Request', 'invalid_request', 'the request is malformed');
  }
  if (socket.writable) socket.end(res);
  socket.destroy();
}

export interface ConnectionCapOptions {
  /** Most open connections one address may hold (0: no cap). */
  perAddress: number;
  /** Called when a connection is refused, e.g. for a metric or a log line (never per byte). */
  onRefused?: (address: string) => void;
}

/**
 * Caps the open connections of each client address: past the cap a new
 * connection gets a 503 in the documented shape and is closed. Counts the TCP
 * peer (a trusted proxy in front is one address: size the cap for it).
 */
export function capConnectionsPerAddress(server: Server, opts: ConnectionCapOptions): void {
  if (opts.perAddress <= 0) return;
  const open = new Map<string, number>();
  server.on('connection', (socket: Socket) => {
    const address = socket.remoteAddress ?? 'unknown';
    const count = (open.get(address) ?? 0) + 1;
    if (count > opts.perAddress) {
      opts.onRefused?.(address);
      socket.end(rawErrorResponse(503, 'Service Unavailable', 'too_many_connections', 'too many open connections from this address'));
      socket.destroy();
      return;
    }
    open.set(address, count);
    socket.once('close', () => {
      const left = (open.get(address) ?? 1) - 1;
      if (left <= 0) open.delete(address);
      else open.set(address, left);
    });
  });
}

export interface HttpTimeouts {
  /** Time to receive the complete request headers. */
  headersTimeoutMs: number;
  /** Time to receive the complete request (headers and body). */
  requestTimeoutMs: number;
  /** Idle time between requests on a kept-alive connection. */
  keepAliveTimeoutMs: number;
}

/**
 * An HTTP server with Node's slowloris defences: a request whose headers (or
 * whole body) have not arrived in time is cut with 408. Node checks these on
 * `connectionsCheckingInterval`, which can only be set here, at creation.
 */
export function createHttpServer(handler: RequestListener, t: HttpTimeouts): Server {
  const server = createServer(
    {
      headersTimeout: t.headersTimeoutMs,
      requestTimeout: t.requestTimeoutMs,
      keepAliveTimeout: t.keepAliveTimeoutMs,
      connectionsCheckingInterval: Math.max(100, Math.min(1000, Math.floor(t.headersTimeoutMs / 2))),
    },
    handler,
  );
  return server;
}
