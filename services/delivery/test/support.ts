// Test support: delivery nodes as child processes (node dist/main.js, so one
// can be SIGKILLed), an in-process identity stand-in serving GetJwks with a
// key the test signs tokens with, an in-process chat stand-in (ListChats,
// ListMessages, CatchUpMessages, GetChat) that publishes chat's events in the events.proto JSON
// shape to the test's CHAT stream, and a WebSocket client that records frames.
// Size: past 400 lines because these four stand-ins are shared by every
// delivery integration test and bench; each is short, together they are one kit.
import { generateKeyPairSync, randomUUID, type KeyObject } from 'node:crypto';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Server, ServerCredentials, type sendUnaryData, type ServerUnaryCall, type ServiceError } from '@grpc/grpc-js';
import { SignJWT, exportJWK } from 'jose';
import WebSocket from 'ws';
import { AppError, connectNats, ensureStream, eventSubject, newHeaders, toServiceError, type Nats } from '@bil/runtime';
import { loadChatProto, loadIdentityProto } from '@bil/proto';
import { freePort, spawnNode, type TestEnv } from '@bil/testkit';

export const deliveryMain = join(dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'main.js');
export const deliveryBuilt = existsSync(deliveryMain);

export { freePort };

// ---------------------------------------------------------------- tokens

export class TokenIssuer {
  private readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
  readonly kid = randomUUID();
  private server?: Server;
  address = '';

  constructor() {
    const kp = generateKeyPairSync('ed25519');
    this.privateKey = kp.privateKey;
    this.publicKey = kp.publicKey;
  }

  /** Serves identity's GetJwks on a free port. */
  async start(): Promise<string> {
    const jwk = { ...(await exportJWK(this.publicKey)), kid: this.kid, alg: 'EdDSA', use: 'sig' };
    const jwksJson = JSON.stringify({ keys: [jwk] });
    const server = new Server();
    server.addService(loadIdentityProto().bil.identity.v1.IdentityService.service, {
      getJwks: (_call: ServerUnaryCall<unknown, unknown>, cb: sendUnaryData<unknown>) => cb(null, { jwksJson }),
    });
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
    );
    this.server = server;
    this.address = `127.0.0.1:${port}`;
    return this.address;
  }

  async token(device: Device, opts: { ttlSeconds?: number; sessionId?: string } = {}): Promise<string> {
    const now = Math.floor(Date.now() / 1000);
    return new SignJWT({ did: device.deviceId, sid: opts.sessionId ?? device.sessionId })
      .setProtectedHeader({ alg: 'EdDSA', kid: this.kid, typ: 'JWT' })
      .setIssuer('bil-identity')
      .setAudience('bil-api')
      .setSubject(device.userId)
      .setIssuedAt(now)
      .setExpirationTime(now + (opts.ttlSeconds ?? 600))
      .setJti(randomUUID())
      .sign(this.privateKey);
  }

  stop(): void {
    this.server?.forceShutdown();
  }
}

export interface Device {
  userId: string;
  deviceId: string;
  sessionId: string;
}

export function newUser(devices = 1): Device[] {
  const userId = randomUUID();
  return Array.from({ length: devices }, () => ({ userId, deviceId: randomUUID(), sessionId: randomUUID() }));
}

// ---------------------------------------------------------------- chat stand-in

interface FakeMessage {
  seq: number;
  messageId: string;
  senderUserId: string;
  senderDeviceId: string;
  envelope: string;
  wrappedKeys: Record<string, string>;
  createdAt: string;
}

interface FakeChatRow {
  type: 'personal' | 'group';
  members: Map<string, number>;
  messages: FakeMessage[];
}

const notFound = () => new AppError('not_found', 'chat_not_found', 'no such chat');

/** What the chat service does for delivery, in memory, with its events published to JetStream. */
export class FakeChat {
  readonly chats = new Map<string, FakeChatRow>();
  private server?: Server;
  address = '';
  calls = { listMessages: 0, listChats: 0, getChat: 0, catchUpMessages: 0 };
  /** The next this many CatchUpMessages calls fail as unavailable (a chat outage). */
  failCatchUps = 0;

  constructor(private readonly nats: Nats) {}

