// The malicious gateway: an HTTP + WebSocket proxy in front of the real
// gateway that plays the server operator of docs/protocol.md's threat model.
// Tests register rules that rewrite what clients send (request bodies), what
// they receive (response JSON and status, WebSocket frames both ways), or
// answer in the server's place; every rule counts how often it actually
// changed something, so a test can show the attack was really attempted.
//
//   const proxy = await startProxy(inject('gatewayUrl'));
//   const rule = proxy.onResponse('swap key', { method: 'GET', path: /^\/v1\/users\/[^/]+\/devices$/ },
//     (res) => ({ body: { ...res.body, identity_key: mallorysKey } }));
//   ... drive the SDK or CLI at proxy.url ...
//   expect(rule.fired).toBeGreaterThan(0);
//
// A handler returns `undefined` to leave the exchange alone (that does not
// count as firing). Handlers may be async (e.g. to delay). The proxy keeps a
// log of every exchange as the real server saw it and as the client got it.
// Bodies that are not JSON (attachment ciphertext) pass through as bytes, and
// a response rule may rewrite them (`bytes`). Past ~400 lines because the
// HTTP and WebSocket halves share one rule table and log.
import { Agent, createServer, request as httpRequest, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocket, WebSocketServer, type RawData } from 'ws';

/** JSON as the wire has it; tests reach into it freely. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Json = any;

/** Who is asking, from the bearer token (not verified: the proxy is the server, it knows). */
export interface Caller {
  userId?: string;
  deviceId?: string;
}

export interface RequestInfo extends Caller {
  method: string;
  /** Path without the query, e.g. /v1/chats/…/keys. */
  path: string;
  query: URLSearchParams;
  /** The parsed JSON body (after earlier request rules), or undefined. */
  body: Json;
}

export interface Match {
  /** HTTP method; any when left out. */
  method?: string;
  /** Tested against the path without the query. */
  path: RegExp;
  /** Only requests of this user (from the token). */
  userId?: string;
  /** Only requests of this device (from the token). */
  deviceId?: string;
  /** Fire at most this many times, then stay quiet. */
  times?: number;
}

export interface Reply {
  status: number;
  body: Json;
  /** The server's body as bytes (for answers that are not JSON); a response rule returns `bytes` to replace them. */
  bytes?: Buffer;
}

export interface Rule {
  readonly name: string;
  /** How many times this rule changed (or answered, or dropped) something. */
  readonly fired: number;
  remove(): void;
}

/** One HTTP exchange through the proxy. */
export interface Exchange extends Caller {
  method: string;
  path: string;
  query: string;
  /** The body the real server received ('' if the proxy answered itself). */
  forwardedBody: string;
  status: number;
  /** The body the client received. */
  clientBody: string;
}

/** `down`: server → client; `up`: client → server. */
export type Direction = 'down' | 'up';

/**
 * What a frame rule returns: `undefined` leaves the frame alone, `null` drops
 * it, one frame replaces it, an array sends several (e.g. a duplicate).
 */
export type FrameResult = Json | Json[] | null | undefined;

export interface LiveSocket extends Caller {
  /** Sends a frame to the client as if the server had. */
  sendDown(frame: Json): void;
  close(): void;
}

type RequestHandler = (req: RequestInfo) => Json | undefined | Promise<Json | undefined>;
type ReplyHandler = (req: RequestInfo) => Reply | undefined | Promise<Reply | undefined>;
type ResponseHandler = (res: Reply, req: RequestInfo) => Partial<Reply> | undefined | Promise<Partial<Reply> | undefined>;
type FrameHandler = (frame: Json, socket: LiveSocket) => FrameResult | Promise<FrameResult>;

interface Entry {
  kind: 'request' | 'reply' | 'response' | 'frame';
  rule: RuleImpl;
  match?: Match;
  direction?: Direction;
  caller?: Caller;
  handler: (...args: never[]) => unknown;
}

