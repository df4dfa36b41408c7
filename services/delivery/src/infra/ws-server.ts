// The WebSocket endpoint `/v1/ws`. Authentication happens at the upgrade,
// before the socket opens: the access token comes in `Authorization: Bearer`
// (Node and native clients) or, for browsers that can't set headers, as a
// second offered subprotocol `bil.token.<jwt>` beside `bil.v1` (the server
// selects `bil.v1`, so the token is never echoed). A missing or bad token is
// answered `401` with the API's error body; a query string is refused
// (`400 invalid_request`, as the REST API names a bad query) so tokens never
// reach access logs. docs/ws-protocol.md lists every refusal.
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { Socket as NetSocket, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { AppError, OUTAGE_RETRY_AFTER_SECONDS, bearerToken, capConnectionsPerAddress, clientErrorHandler, createHttpServer, type Logger, type VerifiedActor } from '@bil/runtime';
import { SUBPROTOCOL, TOKEN_SUBPROTOCOL_PREFIX } from '../domain/frames.js';

export interface WsServerOptions {
  host: string;
  port: number;
  maxFrameBytes: number;
  verify: (token: string) => Promise<VerifiedActor>;
  accept: (ws: WebSocket, actor: VerifiedActor) => Promise<void>;
  logger: Logger;
  /** Time to receive an upgrade request's headers (slowloris), ms; default 10 s. */
  headersTimeoutMs?: number;
  /** Most open connections (sockets included) per client address; 0 for no cap. Default 20,000 (each gateway in front is one address). */
  maxConnectionsPerAddress?: number;
}

export const WS_PATH = '/v1/ws';

/** The access token of an upgrade request (header first, then subprotocol). */
export function upgradeToken(req: IncomingMessage): string {
  if (req.headers.authorization !== undefined) return bearerToken(req.headers.authorization);
  const offered = (req.headers['sec-websocket-protocol'] ?? '').split(',').map((s) => s.trim());
  const carried = offered.find((p) => p.startsWith(TOKEN_SUBPROTOCOL_PREFIX));
  if (carried && offered.includes(SUBPROTOCOL)) {
    const token = carried.slice(TOKEN_SUBPROTOCOL_PREFIX.length);
    if (token.length > 0 && token.length <= 4096) return token;
    throw new AppError('unauthenticated', 'invalid_token', 'the access token is malformed');
  }
  throw new AppError('unauthenticated', 'missing_token', 'an access token is required (Authorization: Bearer <token>, or subprotocols bil.v1 + bil.token.<token>)');
}

function refuse(socket: Duplex, status: number, code: string, message: string): void {
  const details = status === 503 ? { retry_after_seconds: OUTAGE_RETRY_AFTER_SECONDS } : {};
  const body = JSON.stringify({ error: { code, message, details } });
  const reason = { 400: 'Bad Request', 401: 'Unauthorized', 404: 'Not Found', 503: 'Service Unavailable' }[status] ?? 'Error';
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\n` +
      'Content-Type: application/json\r\n' +
      `Content-Length: ${Buffer.byteLength(body)}\r\n` +
      (status === 401 ? 'WWW-Authenticate: Bearer\r\n' : '') +
      (status === 503 ? `Retry-After: ${OUTAGE_RETRY_AFTER_SECONDS}\r\n` : '') +
      'Connection: close\r\n\r\n' +
      body,
  );
}

function destroyOnError(this: Duplex): void {
  this.destroy();
}

/** A plain HTTP request (no upgrade) to delivery's port. */
function plain(res: ServerResponse, status: number, code: string, message: string): void {
  res.statusCode = status;
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify({ error: { code, message, details: {} } }));
}

export interface WsServer {
  server: Server;
  wss: WebSocketServer;
  port: number;
  /**
   * Serves a client socket accepted elsewhere (the gateway's IPC handoff in
   * npm start), whose upgrade request was already read from it: `request`
   * (those bytes) is read first, then the socket as if the client had
   * connected here, with every check of a direct connection.
   */
  adopt(socket: Socket, request: Buffer): void;
  close(): Promise<void>;
}

export async function startWsServer(opts: WsServerOptions): Promise<WsServer> {
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: opts.maxFrameBytes,
    perMessageDeflate: false,
    handleProtocols: (protocols) => (protocols.has(SUBPROTOCOL) ? SUBPROTOCOL : false),
  });
  const headersTimeoutMs = opts.headersTimeoutMs ?? 10_000;
  const server = createHttpServer(
    (req, res) => {
      const message = 'WebSocket endpoint: GET /v1/ws with Upgrade: websocket';
      if (req.url === WS_PATH) plain(res, 426, 'upgrade_required', message);
      else plain(res, 404, 'not_found', message);
    },
    { headersTimeoutMs, requestTimeoutMs: Math.max(headersTimeoutMs, 30_000), keepAliveTimeoutMs: 5000 },
  );
  // Node's own refusals (431, malformed HTTP, 408) in the API's error shape, not bodiless.
  server.on('clientError', clientErrorHandler);
  let lastRefusalLog = 0;
  capConnectionsPerAddress(server, {
    perAddress: opts.maxConnectionsPerAddress ?? 20_000,
    onRefused: (address) => {
      if (Date.now() - lastRefusalLog < 60_000) return;
      lastRefusalLog = Date.now();
      opts.logger.warn({ address }, 'connections refused: too many from one address');
    },
  });
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    // A module-level listener: a closure here would share this scope's context and keep
    // `req` and `head` alive for the socket's whole life (kilobytes per idle socket).
    socket.on('error', destroyOnError);
    void (async () => {
      const path = (req.url ?? '').split('?')[0];
      if (path !== WS_PATH) return refuse(socket, 404, 'not_found', `no WebSocket endpoint ${path?.slice(0, 100)}`);
      if ((req.url ?? '').includes('?')) return refuse(socket, 400, 'invalid_request', 'no query parameters: send the token in a header or subprotocol');
      let actor: VerifiedActor;
      try {
        actor = await opts.verify(upgradeToken(req));
      } catch (err) {
        const app = err instanceof AppError ? err : new AppError('internal', 'internal', 'internal error');
        if (app.kind === 'unauthenticated') return refuse(socket, 401, app.code, app.message);
        opts.logger.warn({ code: app.code }, 'upgrade refused: token check unavailable');
        return refuse(socket, 503, 'service_unavailable', 'a backend service is unavailable, try again');
      }
      wss.handleUpgrade(req, socket, head, (ws) => {
        opts.accept(ws, actor).catch((err: unknown) => {
          opts.logger.error({ err }, 'accepting a socket failed');
          ws.terminate();
        });
      });
    })();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : opts.port;
  return {
    server,
    wss,
    port,
    adopt: (socket, request) => {
      socket.unshift(request);
      server.emit('connection', socket);
    },
    close: () =>
      new Promise<void>((resolve) => {
        wss.close();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** The IPC message of a handed-off socket (the gateway's ws-proxy.ts sends it; scripts/lib/services.mjs relays it). */
export const WS_HANDOFF_MESSAGE = 'bil.ws-handoff';
const MAX_HANDOFF_REQUEST_BASE64 = 128 * 1024;

/**
 * npm start's direct path: client sockets the gateway accepted arrive over
 * this process's IPC channel with the upgrade request already read from them,
 * and are served as if they had connected here. Fails at start without an
 * IPC channel.
 */
export function adoptHandedOffSockets(ws: Pick<WsServer, 'adopt'>, logger: Logger): void {
  if (!process.send) throw new Error('DELIVERY_WS_HANDOFF=ipc needs an IPC channel to the parent process (npm start sets one up)');
  process.on('message', (msg: unknown, handle: unknown) => {
    const m = msg as { type?: unknown; request?: unknown } | null;
    if (m?.type !== WS_HANDOFF_MESSAGE) return;
    if (!(handle instanceof NetSocket)) return;
    if (typeof m.request !== 'string' || m.request.length === 0 || m.request.length > MAX_HANDOFF_REQUEST_BASE64) {
      logger.warn('a handed-off socket came without a valid upgrade request');
      handle.destroy();
      return;
    }
    ws.adopt(handle, Buffer.from(m.request, 'base64'));
  });
}