  async start(): Promise<string> {
    await ensureStream(this.nats, 'chat');
    const server = new Server();
    const wrap =
      <Req>(fn: (req: Req) => unknown) =>
      (call: ServerUnaryCall<Req, unknown>, cb: sendUnaryData<unknown>) => {
        try {
          cb(null, fn(call.request));
        } catch (err) {
          cb(toServiceError(err) as ServiceError);
        }
      };
    type A = { actor: { userId: string; deviceId: string } };
    server.addService(loadChatProto().bil.chat.v1.ChatService.service, {
      listChats: wrap((req: A) => {
        this.calls.listChats++;
        const chats = [...this.chats.entries()]
          .filter(([, c]) => c.members.has(req.actor.userId))
          .map(([chatId, c]) => ({ chatId, type: c.type === 'group' ? 'CHAT_TYPE_GROUP' : 'CHAT_TYPE_PERSONAL', lastSeq: String(c.messages.length) }));
        return { chats, nextPageToken: '' };
      }),
      getChat: wrap((req: A & { chatId: string }) => {
        this.calls.getChat++;
        const c = this.chats.get(req.chatId);
        if (!c || !c.members.has(req.actor.userId)) throw notFound();
        return {
          chat: {
            chatId: req.chatId,
            type: c.type === 'group' ? 'CHAT_TYPE_GROUP' : 'CHAT_TYPE_PERSONAL',
            members: [...c.members].map(([userId, joinedSeq]) => ({ userId, joinedSeq: String(joinedSeq), role: 'MEMBER_ROLE_MEMBER' })),
          },
        };
      }),
      listMessages: wrap((req: A & { chatId: string; afterSeq?: string; limit: number }) => {
        this.calls.listMessages++;
        const c = this.chats.get(req.chatId);
        const joined = c?.members.get(req.actor.userId);
        if (!c || joined === undefined) throw notFound();
        const after = Math.max(Number(req.afterSeq ?? 0), joined);
        const limit = req.limit || 50;
        const page = c.messages.filter((m) => m.seq > after).slice(0, limit);
        return {
          messages: page.map((m) => ({
            chatId: req.chatId,
            seq: String(m.seq),
            messageId: m.messageId,
            senderUserId: m.senderUserId,
            senderDeviceId: m.senderDeviceId,
            envelope: m.envelope,
            wrappedKey: m.wrappedKeys[req.actor.deviceId] ?? '',
            epoch: '0',
            createdAt: m.createdAt,
          })),
          hasMore: c.messages.some((m) => m.seq > (page.at(-1)?.seq ?? after)),
          lastSeq: String(c.messages.length),
        };
      }),
      catchUpMessages: wrap((req: { chatId: string; devices: Array<{ userId: string; deviceId: string; afterSeq: string }>; limit: number }) => {
        this.calls.catchUpMessages++;
        if (this.failCatchUps > 0) {
          this.failCatchUps--;
          throw new AppError('unavailable', 'service_unavailable', 'chat is down');
        }
        const c = this.chats.get(req.chatId);
        if (!c) throw notFound();
        const outsiders = req.devices.filter((d) => !c.members.has(d.userId)).map((d) => d.deviceId);
        if (outsiders.length) throw new AppError('not_found', 'chat_not_found', 'no such chat', { device_ids: outsiders });
        const from = req.devices.map((d) => Math.max(Number(d.afterSeq), c.members.get(d.userId)!));
        const page = c.messages.filter((m) => m.seq > Math.min(...from)).slice(0, req.limit || 200);
        const hasMore = c.messages.length > (page.at(-1)?.seq ?? c.messages.length);
        return {
          messages: page.map((m) => ({
            message: { chatId: req.chatId, seq: String(m.seq), messageId: m.messageId, senderUserId: m.senderUserId, senderDeviceId: m.senderDeviceId, envelope: m.envelope, epoch: '0', createdAt: m.createdAt },
            recipients: req.devices.flatMap((d, deviceIndex) => (m.seq > from[deviceIndex]! ? [{ deviceIndex, wrappedKey: m.wrappedKeys[d.deviceId] ?? '' }] : [])),
          })),
          hasMore,
          throughSeq: String(hasMore ? page.at(-1)!.seq : c.messages.length),
          lastSeq: String(c.messages.length),
        };
      }),
    });
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
    );
    this.server = server;
    this.address = `127.0.0.1:${port}`;
    return this.address;
  }

  stop(): void {
    this.server?.forceShutdown();
  }

  private async publish(aggregate: string, event: string, payload: Record<string, unknown>): Promise<void> {
    const eventId = randomUUID();
    await this.nats.js.publish(eventSubject(this.nats.prefix, 'chat', aggregate, event), JSON.stringify(payload), {
      msgID: eventId,
      headers: newHeaders({ 'Bil-Event-Id': eventId, 'Bil-Event-Type': event }),
    });
  }

  async createChat(type: 'personal' | 'group', userIds: string[]): Promise<string> {
    const chatId = randomUUID();
    this.chats.set(chatId, { type, members: new Map(userIds.map((u) => [u, 0])), messages: [] });
    await this.publish('chat', 'Created', {
      chatId,
      type: type === 'group' ? 'CHAT_TYPE_GROUP' : 'CHAT_TYPE_PERSONAL',
      title: type === 'group' ? 'test group' : '',
      createdBy: userIds[0],
      members: userIds.map((userId) => ({ userId, role: 'MEMBER_ROLE_MEMBER' })),
      epoch: type === 'group' ? '1' : '0',
      occurredAt: new Date().toISOString(),
    });
    return chatId;
  }

  /** Stores a message and publishes MessagePosted (optionally without publishing: a "lost" event). */
  async post(chatId: string, sender: Device, opts: { wrappedKeys?: Record<string, string>; body?: string; publish?: boolean } = {}): Promise<number> {
    const c = this.chats.get(chatId);
    if (!c) throw new Error('no chat');
    const seq = c.messages.length + 1;
    const m: FakeMessage = {
      seq,
      messageId: randomUUID(),
      senderUserId: sender.userId,
      senderDeviceId: sender.deviceId,
      envelope: JSON.stringify({ header: { n: seq }, ciphertext: opts.body ?? `ct-${seq}` }),
      wrappedKeys: opts.wrappedKeys ?? {},
      createdAt: new Date().toISOString(),
    };
    c.messages.push(m);
    if (opts.publish !== false) {
      await this.publish('message', 'Posted', {
        chatId,
        chatType: c.type === 'group' ? 'CHAT_TYPE_GROUP' : 'CHAT_TYPE_PERSONAL',
        seq: String(seq),
        messageId: m.messageId,
        senderUserId: m.senderUserId,
        senderDeviceId: m.senderDeviceId,
        epoch: '0',
        envelope: m.envelope,
        wrappedKeys: Object.entries(m.wrappedKeys).map(([deviceId, wrappedKey]) => ({ deviceId, wrappedKey })),
        occurredAt: m.createdAt,
      });
    }
    return seq;
  }

  async removeMember(chatId: string, userId: string): Promise<void> {
    const c = this.chats.get(chatId)!;
    c.members.delete(userId);
    await this.publish('chat', 'MemberRemoved', {
      chatId,
      userId,
      removedBy: userId,
      reason: 'MEMBER_REMOVAL_REASON_REMOVED',
      leftSeq: String(c.messages.length),
      occurredAt: new Date().toISOString(),
    });
  }

  async markRead(chatId: string, userId: string, seq: number): Promise<void> {
    await this.publish('message', 'Read', { chatId, userId, lastReadSeq: String(seq), occurredAt: new Date().toISOString() });
  }
}

