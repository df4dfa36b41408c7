// The HTTP edge shared by the gateway and delivery (issue 14 items 8, 9):
// Node's own refusals (malformed HTTP, 431, 408) in the one error shape,
// slowloris timeouts set where Node honours them (at server creation), and a
// cap on open connections per client address.
import { createServer, type RequestListener, type Server } from 'node:http';
import type { Socket } from 'node:net';

function errorJson(code: string, message: string): string {
  return JSON.stringify({ error: { code, message, details: {} } });
}

/** A complete HTTP/1.1 error response in the documented shape, for a raw socket. */
export function rawErrorResponse(status: number, reason: string, code: string, message: string): string {
  const body = errorJson(code, message);
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
