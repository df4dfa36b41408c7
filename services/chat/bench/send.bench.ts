/* eslint-disable no-console -- a benchmark prints its table */
// Benchmark of the send path: persisted sends per second and p50/p99 latency
// through ChatApp.sendMessage (validation, seq under the chat row lock, the
// decider, the event append with the message log's state row, the set-based
// projection, commit), for a 1:1 chat with 5 wrapped keys and for a
// 1,000-member group (one envelope, no per-message keys), beside raw `pg`
// transactions writing the same rows (counter, event, message, keys) in the
// same run. The hot-chat scenarios send into ONE chat, the worst case: its
// senders serialise on that chat's row; "1:1 across N chats" spreads the
// same load over BENCH_CHATS personal chats. Per scenario it prints the
// statements (counted at the pg driver), commits, tuples returned and
// buffers hit per send (pg_stat_database of the bench's own database).
// Prints figures; asserts nothing.
//   npm run bench -w @bil/chat      (BENCH_SENDS, BENCH_CONCURRENCY, BENCH_CHATS, BENCH_GROUP_MEMBERS, BENCH_CIPHERTEXT_BYTES)
import { randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import pg from 'pg';
import { createTestEnv } from '@bil/testkit';
import { Database, EventStore, createLogger } from '@bil/runtime';
import { migrations } from '../src/infra/migrations/index.js';
import { chatReadModels } from '../src/app/projections/read-models.js';
import { ChatApp, type Actor } from '../src/app/chat-app.js';
import { b64, envelope, epochRecord, newDevice, uuidv7, type TestDevice, type TestUser } from '../src/test-support.js';

const SENDS = Number(process.env.BENCH_SENDS ?? 2000);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 8);
const GROUP_MEMBERS = Number(process.env.BENCH_GROUP_MEMBERS ?? 1000);
const CIPHERTEXT = Number(process.env.BENCH_CIPHERTEXT_BYTES ?? 1024);
const CHATS = Number(process.env.BENCH_CHATS ?? 50);

// Statements sent, counted on every copy of the pg driver in use (knex's and ours).
let statements = 0;
for (const mod of new Set([pg, createRequire(createRequire(import.meta.url).resolve('@mikro-orm/postgresql'))('pg') as typeof pg])) {
  const query = mod.Client.prototype.query as (...args: unknown[]) => unknown;
  mod.Client.prototype.query = function (this: unknown, ...args: unknown[]) {
    statements++;
    return query.apply(this, args);
  } as typeof mod.Client.prototype.query;
}

const env = await createTestEnv('chatbench');
const db = await Database.connect({ url: env.databaseUrl, schema: 'chat', migrations, poolMax: CONCURRENCY + 2 });
await db.migrate();
const store = new EventStore(db, [chatReadModels]);
const app = new ChatApp(db, store, { maxGroupMembers: 1024 }, createLogger('bench', 'silent'));
const raw = new pg.Pool({ connectionString: env.databaseUrl, max: CONCURRENCY + 2 });

function user(devices: number): TestUser {
  const userId = randomUUID();
  return { userId, identityKey: b64(32), devices: Array.from({ length: devices }, () => newDevice(userId)) };
}
const actor = (d: TestDevice): Actor => ({ userId: d.userId, deviceId: d.deviceId, sessionId: randomUUID() });

/** The directory as the identity consumer would fill it, written directly (setup only). */
async function seedDirectory(users: TestUser[]): Promise<void> {
  const devices = users.flatMap((u) => u.devices.map((d) => ({ device_id: d.deviceId, user_id: u.userId, signing_key: d.signingKey })));
  await db.query(`INSERT INTO chat.directory_users (user_id, status) SELECT x.user_id, 'active' FROM jsonb_to_recordset(?::jsonb) AS x(user_id uuid)`, [
    JSON.stringify(users.map((u) => ({ user_id: u.userId }))),
  ]);
  await db.query(
    `INSERT INTO chat.directory_devices (device_id, user_id, signing_key, status, registered_at)
     SELECT x.device_id, x.user_id, x.signing_key, 'active', now() FROM jsonb_to_recordset(?::jsonb) AS x(device_id uuid, user_id uuid, signing_key text)`,
    [JSON.stringify(devices)],
  );
}

