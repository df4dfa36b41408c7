// Clients of both systems: accounts made with the project SDK (real device
// keys, real ~3 KB envelopes), a keep-alive HTTP poster, and WebSocket
// receivers that note when each message id arrives.
//
// Envelopes: the SDK sends the first message of each chat for real; its
// request body is kept as the chat's template. Every later send reuses that
// envelope with a fresh message id (UUIDv7) and counter: the server checks an
// envelope's structure and binding, never its contents, so each send costs
// the servers what an SDK send costs them while the generator does no crypto.
import { uuidv7 } from '@bil/testkit';
import { randomBytes } from 'node:crypto';
import { Agent, request } from 'node:http';
import { BilClient, MemoryKeyStore } from '@bil/sdk';
import WebSocket from 'ws';

export interface User {
  client: BilClient;
  store: MemoryKeyStore;
  userId: string;
  username: string;
  deviceId: string;
  token: string;
  /** The body of this client's last POST …/messages (the SDK's own request). */
  lastSend?: string;
  /** chat id → highest seq this device's sockets saw, per system (the cursors of a reconnect). */
  cursors: { project: Map<string, number>; raw: Map<string, number> };
}

export const PASSWORD = 'bench password 1234';

/**
 * RSA-3072 device key generation costs 1–4 s of CPU here (WebCrypto), so
 * hundreds of SDK devices would take longer than the benchmark: after the
 * first `size` pairs, the bench's devices reuse those (each keeps its own
 * Ed25519 signing key; wrapped keys are still real RSA-OAEP per device).
 * Only this process is patched; nothing on the servers changes.
 */
export function installRsaKeyPool(size = 4): void {
  const subtle = globalThis.crypto.subtle;
  const real = subtle.generateKey.bind(subtle);
  const made: Promise<CryptoKeyPair>[] = [];
  let n = 0;
  const patched = ((algorithm: AlgorithmIdentifier, extractable: boolean, usages: KeyUsage[]) => {
    if ((algorithm as { name?: string }).name !== 'RSA-OAEP') return real(algorithm as never, extractable, usages);
    const i = n++ % size;
    made[i] ??= real(algorithm as RsaHashedKeyGenParams, extractable, usages) as Promise<CryptoKeyPair>;
    return made[i];
  }) as SubtleCrypto['generateKey'];
  Object.defineProperty(subtle, 'generateKey', { value: patched, configurable: true, writable: true });
}
export { uuidv7 };
export const runTag = randomBytes(3).toString('hex');
let userCount = 0;

/** Runs `fn` over `items` with at most `limit` at once. */
export async function pool<T, R>(items: readonly T[], limit: number, fn: (item: T, i: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i]!, i);
      }
    }),
  );
  return out;
}

export async function makeUser(baseUrl: string): Promise<User> {
  const store = new MemoryKeyStore();
  const user: Partial<User> = { store, cursors: { project: new Map(), raw: new Map() } };
  const capture: typeof fetch = async (input, init) => {
    if (init?.method === 'POST' && String(input).endsWith('/messages') && typeof init.body === 'string') user.lastSend = init.body;
    return fetch(input, init);
  };
  const client = new BilClient({ baseUrl, keyStore: store, fetch: capture, timeoutMs: 120_000 });
  const username = `b${runTag}u${userCount++}`;
  const account = await client.register({ username, password: PASSWORD });
  const profile = await store.load();
  Object.assign(user, { client, username, userId: account.userId, deviceId: account.deviceId, token: profile!.tokens!.accessToken });
  return user as User;
}

/**
 * `n` accounts, 4 registrations in flight: identity hashes 2 passwords at
 * once, and 12 in flight on a loaded 2-core machine made registrations wait
 * past the gateway's deadline (500 internal error, the run lost).
 */
export function makeUsers(baseUrl: string, n: number): Promise<User[]> {
  return pool(Array.from({ length: n }), 4, () => makeUser(baseUrl));
}


/** A chat one sender sends to in a measurement. */
export interface Target {
  chatId: string;
  sender: User;
  /** The SDK's request body of the chat's first message. */
  template: { message_id: string; envelope: { header: Record<string, unknown> }; wrapped_keys?: unknown[] };
  counter: number;
}

