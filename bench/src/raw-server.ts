// The raw server: node:http + pg + ws doing the same work as the project's
// send path with nothing else, the yardstick of every ratio. Its own process
// (spawned by stack.ts), its own database on the same PostgreSQL.
//
//   POST /v1/chats/:id/messages  verify the Ed25519 access token (node:crypto,
//        the same JWT identity issues: EdDSA, iss, aud, exp, sub/did/sid), then
//        in ONE transaction: bump the chat's seq (member check), insert the
//        message and one wrapped-key row per device; COMMIT (fsync), answer,
//        push the frame to the other devices' sockets (encoded once per
//        device for personal chats, once per message for groups).
//   POST /raw/broadcast/:id      no database: push the frame to the chat's sockets.
//   POST /raw/register, /raw/login  scrypt with identity's parameters + one row.
//   POST /raw/setup              the chats/devices of a measurement (members, devices).
//   GET  /v1/ws                  WebSocket, token checked at the upgrade (Authorization: Bearer).
import { createPublicKey, randomBytes, randomUUID, scrypt, timingSafeEqual, verify, type KeyObject } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import pg from 'pg';
import { WebSocketServer, type WebSocket } from 'ws';

const port = Number(process.env.RAW_PORT);
const publicKey: KeyObject = createPublicKey(process.env.RAW_JWT_PUBLIC_KEY!);
// idleTimeoutMillis 0: connections stay open between steps. pg's default (10 s) closed them while the project's
// step ran (the project's pools keep theirs 30 s), so every raw step began with reconnects: its first 5-20
// sends took 50-150 ms on a slow machine (enough, once, to make raw's p99 at 100/s 77 ms).
const pool = new pg.Pool({ connectionString: process.env.RAW_DATABASE_URL, max: Number(process.env.RAW_POOL ?? 20), idleTimeoutMillis: 0 });
const SCRYPT = { N: 2 ** Number(process.env.RAW_SCRYPT_LOG2N ?? 15), r: 8, p: 1 };

await pool.query(`
  CREATE TABLE IF NOT EXISTS raw_chats (chat_id uuid PRIMARY KEY, members uuid[] NOT NULL, last_seq bigint NOT NULL DEFAULT 0);
  CREATE TABLE IF NOT EXISTS raw_messages (chat_id uuid NOT NULL, seq bigint NOT NULL, message_id uuid NOT NULL, sender_device_id uuid NOT NULL,
    envelope text NOT NULL, created_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (chat_id, seq), UNIQUE (chat_id, message_id));
  CREATE TABLE IF NOT EXISTS raw_keys (chat_id uuid NOT NULL, seq bigint NOT NULL, device_id uuid NOT NULL, wrapped_key text NOT NULL,
    PRIMARY KEY (chat_id, seq, device_id));
  CREATE TABLE IF NOT EXISTS raw_users (username text PRIMARY KEY, user_id uuid NOT NULL, hash text NOT NULL);
`);

interface Actor {
  userId: string;
  deviceId: string;
}

const b64 = (s: string) => Buffer.from(s, 'base64url');

/** The gateway's checks with node:crypto and a cached key: signature, alg, iss, aud, exp, ids. */
function verifyToken(header: string | undefined): Actor | undefined {
  if (!header?.startsWith('Bearer ')) return undefined;
  const token = header.slice(7);
  const parts = token.split('.');
  if (parts.length !== 3) return undefined;
  try {
    const head = JSON.parse(b64(parts[0]!).toString()) as { alg?: string };
    if (head.alg !== 'EdDSA') return undefined;
    if (!verify(null, Buffer.from(`${parts[0]}.${parts[1]}`), publicKey, b64(parts[2]!))) return undefined;
    const c = JSON.parse(b64(parts[1]!).toString()) as { iss?: string; aud?: string; exp?: number; sub?: string; did?: string; sid?: string };
    if (c.iss !== 'bil-identity' || c.aud !== 'bil-api' || !c.exp || c.exp * 1000 < Date.now() || !c.sub || !c.did || !c.sid) return undefined;
    return { userId: c.sub, deviceId: c.did };
  } catch {
    return undefined;
  }
}

const sockets = new Map<string, Set<WebSocket>>(); // device id → sockets
const chatDevices = new Map<string, string[]>(); // chat id → every member device

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString()));
    req.on('error', reject);
  });
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function push(deviceId: string, frame: string): void {
  for (const ws of sockets.get(deviceId) ?? []) ws.send(frame);
}

interface SendBody {
  message_id: string;
  envelope: unknown;
  wrapped_keys?: { device_id: string; wrapped_key: string }[];
}