interface Result {
  name: string;
  sends: number;
  seconds: number;
  latencies: number[];
  statements: number;
  commits: number;
  tuples: number;
  hits: number;
}

interface DbStats {
  commits: number;
  tuples: number;
  hits: number;
}

async function dbStats(): Promise<DbStats> {
  // Backends flush their counters at most once a second.
  await new Promise((r) => setTimeout(r, 1200));
  const { rows } = await raw.query<{ c: string; t: string; h: string }>(
    `SELECT pg_stat_clear_snapshot(), xact_commit AS c, tup_returned AS t, blks_hit AS h FROM pg_stat_database WHERE datname = current_database()`,
  );
  return { commits: Number(rows[0]!.c), tuples: Number(rows[0]!.t), hits: Number(rows[0]!.h) };
}

async function run(name: string, send: (i: number) => Promise<unknown>): Promise<Result> {
  const latencies: number[] = [];
  let next = 0;
  const before = await dbStats();
  const statementsBefore = statements;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < SENDS) {
        const i = next++;
        const t0 = performance.now();
        await send(i);
        latencies.push(performance.now() - t0);
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  const sent = statements - statementsBefore;
  const after = await dbStats();
  return {
    name,
    sends: SENDS,
    seconds,
    latencies: latencies.sort((a, b) => a - b),
    statements: sent,
    // The two pg_stat_database reads are commits of their own.
    commits: after.commits - before.commits - 1,
    tuples: after.tuples - before.tuples,
    hits: after.hits - before.hits,
  };
}

/** The same rows a send persists, with plain `pg`: counter, event, message, keys, one transaction. */
async function rawSend(chatId: string, sender: TestDevice, keys: Array<{ deviceId: string; wrappedKey: string }>, scheme: 'direct' | 'group', epoch: number) {
  const messageId = uuidv7();
  const env = envelope({ chatId, messageId, sender, scheme, epoch, ciphertextBytes: CIPHERTEXT });
  const c = await raw.connect();
  try {
    await c.query('BEGIN');
    const { rows } = await c.query<{ last_seq: string }>(`UPDATE bench_raw.chats SET last_seq = last_seq + 1 WHERE chat_id = $1 RETURNING last_seq`, [chatId]);
    const seq = Number(rows[0]!.last_seq);
    const data = { chatId, seq, messageId, senderUserId: sender.userId, senderDeviceId: sender.deviceId, epoch, envelope: JSON.parse(env) as unknown, wrappedKeys: keys };
    await c.query(`INSERT INTO bench_raw.events (event_id, stream_id, stream_version, type, data) VALUES ($1, $2, $3, 'MessagePosted', $4)`, [
      randomUUID(),
      `messages-${chatId}`,
      seq,
      JSON.stringify(data),
    ]);
    await c.query(
      `INSERT INTO bench_raw.messages (chat_id, seq, message_id, sender_user_id, sender_device_id, epoch, envelope, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, now())`,
      [chatId, seq, messageId, sender.userId, sender.deviceId, epoch, env],
    );
    if (keys.length) {
      await c.query(`INSERT INTO bench_raw.message_keys (chat_id, seq, device_id, wrapped_key) SELECT $1, $2, unnest($3::uuid[]), unnest($4::text[])`, [
        chatId,
        seq,
        keys.map((k) => k.deviceId),
        keys.map((k) => k.wrappedKey),
      ]);
    }
    await c.query('COMMIT');
  } catch (err) {
    await c.query('ROLLBACK');
    throw err;
  } finally {
    c.release();
  }
}