class RuleImpl implements Rule {
  fired = 0;
  constructor(
    readonly name: string,
    readonly times: number,
    readonly remove: () => void,
  ) {}
  get spent(): boolean {
    return this.fired >= this.times;
  }
}

export interface MaliciousGateway {
  /** The proxy's base URL, what clients get as baseUrl / BIL_URL. */
  readonly url: string;
  /** Every HTTP exchange so far, oldest first. */
  readonly log: readonly Exchange[];
  /** Every WebSocket frame passed on (after rules), oldest first. */
  readonly frames: readonly { direction: Direction; frame: Json }[];
  /** Open live connections. */
  readonly sockets: readonly LiveSocket[];
  /** Rewrites a request body before the server sees it; return the new body. */
  onRequest(name: string, match: Match, handler: RequestHandler): Rule;
  /** Answers in the server's place (the server never sees the request): return the reply. */
  reply(name: string, match: Match, handler: ReplyHandler): Rule;
  /** Rewrites the server's answer (JSON body and/or status) before the client sees it. */
  onResponse(name: string, match: Match, handler: ResponseHandler): Rule;
  /** Rewrites, drops or duplicates WebSocket frames (JSON) in one direction. */
  onFrame(name: string, direction: Direction, handler: FrameHandler, options?: Caller & { times?: number }): Rule;
  /** Removes every rule (the log stays). */
  reset(): void;
  close(): Promise<void>;
}

/** The user and device a bearer token names (its claims read, not verified). */
export function callerOf(token: string | undefined): Caller {
  const payload = token?.split('.')[1];
  if (!payload) return {};
  try {
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { sub?: unknown; did?: unknown };
    return { ...(typeof claims.sub === 'string' ? { userId: claims.sub } : {}), ...(typeof claims.did === 'string' ? { deviceId: claims.did } : {}) };
  } catch {
    return {};
  }
}

function tokenOf(req: IncomingMessage): string | undefined {
  const auth = req.headers.authorization;
  if (auth?.startsWith('Bearer ')) return auth.slice(7);
  const offered = String(req.headers['sec-websocket-protocol'] ?? '').split(',').map((p) => p.trim());
  return offered.find((p) => p.startsWith('bil.token.'))?.slice('bil.token.'.length);
}

/** Headers without those that describe one connection or the body's old length. */
function hopByHopRemoved(headers: IncomingHttpHeaders): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(headers)) if (v !== undefined && !['content-length', 'transfer-encoding', 'connection', 'keep-alive'].includes(k)) out[k] = v;
  return out;
}

const readAll = (stream: NodeJS.ReadableStream): Promise<Buffer> =>
  new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => resolve(Buffer.concat(chunks)));
    stream.on('error', reject);
  });