/** The chat's first message sent by the SDK, kept as the template of every later send. */
export async function templateFor(chatId: string, sender: User, text: string): Promise<Target> {
  await sender.client.messages.send(chatId, text);
  const template = JSON.parse(sender.lastSend!) as Target['template'];
  return { chatId, sender, template, counter: Number(template.envelope.header.counter) };
}

/** A fresh send of the template: new message id, next counter, now. */
export function nextBody(t: Target): { messageId: string; body: string } {
  const messageId = uuidv7();
  const header = { ...t.template.envelope.header, message_id: messageId, counter: ++t.counter, timestamp: Date.now() };
  return { messageId, body: JSON.stringify({ ...t.template, message_id: messageId, envelope: { ...t.template.envelope, header } }) };
}

const agent = new Agent({ keepAlive: true, maxSockets: 1024 });

/** POSTs `body` to `url` with the bearer token; resolves with the status (0: no answer). */
export function post(url: string, token: string, body: string): Promise<number> {
  return new Promise((resolve) => {
    const req = request(url, { method: 'POST', agent, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.setTimeout(30_000, () => req.destroy());
    req.on('error', () => resolve(0));
    req.end(body);
  });
}

/** POSTs JSON without a token (register/login); resolves with the status. */
export function postJson(url: string, body: unknown): Promise<number> {
  const text = JSON.stringify(body);
  return new Promise((resolve) => {
    const req = request(url, { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', () => resolve(0));
    req.end(text);
  });
}

const MID = Buffer.from('"message_id":"');

/** The top-level message_id of a `message` frame, found without parsing the frame (cheap at 40k frames/s). */
export function frameMessageId(data: Buffer): string | undefined {
  const i = data.indexOf(MID);
  return i < 0 ? undefined : data.toString('latin1', i + MID.length, i + MID.length + 36);
}

const CHAT = Buffer.from('"chat_id":"');
const SEQ = Buffer.from('"seq":');

/** Notes the frame's chat and seq in `cursors` (top-level fields: the envelope inside is an escaped string). */
function noteCursor(data: Buffer, cursors: Map<string, number>): void {
  const c = data.indexOf(CHAT);
  const q = data.indexOf(SEQ);
  if (c < 0 || q < 0) return;
  const chat = data.toString('latin1', c + CHAT.length, c + CHAT.length + 36);
  let seq = 0;
  for (let i = q + SEQ.length; i < data.length && data[i]! >= 48 && data[i]! <= 57; i++) seq = seq * 10 + data[i]! - 48;
  if (seq > (cursors.get(chat) ?? 0)) cursors.set(chat, seq);
}

export interface SocketOptions {
  /** Called with each message id as it arrives (after the socket is live). */
  onMessage?: (messageId: string) => void;
  /** Kept up to date with the highest seq per chat; sent as the `sync` cursors. */
  cursors?: Map<string, number>;
  /** Called on every message frame, also during catch-up. */
  onFrame?: () => void;
}

/**
 * Opens an authenticated socket; resolves once it is live (project: `synced`
 * after `sync`; raw: `synced` after `sync` too).
 */
export function openSocket(url: string, token: string, o: SocketOptions = {}): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers: { authorization: `Bearer ${token}` }, perMessageDeflate: false });
    const timer = setTimeout(() => (ws.terminate(), reject(new Error(`socket to ${url} not live within 120 s`))), 120_000);
    let live = false;
    ws.on('message', (data: Buffer) => {
      const id = frameMessageId(data);
      if (id) {
        if (o.cursors) noteCursor(data, o.cursors);
        o.onFrame?.();
        if (live) o.onMessage?.(id);
        return;
      }
      if (live) return;
      const s = data.toString();
      if (s.includes('"type":"hello"')) ws.send(JSON.stringify({ type: 'sync', ...(o.cursors?.size ? { cursors: Object.fromEntries(o.cursors) } : {}) }));
      else if (s.includes('"type":"synced"')) {
        live = true;
        clearTimeout(timer);
        resolve(ws);
      }
    });
    ws.on('close', (code) => !live && (clearTimeout(timer), reject(new Error(`socket closed before synced (${code})`))));
    ws.on('error', (err) => (clearTimeout(timer), reject(err)));
  });
}