try {
  await raw.query(`CREATE SCHEMA bench_raw;
    CREATE TABLE bench_raw.chats (chat_id uuid PRIMARY KEY, last_seq bigint NOT NULL DEFAULT 0);
    CREATE TABLE bench_raw.events (position bigserial PRIMARY KEY, event_id uuid UNIQUE NOT NULL, stream_id text NOT NULL, stream_version int NOT NULL,
                                   type text NOT NULL, data jsonb NOT NULL, UNIQUE (stream_id, stream_version));
    CREATE TABLE bench_raw.messages (chat_id uuid NOT NULL, seq bigint NOT NULL, message_id uuid NOT NULL, sender_user_id uuid NOT NULL,
                                     sender_device_id uuid NOT NULL, epoch integer NOT NULL, envelope jsonb NOT NULL, created_at timestamptz NOT NULL,
                                     PRIMARY KEY (chat_id, seq), UNIQUE (sender_device_id, message_id));`);
  await raw.query(`CREATE TABLE bench_raw.message_keys (LIKE chat.message_keys INCLUDING ALL)`);

  // 1:1: alice (2 devices) and bob (3 devices); a sender wraps for all 5, its own device included.
  const alice = user(2);
  const bob = user(3);
  const group = Array.from({ length: GROUP_MEMBERS }, () => user(1));
  await seedDirectory([alice, bob, ...group]);
  const personal = (await app.createPersonalChat(actor(alice.devices[0]!), bob.userId)).chat.chatId;
  const everyone = [...alice.devices, ...bob.devices];
  const directSend = (i: number) => {
    const sender = everyone[i % everyone.length]!;
    const messageId = uuidv7();
    return app.sendMessage(actor(sender), {
      chatId: personal,
      messageId,
      envelope: envelope({
        chatId: personal,
        messageId,
        sender,
        scheme: 'direct',
        epoch: 0,
        recipientUserId: sender.userId === alice.userId ? bob.userId : alice.userId,
        ciphertextBytes: CIPHERTEXT,
      }),
      wrappedKeys: everyone.map((d) => ({ deviceId: d.deviceId, wrappedKey: b64(384) })),
    });
  };

  // 1:1 across CHATS personal chats (one device per user; the sender wraps for both).
  const pairs: Array<{ chatId: string; a: TestDevice; b: TestDevice }> = [];
  const pairUsers = Array.from({ length: CHATS * 2 }, () => user(1));
  await seedDirectory(pairUsers);
  for (let i = 0; i < CHATS; i++) {
    const a = pairUsers[2 * i]!.devices[0]!;
    const b = pairUsers[2 * i + 1]!.devices[0]!;
    pairs.push({ chatId: (await app.createPersonalChat(actor(a), b.userId)).chat.chatId, a, b });
  }
  const spreadSend = (i: number) => {
    const p = pairs[i % pairs.length]!;
    const [sender, recipient] = Math.floor(i / pairs.length) % 2 === 0 ? [p.a, p.b] : [p.b, p.a];
    const messageId = uuidv7();
    return app.sendMessage(actor(sender), {
      chatId: p.chatId,
      messageId,
      envelope: envelope({ chatId: p.chatId, messageId, sender, scheme: 'direct', epoch: 0, recipientUserId: recipient.userId, ciphertextBytes: CIPHERTEXT }),
      wrappedKeys: [sender, recipient].map((d) => ({ deviceId: d.deviceId, wrappedKey: b64(384) })),
    });
  };

  // A 1,000-member group with its genesis epoch (one device each).
  const groupId = randomUUID();
  const t0 = performance.now();
  const genesis = epochRecord(groupId, 1, '', group.map((u, i) => ({ user: u, admin: i === 0 })), group[0]!.devices[0]!);
  await app.createGroup(actor(group[0]!.devices[0]!), {
    chatId: groupId,
    members: group.slice(1).map((u) => ({ userId: u.userId, role: 'member' })),
    epochRecord: genesis.record,
    epochKeys: genesis.keys,
  });
  const createMs = performance.now() - t0;
  const groupSend = (i: number) => {
    const sender = group[i % group.length]!.devices[0]!;
    const messageId = uuidv7();
    return app.sendMessage(actor(sender), {
      chatId: groupId,
      messageId,
      envelope: envelope({ chatId: groupId, messageId, sender, scheme: 'group', epoch: 1, epochHash: genesis.hash, ciphertextBytes: CIPHERTEXT }),
      wrappedKeys: [],
    });
  };

  const rawPersonal = randomUUID();
  const rawGroup = randomUUID();
  const rawChats = Array.from({ length: CHATS }, () => randomUUID());
  await raw.query(`INSERT INTO bench_raw.chats (chat_id) SELECT unnest($1::uuid[])`, [[rawPersonal, rawGroup, ...rawChats]]);

  // Warm up connections and plans.
  for (let i = 0; i < 50; i++) await directSend(i);
  const results = [
    await run('1:1, 5 wrapped keys: chat service', directSend),
    await run('1:1, 5 wrapped keys: raw pg', (i) => {
      const sender = everyone[i % everyone.length]!;
      return rawSend(rawPersonal, sender, everyone.map((d) => ({ deviceId: d.deviceId, wrappedKey: b64(384) })), 'direct', 0);
    }),
    await run(`1:1 across ${CHATS} chats, 2 keys: chat service`, spreadSend),
    await run(`1:1 across ${CHATS} chats, 2 keys: raw pg`, (i) => {
      const p = pairs[i % pairs.length]!;
      return rawSend(rawChats[i % rawChats.length]!, p.a, [p.a, p.b].map((d) => ({ deviceId: d.deviceId, wrappedKey: b64(384) })), 'direct', 0);
    }),
    await run(`group of ${GROUP_MEMBERS}: chat service`, groupSend),
    await run(`group of ${GROUP_MEMBERS}: raw pg`, (i) => rawSend(rawGroup, group[i % group.length]!.devices[0]!, [], 'group', 1)),
  ];

  const pct = (r: Result, p: number) => r.latencies[Math.min(r.latencies.length - 1, Math.floor((p / 100) * r.latencies.length))]!.toFixed(2);
  console.log(`send benchmark: ${SENDS} sends per scenario, ${CONCURRENCY} concurrent, ciphertext ${CIPHERTEXT} bytes`);
  console.log(`(group of ${GROUP_MEMBERS} created with its genesis epoch in ${createMs.toFixed(0)} ms)`);
  console.log('');
  const per = (n: number) => (n / SENDS).toFixed(2).padStart(9);
  console.log(
    `${'scenario'.padEnd(42)} ${'sends/s'.padStart(8)} ${'p50 ms'.padStart(8)} ${'p99 ms'.padStart(8)} ${'stmts/send'.padStart(10)} ${'commits/s.'.padStart(10)} ${'tuples/s.'.padStart(9)} ${'hits/send'.padStart(9)}`,
  );
  for (const r of results) {
    console.log(
      `${r.name.padEnd(42)} ${(r.sends / r.seconds).toFixed(0).padStart(8)} ${pct(r, 50).padStart(8)} ${pct(r, 99).padStart(8)} ${per(r.statements).padStart(10)} ${per(r.commits).padStart(10)} ${per(r.tuples)} ${per(r.hits)}`,
    );
  }
  const [{ n }] = (await db.query<{ n: string }>(`SELECT count(*) AS n FROM chat.messages WHERE chat_id = ?`, [personal])) as [{ n: string }];
  const [{ g }] = (await db.query<{ g: string }>(`SELECT max(seq) AS g FROM chat.messages WHERE chat_id = ?`, [groupId])) as [{ g: string }];
  console.log('');
  console.log(`check: 1:1 chat holds ${n} messages (seq gap-free: ${Number(n) === SENDS + 50}); group last seq ${g} (${Number(g) === SENDS})`);
} finally {
  await raw.end();
  await db.close();
  await env.cleanup();
}