async function postMessage(actor: Actor, chatId: string, body: SendBody, res: ServerResponse): Promise<void> {
  const envelope = JSON.stringify(body.envelope);
  const keys = body.wrapped_keys ?? [];
  const client = await pool.connect();
  let seq: number;
  let createdAt: string;
  try {
    await client.query('BEGIN');
    const chat = await client.query<{ last_seq: string }>({
      name: 'bump',
      text: 'UPDATE raw_chats SET last_seq = last_seq + 1 WHERE chat_id = $1 AND $2 = ANY(members) RETURNING last_seq',
      values: [chatId, actor.userId],
    });
    if (!chat.rowCount) {
      await client.query('ROLLBACK');
      return send(res, 404, { error: { code: 'chat_not_found' } });
    }
    seq = Number(chat.rows[0]!.last_seq);
    const m = await client.query<{ created_at: Date }>({
      name: 'insert_message',
      text: 'INSERT INTO raw_messages (chat_id, seq, message_id, sender_device_id, envelope) VALUES ($1, $2, $3, $4, $5) RETURNING created_at',
      values: [chatId, seq, body.message_id, actor.deviceId, envelope],
    });
    createdAt = m.rows[0]!.created_at.toISOString();
    if (keys.length) {
      const values: unknown[] = [chatId, seq];
      const rows = keys.map((k, i) => {
        values.push(k.device_id, k.wrapped_key);
        return `($1, $2, $${3 + 2 * i}, $${4 + 2 * i})`;
      });
      await client.query(`INSERT INTO raw_keys (chat_id, seq, device_id, wrapped_key) VALUES ${rows.join(', ')}`, values);
    }
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    client.release();
  }
  send(res, 201, { seq, created_at: createdAt, duplicate: false });
  const base = { type: 'message', chat_id: chatId, seq, message_id: body.message_id, sender_user_id: actor.userId, sender_device_id: actor.deviceId, envelope, created_at: createdAt };
  if (keys.length) {
    for (const k of keys) if (k.device_id !== actor.deviceId) push(k.device_id, JSON.stringify({ ...base, wrapped_key: k.wrapped_key }));
  } else {
    const frame = JSON.stringify({ ...base, epoch: 0 });
    for (const d of chatDevices.get(chatId) ?? []) if (d !== actor.deviceId) push(d, frame);
  }
}

function broadcast(actor: Actor, chatId: string, body: SendBody, res: ServerResponse): void {
  const frame = JSON.stringify({ type: 'message', chat_id: chatId, seq: 0, message_id: body.message_id, sender_user_id: actor.userId, envelope: JSON.stringify(body.envelope) });
  send(res, 201, { seq: 0 });
  for (const d of chatDevices.get(chatId) ?? []) if (d !== actor.deviceId) push(d, frame);
}

const derive = (password: string, salt: Buffer) =>
  new Promise<Buffer>((resolve, reject) => scrypt(password, salt, 32, { ...SCRYPT, maxmem: 256 * SCRYPT.N * 8 }, (e, k) => (e ? reject(e) : resolve(k))));

async function register(body: { username: string; password: string }, res: ServerResponse): Promise<void> {
  const salt = randomBytes(16);
  const hash = await derive(body.password, salt);
  const userId = randomUUID();
  await pool.query('INSERT INTO raw_users (username, user_id, hash) VALUES ($1, $2, $3)', [body.username, userId, `${salt.toString('base64url')}$${hash.toString('base64url')}`]);
  send(res, 201, { user_id: userId });
}

async function login(body: { username: string; password: string }, res: ServerResponse): Promise<void> {
  const r = await pool.query<{ user_id: string; hash: string }>('SELECT user_id, hash FROM raw_users WHERE username = $1', [body.username]);
  const row = r.rows[0];
  if (!row) return send(res, 401, { error: { code: 'invalid_credentials' } });
  const [salt, hash] = row.hash.split('$') as [string, string];
  const got = await derive(body.password, b64(salt));
  if (!timingSafeEqual(got, b64(hash))) return send(res, 401, { error: { code: 'invalid_credentials' } });
  send(res, 200, { user_id: row.user_id });
}

async function setup(body: { chats: { chat_id: string; members: string[]; devices: string[] }[] }, res: ServerResponse): Promise<void> {
  for (const c of body.chats) {
    chatDevices.set(c.chat_id, c.devices);
    await pool.query('INSERT INTO raw_chats (chat_id, members) VALUES ($1, $2) ON CONFLICT (chat_id) DO UPDATE SET members = EXCLUDED.members', [c.chat_id, c.members]);
  }
  send(res, 200, { chats: body.chats.length });
}

