// ListEpochs pages are sized by bytes as well as count, as ListMessages (issue #14's leftover):
// a page holds the records that fit the byte budget, the first always, has_more until the end.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomUUID } from 'node:crypto';
import { createTestEnv, type TestEnv } from '@bil/testkit';
import { Database, EventStore, createLogger } from '@bil/runtime';
import { migrations } from '../infra/migrations/index.js';
import { chatReadModels } from './projections/read-models.js';
import { ChatApp, type Actor } from './chat-app.js';
import { b64, epochRecord, newDevice, type TestDevice, type TestUser } from '../test-support.js';

let env: TestEnv;
let db: Database;

beforeAll(async () => {
  env = await createTestEnv('chatepochs');
  db = await Database.connect({ url: env.databaseUrl, schema: 'chat', migrations, poolMax: 4 });
  await db.migrate();
});

afterAll(async () => {
  await db?.close();
  await env?.cleanup();
});

const actor = (d: TestDevice): Actor => ({ userId: d.userId, deviceId: d.deviceId, sessionId: randomUUID() });

describe('ListEpochs pages', () => {
  it('hold the records that fit the byte budget (the first always), with has_more until the end', async () => {
    const users: TestUser[] = Array.from({ length: 3 }, () => {
      const userId = randomUUID();
      return { userId, identityKey: b64(32), devices: [newDevice(userId)] };
    });
    await db.query(`INSERT INTO chat.directory_users (user_id, status) SELECT x.user_id, 'active' FROM jsonb_to_recordset(?::jsonb) AS x(user_id uuid)`, [
      JSON.stringify(users.map((u) => ({ user_id: u.userId }))),
    ]);
    await db.query(
      `INSERT INTO chat.directory_devices (device_id, user_id, signing_key, status, registered_at)
       SELECT x.device_id, x.user_id, x.signing_key, 'active', now() FROM jsonb_to_recordset(?::jsonb) AS x(device_id uuid, user_id uuid, signing_key text)`,
      [JSON.stringify(users.map((u) => ({ device_id: u.devices[0]!.deviceId, user_id: u.userId, signing_key: u.devices[0]!.signingKey })))],
    );
    const owner = users[0]!.devices[0]!;
    const roster = users.map((user, i) => ({ user, admin: i === 0 }));
    const chatId = randomUUID();
    const genesis = epochRecord(chatId, 1, '', roster, owner);
    // A budget of about one and a half records (each ~3 KB of JSON here, plus its key and the row overhead).
    const budget = Math.floor((genesis.record.length + 384 + 512) * 1.5);
    const app = new ChatApp(db, new EventStore(db, [chatReadModels]), { maxGroupMembers: 8, maxPageBytes: budget }, createLogger('epochs-test', 'silent'));
    await app.createGroup(actor(owner), {
      chatId,
      members: users.slice(1).map((u) => ({ userId: u.userId, role: 'member' })),
      epochRecord: genesis.record,
      epochKeys: genesis.keys,
    });
    let head = genesis.hash;
    for (const epoch of [2, 3]) {
      const next = epochRecord(chatId, epoch, head, roster, owner);
      await app.publishEpoch(actor(owner), { chatId, epochRecord: next.record, epochKeys: next.keys });
      head = next.hash;
    }
    const pages: Array<{ epochs: number[]; hasMore: boolean }> = [];
    for (let after = 0; ; ) {
      const page = await app.listEpochs(actor(users[1]!.devices[0]!), { chatId, afterEpoch: after, limit: 100 });
      pages.push({ epochs: page.epochs.map((e) => e.epoch), hasMore: page.hasMore });
      expect(page.epochs.every((e) => e.wrappedKey !== '')).toBe(true);
      if (!page.hasMore) break;
      after = page.epochs[page.epochs.length - 1]!.epoch;
    }
    expect(pages).toEqual([
      { epochs: [1], hasMore: true },
      { epochs: [2], hasMore: true },
      { epochs: [3], hasMore: false },
    ]);
    // A budget that fits all: one page; a count limit still pages.
    const all = new ChatApp(db, new EventStore(db, [chatReadModels]), { maxGroupMembers: 8 }, createLogger('epochs-test', 'silent'));
    expect((await all.listEpochs(actor(owner), { chatId, afterEpoch: 0, limit: 100 })).epochs.map((e) => e.epoch)).toEqual([1, 2, 3]);
    expect(await all.listEpochs(actor(owner), { chatId, afterEpoch: 0, limit: 2 })).toMatchObject({ hasMore: true });
  });
});
