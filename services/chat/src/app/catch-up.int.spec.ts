// CatchUpMessages (delivery's catch-up for many devices of one chat, issue
// #18's reconnect storm): one page from the lowest cursor, each message once
// with the devices that get it (after their own cursor, within their user's
// membership), and every device checked. Self-contained: its own database,
// users, devices and group.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomUUID } from 'node:crypto';
import { credentials } from '@grpc/grpc-js';
import { createTestEnv, type TestEnv } from '@bil/testkit';
import { AppError, Database, EventStore, GrpcServer, ServiceAuth, callUnary, createLogger } from '@bil/runtime';
import { loadChatProto } from '@bil/proto';
import type { ChatServiceClient } from '@bil/proto/gen/bil/chat/v1/ChatService';
import type { CatchUpMessagesResponse__Output } from '@bil/proto/gen/bil/chat/v1/CatchUpMessagesResponse';
import { migrations } from '../infra/migrations/index.js';
import { chatHandlers } from '../grpc/handlers.js';
import { chatReadModels } from './projections/read-models.js';
import { ChatApp } from './chat-app.js';
import { actorOf, envelope, epochRecord, seedDirectory, uuidv7, type TestDevice, type TestUser } from '../test-support.js';

const logger = createLogger('catch-up-test', 'silent');
let env: TestEnv;
let db: Database;
let app: ChatApp;
let grpc: GrpcServer;
let client: ChatServiceClient;
let users: TestUser[];
let chatId: string;

const dev = (i: number): TestDevice => users[i]!.devices[0]!;
const ask = (d: TestDevice, afterSeq: number) => ({ userId: d.userId, deviceId: d.deviceId, afterSeq });
/** Each message's seq with the indexes of the devices that get it. */
const shape = (page: Awaited<ReturnType<ChatApp['catchUpMessages']>>) => page.messages.map((m) => [m.message.seq, m.recipients.map((r) => r.deviceIndex)]);

async function refusal(p: Promise<unknown>): Promise<{ kind: string; code: string; details: unknown }> {
  try {
    await p;
  } catch (err) {
    if (err instanceof AppError) return { kind: err.kind, code: err.code, details: err.details };
    throw err;
  }
  return { kind: 'none', code: 'none', details: {} };
}

async function send(from: TestDevice, epoch: number, epochHash: string): Promise<void> {
  const messageId = uuidv7();
  await app.sendMessage(actorOf(from), {
    chatId,
    messageId,
    envelope: envelope({ chatId, messageId, sender: from, scheme: 'group', epoch, epochHash }),
    wrappedKeys: [],
  });
}

beforeAll(async () => {
  env = await createTestEnv('chatcatchup');
  db = await Database.connect({ url: env.databaseUrl, schema: 'chat', migrations, poolMax: 4 });
  await db.migrate();
  app = new ChatApp(db, new EventStore(db, [chatReadModels]), { maxGroupMembers: 16 }, logger);
  // 0 owner, 1 and 2 members from the start, 3 added after message 5, 4 never a member.
  users = await seedDirectory(db, 5);
  chatId = randomUUID();
  const first = [users[0]!, users[1]!, users[2]!];
  const genesis = epochRecord(chatId, 1, '', first.map((user, i) => ({ user, admin: i === 0 })), dev(0));
  await app.createGroup(actorOf(dev(0)), {
    chatId,
    members: [users[1]!, users[2]!].map((u) => ({ userId: u.userId, role: 'member' as const })),
    epochRecord: genesis.record,
    epochKeys: genesis.keys,
  });
  for (let i = 0; i < 5; i++) await send(dev(0), 1, genesis.hash);
  const second = epochRecord(chatId, 2, genesis.hash, [...first, users[3]!].map((user, i) => ({ user, admin: i === 0 })), dev(0));
  await app.addMembers(actorOf(dev(0)), { chatId, members: [{ userId: users[3]!.userId, role: 'member' as const }], epochRecord: second.record, epochKeys: second.keys });
  for (let i = 0; i < 3; i++) await send(dev(1), 2, second.hash);

  grpc = new GrpcServer({ logger, auth: ServiceAuth.fromEnv('chat', env.serviceEnv) });
  const proto = loadChatProto();
  grpc.add('bil.chat.v1.ChatService', proto.bil.chat.v1.ChatService.service, chatHandlers(app));
  const port = await grpc.listen('127.0.0.1', 0);
  client = new proto.bil.chat.v1.ChatService(`127.0.0.1:${port}`, credentials.createInsecure(), ServiceAuth.fromEnv('delivery', env.serviceEnv).clientOptions('chat', {}));
}, 60_000);

afterAll(async () => {
  client?.close();
  await grpc?.shutdown(1000);
  await db?.close();
  await env?.cleanup();
});