export async function testNats(env: TestEnv): Promise<Nats> {
  return connectNats(env.natsUrl, env.natsPrefix, 'delivery-test');
}

// ---------------------------------------------------------------- nodes

export interface DeliveryNode {
  id: string;
  /** The node's process id (the benchmark reads its memory). */
  pid: number;
  port: number;
  url: string;
  /** The node's Prometheus text (GET /metrics). */
  metrics(): Promise<string>;
  output(): string;
  kill(): void;
  stop(): Promise<void>;
}

export async function startNode(
  env: TestEnv,
  id: string,
  backends: { identity: string; chat: string },
  extra: Record<string, string> = {},
  nodeArgs: string[] = [],
): Promise<DeliveryNode> {
  const port = await freePort();
  const metricsPort = await freePort();
  const p = await spawnNode(`node ${id}`, deliveryMain, {
    env: {
      ...env.serviceEnv,
      LOG_LEVEL: 'info',
      DELIVERY_NODE_ID: id,
      DELIVERY_HOST: '127.0.0.1',
      DELIVERY_WS_PORT: String(port),
      DELIVERY_METRICS_PORT: String(metricsPort),
      IDENTITY_GRPC_URL: backends.identity,
      CHAT_GRPC_URL: backends.chat,
      DELIVERY_HEARTBEAT_MS: '1000',
      DELIVERY_PRESENCE_TTL_SECONDS: '5',
      DELIVERY_REVOCATION_CHECK_MS: '300',
      DELIVERY_FANOUT_ACK_WAIT_MS: '2000',
      DELIVERY_REORDER_WAIT_MS: '100',
      DELIVERY_MAX_BUFFERED_BYTES: String(256 * 1024),
      ...extra,
    },
    ready: 'delivery listening',
    timeoutMs: 20_000,
    nodeArgs,
    killAfterMs: 5000,
  });
  const child = p.child;
  return {
    id,
    pid: child.pid ?? 0,
    port,
    url: `ws://127.0.0.1:${port}/v1/ws`,
    metrics: async () => (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text(),
    output: p.output,
    kill: () => child.kill('SIGKILL'),
    stop: p.stop,
  };
}

// ---------------------------------------------------------------- client

export type Frame = Record<string, unknown> & { type: string };

export class TestClient {
  readonly frames: Frame[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  private waiters: Array<() => void> = [];

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data) => {
      this.frames.push(JSON.parse(String(data)) as Frame);
      for (const w of this.waiters) w();
    });
    this.closed = new Promise((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
    void this.closed.then(() => this.waiters.forEach((w) => w()));
  }

  /** Opens a socket with a bearer token and waits for `hello`. */
  static async connect(url: string, token: string, opts: { sync?: Record<string, number> | false; subprotocol?: boolean } = {}): Promise<TestClient> {
    const ws = opts.subprotocol
      ? new WebSocket(url, ['bil.v1', `bil.token.${token}`])
      : new WebSocket(url, { headers: { authorization: `Bearer ${token}` } });
    const client = new TestClient(ws);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
      ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
    });
    await client.waitFor((f) => f.type === 'hello');
    if (opts.sync !== false) client.send({ type: 'sync', cursors: opts.sync ?? {} });
    return client;
  }

  send(frame: unknown): void {
    this.ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame));
  }

  async waitFor(pred: (f: Frame) => boolean, timeoutMs = 10_000): Promise<Frame> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const hit = this.frames.find(pred);
      if (hit) return hit;
      if (Date.now() > end) throw new Error(`frame not received in time; got ${JSON.stringify(this.frames.slice(-5)).slice(0, 600)}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 50);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
      this.waiters = [];
    }
  }

  /** The seqs of `message` frames of a chat, in arrival order. */
  seqs(chatId: string): number[] {
    return this.frames.filter((f) => f.type === 'message' && f.chat_id === chatId).map((f) => f.seq as number);
  }

  async waitSeqs(chatId: string, n: number, timeoutMs = 15_000): Promise<number[]> {
    await this.waitFor(() => this.seqs(chatId).length >= n, timeoutMs).catch(() => undefined);
    return this.seqs(chatId);
  }

  close(): void {
    this.ws.close();
  }
}

/** The HTTP status of a refused upgrade (or 101 if it opened). */
export function upgradeStatus(url: string, headers: Record<string, string> = {}, protocols?: string[]): Promise<{ status: number; body: string }> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, protocols ?? [], { headers });
    ws.once('open', () => {
      ws.close();
      resolve({ status: 101, body: '' });
    });
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    ws.once('error', () => undefined);
  });
}

export const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

/**
 * A client that completes the handshake, sends `sync`, and then never reads
 * again (a raw TCP socket, so no library resumes reading behind the test's back).
 */
export async function stalledClient(url: string, token: string): Promise<{ closed: Promise<void>; resume(): void; destroy(): void }> {
  const { connect } = await import('node:net');
  const u = new URL(url);
  const socket = connect({ host: u.hostname, port: Number(u.port) });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  socket.write(
    `GET ${u.pathname} HTTP/1.1\r\nHost: ${u.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      `Sec-WebSocket-Key: ${Buffer.from(randomUUID().slice(0, 16)).toString('base64')}\r\n` +
      `Sec-WebSocket-Version: 13\r\nAuthorization: Bearer ${token}\r\n\r\n`,
  );
  await new Promise<void>((resolve) => {
    let got = '';
    const onData = (d: Buffer) => {
      got += d.toString('latin1');
      if (got.includes('"type":"hello"')) {
        socket.off('data', onData);
        socket.pause();
        resolve();
      }
    };
    socket.on('data', onData);
  });
  const payload = Buffer.from(JSON.stringify({ type: 'sync', cursors: {} }));
  const mask = Buffer.from([1, 2, 3, 4]);
  const masked = Buffer.from(payload.map((b, i) => b ^ mask[i % 4]!));
  socket.write(Buffer.concat([Buffer.from([0x81, 0x80 | payload.length]), mask, masked]));
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  socket.on('error', () => undefined);
  return {
    closed,
    resume: () => {
      socket.on('data', () => undefined);
      socket.resume();
    },
    destroy: () => socket.destroy(),
  };
}