function parseJson(text: string): Json {
  if (!text) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

const matches = (m: Match, req: RequestInfo) =>
  (m.method === undefined || m.method === req.method) &&
  m.path.test(req.path) &&
  (m.userId === undefined || m.userId === req.userId) &&
  (m.deviceId === undefined || m.deviceId === req.deviceId);

/** Close codes a peer may send on (1005/1006/1015 are reserved for "none"). */
const sendableCode = (code: number) => (code === 1000 || (code >= 3000 && code <= 4999) || (code >= 1001 && code <= 1014 && ![1004, 1005, 1006].includes(code)) ? code : 1000);

/** Starts a malicious gateway on 127.0.0.1 in front of `upstreamUrl` (the real gateway). */
export async function startProxy(upstreamUrl: string): Promise<MaliciousGateway> {
  const upstream = new URL(upstreamUrl);
  const agent = new Agent({ keepAlive: true });
  const entries: Entry[] = [];
  const log: Exchange[] = [];
  const frames: { direction: Direction; frame: Json }[] = [];
  const sockets: LiveSocket[] = [];

  const add = (entry: Omit<Entry, 'rule'>, name: string, times = Infinity): Rule => {
    const rule: RuleImpl = new RuleImpl(name, times, () => {
      const i = entries.findIndex((e) => e.rule === rule);
      if (i >= 0) entries.splice(i, 1);
    });
    entries.push({ ...entry, rule });
    return rule;
  };
  const active = (kind: Entry['kind'], req: RequestInfo) => entries.filter((e) => e.kind === kind && !e.rule.spent && matches(e.match!, req));

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://proxy');
    const rawBytes = await readAll(req);
    const raw = rawBytes.toString('utf8');
    const info: RequestInfo = { method: req.method ?? 'GET', path: url.pathname, query: url.searchParams, body: parseJson(raw), ...callerOf(tokenOf(req)) };
    let forwarded: string | Buffer = rawBytes;
    for (const e of active('request', info)) {
      const body = await (e.handler as RequestHandler)(info);
      if (body === undefined) continue;
      e.rule.fired++;
      info.body = body;
      forwarded = JSON.stringify(body);
    }
    let reply: Reply | undefined;
    let headers: Record<string, string | string[]> = { 'content-type': 'application/json; charset=utf-8' };
    for (const e of active('reply', info)) {
      reply = await (e.handler as ReplyHandler)(info);
      if (reply === undefined) continue;
      e.rule.fired++;
      forwarded = '';
      break;
    }
    let clientBody: string | Buffer;
    if (!reply) {
      const answer = await new Promise<IncomingMessage>((resolve, reject) => {
        const out = httpRequest(
          {
            host: upstream.hostname,
            port: upstream.port,
            method: info.method,
            path: req.url,
            agent,
            headers: { ...hopByHopRemoved(req.headers), host: upstream.host, 'content-length': String(Buffer.byteLength(forwarded)) },
          },
          resolve,
        );
        out.on('error', reject);
        out.end(forwarded);
      });
      const bytes = await readAll(answer);
      headers = hopByHopRemoved(answer.headers);
      const current: Reply = { status: answer.statusCode ?? 502, body: parseJson(bytes.toString('utf8')), bytes };
      clientBody = bytes;
      for (const e of active('response', info)) {
        const change = await (e.handler as ResponseHandler)(current, info);
        if (change === undefined) continue;
        e.rule.fired++;
        if (change.status !== undefined) current.status = change.status;
        if ('body' in change) current.body = change.body;
        if (change.bytes) clientBody = current.bytes = change.bytes;
        else clientBody = current.body === undefined ? '' : JSON.stringify(current.body);
      }
      reply = current;
    } else {
      clientBody = reply.body === undefined ? '' : JSON.stringify(reply.body);
    }
    const text = (b: string | Buffer) => (typeof b === 'string' ? b : b.toString('utf8'));
    log.push({ method: info.method, path: info.path, query: url.search, userId: info.userId, deviceId: info.deviceId, forwardedBody: text(forwarded), status: reply.status, clientBody: text(clientBody) });
    res.writeHead(reply.status, { ...headers, 'content-length': String(Buffer.byteLength(clientBody)) });
    res.end(clientBody);
  }

  const wss = new WebSocketServer({ noServer: true, handleProtocols: (_offered, req) => (req as IncomingMessage & { upstreamProtocol?: string }).upstreamProtocol || false });

  /** Runs the frame rules of one direction; returns the frames to pass on. */
  async function applyFrameRules(direction: Direction, frame: Json, socket: LiveSocket): Promise<Json[]> {
    let out: Json[] = [frame];
    for (const e of entries.filter((x) => x.kind === 'frame' && x.direction === direction && !x.rule.spent)) {
      if (e.caller?.userId && e.caller.userId !== socket.userId) continue;
      if (e.caller?.deviceId && e.caller.deviceId !== socket.deviceId) continue;
      const next: Json[] = [];
      for (const f of out) {
        const r = await (e.handler as FrameHandler)(f, socket);
        if (r === undefined) {
          next.push(f);
          continue;
        }
        e.rule.fired++;
        if (r === null) continue;
        if (Array.isArray(r)) next.push(...r);
        else next.push(r);
      }
      out = next;
    }
    return out;
  }

  function upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const target = new URL(req.url ?? '/', upstreamUrl.replace(/^http/, 'ws'));
    const offered = String(req.headers['sec-websocket-protocol'] ?? '').split(',').map((p) => p.trim()).filter(Boolean);
    const up = new WebSocket(target, offered, { headers: req.headers.authorization ? { authorization: req.headers.authorization } : {} });
    const caller = callerOf(tokenOf(req));
    // Frames from the server may come before the client's socket is ready: one queue per direction keeps the order.
    let downQueue: Promise<unknown> = Promise.resolve();
    let upQueue: Promise<unknown> = Promise.resolve();
    let client: WebSocket | undefined;
    let ready: () => void;
    const clientReady = new Promise<void>((r) => (ready = r));
    const live: LiveSocket = {
      ...caller,
      sendDown: (frame) => {
        downQueue = downQueue.then(async () => {
          await clientReady;
          if (client?.readyState === WebSocket.OPEN) client.send(JSON.stringify(frame));
        });
      },
      close: () => {
        client?.terminate();
        up.terminate();
      },
    };
    const pipe = (direction: Direction, data: RawData, isBinary: boolean) => {
      const text = data.toString();
      const queue = direction === 'down' ? downQueue : upQueue;
      const next = queue.then(async () => {
        const frame = isBinary ? undefined : parseJson(text);
        const out = frame === undefined ? [text] : await applyFrameRules(direction, frame, live);
        if (direction === 'down') await clientReady;
        const target = direction === 'down' ? client : up;
        for (const f of out) {
          if (frame !== undefined) frames.push({ direction, frame: f });
          if (target?.readyState === WebSocket.OPEN) target.send(typeof f === 'string' ? f : JSON.stringify(f));
        }
      });
      if (direction === 'down') downQueue = next;
      else upQueue = next;
    };
    up.on('message', (data, isBinary) => pipe('down', data, isBinary));
    up.once('unexpected-response', async (_r, answer) => {
      const body = await readAll(answer);
      const lines = [`HTTP/1.1 ${answer.statusCode} ${answer.statusMessage}`];
      for (const [k, v] of Object.entries(answer.headers)) if (k !== 'connection' && k !== 'transfer-encoding' && k !== 'content-length') lines.push(`${k}: ${String(v)}`);
      lines.push(`content-length: ${body.length}`, 'connection: close', '', '');
      socket.end(Buffer.concat([Buffer.from(lines.join('\r\n')), body]));
    });
    up.once('error', () => socket.destroy());
    up.once('open', () => {
      (req as IncomingMessage & { upstreamProtocol?: string }).upstreamProtocol = up.protocol;
      wss.handleUpgrade(req, socket, head, (ws) => {
        client = ws;
        sockets.push(live);
        ready();
        ws.on('message', (data, isBinary) => pipe('up', data, isBinary));
        ws.once('close', (code, reason) => {
          sockets.splice(sockets.indexOf(live), 1);
          if (up.readyState === WebSocket.OPEN) up.close(sendableCode(code), reason);
          else up.terminate();
        });
        up.once('close', (code, reason) => {
          void downQueue.then(() => {
            if (ws.readyState === WebSocket.OPEN) ws.close(sendableCode(code), reason);
          });
        });
      });
    });
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) res.writeHead(502, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { code: 'proxy_error', message: String(err) } }));
    });
  });
  server.on('upgrade', upgrade);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    log,
    frames,
    sockets,
    onRequest: (name, match, handler) => add({ kind: 'request', match, handler }, name, match.times),
    reply: (name, match, handler) => add({ kind: 'reply', match, handler }, name, match.times),
    onResponse: (name, match, handler) => add({ kind: 'response', match, handler }, name, match.times),
    onFrame: (name, direction, handler, options = {}) => add({ kind: 'frame', direction, caller: options, handler }, name, options.times),
    reset: () => entries.splice(0, entries.length),
    close: async () => {
      for (const s of [...sockets]) s.close();
      wss.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      agent.destroy();
    },
  };
}