/**
 * The raw catch-up: per chat of the user, the messages after the cursor (0 for
 * a chat the client did not list, as delivery starts a chat without a cursor
 * or stored ack) with this device's key, then `synced`.
 */
async function catchUp(ws: WebSocket, actor: Actor, listed: Record<string, number>): Promise<void> {
  const out: Record<string, number> = {};
  const cursors = { ...listed };
  const mine = await pool.query<{ chat_id: string }>({ name: 'my_chats', text: 'SELECT chat_id FROM raw_chats WHERE $1 = ANY(members)', values: [actor.userId] });
  for (const { chat_id } of mine.rows) cursors[chat_id] ??= 0;
  for (const [chatId, after] of Object.entries(cursors)) {
    const r = await pool.query<{ seq: string; message_id: string; sender_device_id: string; envelope: string; created_at: Date; wrapped_key: string | null }>({
      name: 'catch_up',
      text: `SELECT m.seq, m.message_id, m.sender_device_id, m.envelope, m.created_at, k.wrapped_key FROM raw_messages m
             JOIN raw_chats c ON c.chat_id = m.chat_id AND $3 = ANY(c.members)
             LEFT JOIN raw_keys k ON k.chat_id = m.chat_id AND k.seq = m.seq AND k.device_id = $4
             WHERE m.chat_id = $1 AND m.seq > $2 ORDER BY m.seq LIMIT 1000`,
      values: [chatId, after, actor.userId, actor.deviceId],
    });
    for (const m of r.rows) {
      ws.send(JSON.stringify({ type: 'message', chat_id: chatId, seq: Number(m.seq), message_id: m.message_id, sender_device_id: m.sender_device_id, envelope: m.envelope, created_at: m.created_at.toISOString(), wrapped_key: m.wrapped_key }));
    }
    out[chatId] = r.rows.length ? Number(r.rows.at(-1)!.seq) : after;
  }
  ws.send(JSON.stringify({ type: 'synced', cursors: out }));
}

const server = createServer((req, res) => {
  const url = req.url ?? '/';
  readBody(req)
    .then(async (text) => {
      const body = text ? JSON.parse(text) : {};
      if (url === '/raw/register') return register(body, res);
      if (url === '/raw/login') return login(body, res);
      if (url === '/raw/setup') return setup(body, res);
      if (url === '/raw/truncate') {
        await pool.query('TRUNCATE raw_messages, raw_keys; UPDATE raw_chats SET last_seq = 0');
        return send(res, 200, {});
      }
      const actor = verifyToken(req.headers.authorization);
      if (!actor) return send(res, 401, { error: { code: 'invalid_token' } });
      const m = /^\/v1\/chats\/([0-9a-f-]{36})\/messages$/.exec(url);
      if (m && req.method === 'POST') return postMessage(actor, m[1]!, body, res);
      const b = /^\/raw\/broadcast\/([0-9a-f-]{36})$/.exec(url);
      if (b) return broadcast(actor, b[1]!, body, res);
      send(res, 404, { error: { code: 'not_found' } });
    })
    .catch((err: Error) => {
      if (!res.headersSent) send(res, 500, { error: { code: 'internal', message: err.message } });
    });
});
server.keepAliveTimeout = 60_000;

const wss = new WebSocketServer({ noServer: true });
server.on('upgrade', (req, socket, head) => {
  const actor = req.url === '/v1/ws' ? verifyToken(req.headers.authorization) : undefined;
  if (!actor) {
    socket.end('HTTP/1.1 401 Unauthorized\r\ncontent-length: 0\r\n\r\n');
    return;
  }
  wss.handleUpgrade(req, socket, head, (ws) => {
    let set = sockets.get(actor.deviceId);
    if (!set) sockets.set(actor.deviceId, (set = new Set()));
    set.add(ws);
    ws.on('close', () => set.delete(ws));
    ws.on('message', (data: Buffer) => {
      const frame = JSON.parse(data.toString()) as { type?: string; cursors?: Record<string, number> };
      if (frame.type === 'sync') void catchUp(ws, actor, frame.cursors ?? {});
    });
    ws.send(JSON.stringify({ type: 'hello', protocol: 1, user_id: actor.userId, device_id: actor.deviceId }));
    // (no pending frames: a raw client syncs right after hello)
  });
});
server.listen(port, '127.0.0.1', () => process.stdout.write(`raw server ready on ${port}\n`));
process.on('SIGTERM', () => {
  server.close();
  void pool.end().finally(() => process.exit(0));
});