describe('CatchUpMessages', () => {
  it('reads one page from the lowest cursor; each message goes to the devices after their cursor and within their membership', async () => {
    const page = await app.catchUpMessages({ chatId, devices: [ask(dev(1), 0), ask(dev(2), 3), ask(dev(3), 0)], limit: 0 });
    expect(shape(page)).toEqual([
      [1, [0]],
      [2, [0]],
      [3, [0]],
      [4, [0, 1]],
      [5, [0, 1]],
      [6, [0, 1, 2]],
      [7, [0, 1, 2]],
      [8, [0, 1, 2]],
    ]);
    expect(page).toMatchObject({ hasMore: false, throughSeq: 8, lastSeq: 8 });
    expect(page.messages.every((m) => m.message.envelope !== '' && m.message.wrappedKey === '' && m.recipients.every((r) => r.wrappedKey === ''))).toBe(true);
  });

  it('pages by the limit with through_seq to read after; a late member alone starts where they joined', async () => {
    const first = await app.catchUpMessages({ chatId, devices: [ask(dev(1), 0), ask(dev(3), 0)], limit: 2 });
    expect(shape(first)).toEqual([
      [1, [0]],
      [2, [0]],
    ]);
    expect(first).toMatchObject({ hasMore: true, throughSeq: 2 });
    const late = await app.catchUpMessages({ chatId, devices: [ask(dev(3), 0)], limit: 2 });
    expect(shape(late)).toEqual([
      [6, [0]],
      [7, [0]],
    ]);
    expect(late).toMatchObject({ hasMore: true, throughSeq: 7 });
    const rest = await app.catchUpMessages({ chatId, devices: [ask(dev(3), 7)], limit: 2 });
    expect(shape(rest)).toEqual([[8, [0]]]);
    expect(rest).toMatchObject({ hasMore: false, throughSeq: 8 });
    // Every device up to date: nothing to read.
    expect(await app.catchUpMessages({ chatId, devices: [ask(dev(1), 8), ask(dev(2), 8)], limit: 0 })).toMatchObject({ messages: [], hasMore: false, throughSeq: 8 });
  });

  it('refuses 0 or more than 1,000 devices, a device twice, an unknown device, another user’s device, a non-member and an unknown chat', async () => {
    const many = Array.from({ length: 1001 }, () => ({ userId: randomUUID(), deviceId: randomUUID(), afterSeq: 0 }));
    expect(await refusal(app.catchUpMessages({ chatId, devices: [], limit: 0 }))).toMatchObject({ kind: 'invalid_argument', details: { field: 'devices' } });
    expect(await refusal(app.catchUpMessages({ chatId, devices: many, limit: 0 }))).toMatchObject({ kind: 'invalid_argument', details: { field: 'devices' } });
    expect(await refusal(app.catchUpMessages({ chatId, devices: [ask(dev(1), 0), ask(dev(1), 2)], limit: 0 }))).toMatchObject({ kind: 'invalid_argument' });
    expect(await refusal(app.catchUpMessages({ chatId, devices: [ask(dev(1), 0)], limit: 201 }))).toMatchObject({ code: 'invalid_limit' });
    const stranger = { userId: users[1]!.userId, deviceId: randomUUID(), afterSeq: 0 };
    expect(await refusal(app.catchUpMessages({ chatId, devices: [ask(dev(1), 0), stranger], limit: 0 }))).toEqual({
      kind: 'failed_precondition',
      code: 'unknown_device',
      details: { device_ids: [stranger.deviceId] },
    });
    const borrowed = { userId: users[1]!.userId, deviceId: dev(2).deviceId, afterSeq: 0 };
    expect(await refusal(app.catchUpMessages({ chatId, devices: [borrowed], limit: 0 }))).toEqual({
      kind: 'permission_denied',
      code: 'device_revoked',
      details: { device_ids: [dev(2).deviceId] },
    });
    expect(await refusal(app.catchUpMessages({ chatId, devices: [ask(dev(1), 0), ask(dev(4), 0)], limit: 0 }))).toEqual({
      kind: 'not_found',
      code: 'chat_not_found',
      details: { device_ids: [dev(4).deviceId] },
    });
    expect(await refusal(app.catchUpMessages({ chatId: randomUUID(), devices: [ask(dev(1), 0)], limit: 0 }))).toMatchObject({ kind: 'not_found', code: 'chat_not_found' });
    expect(await refusal(app.catchUpMessages({ chatId: 'nope', devices: [ask(dev(1), 0)], limit: 0 }))).toMatchObject({ code: 'invalid_id' });
  });

  it('answers over gRPC with seqs as text, the recipients by index, and refusals with their code', async () => {
    const c = client as unknown as Record<string, (...args: unknown[]) => unknown>;
    const call = (req: Record<string, unknown>) => callUnary<unknown, CatchUpMessagesResponse__Output>(client, c.catchUpMessages as never, req, { timeoutMs: 10_000 });
    const res = await call({ chatId, devices: [ask(dev(2), 6), ask(dev(3), 7)].map((d) => ({ ...d, afterSeq: String(d.afterSeq) })), limit: 0 });
    expect(res.messages.map((m) => [m.message?.seq, m.recipients.map((r) => r.deviceIndex)])).toEqual([
      ['7', [0]],
      ['8', [0, 1]],
    ]);
    expect(res).toMatchObject({ hasMore: false, throughSeq: '8', lastSeq: '8' });
    expect(await refusal(call({ chatId, devices: [ask(dev(4), 0)], limit: 0 }))).toMatchObject({ kind: 'not_found', code: 'chat_not_found' });
  });
});
