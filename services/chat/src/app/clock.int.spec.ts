// Time in the chat app comes from its injected clock (issue #15): what a
// command records (created, joined, last activity, epoch times) is the
// clock's time, and the chat list orders by it, not by insertion.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomUUID } from 'node:crypto';
import { createTestEnv, type TestEnv } from '@bil/testkit';
import { Database, EventStore, ManualClock, createLogger } from '@bil/runtime';
import { migrations } from '../infra/migrations/index.js';
import { chatReadModels } from './projections/read-models.js';
import { ChatApp, type Actor } from './chat-app.js';
import { b64, epochRecord, newDevice, type TestDevice, type TestUser } from '../test-support.js';

let env: TestEnv;
let db: Database;

beforeAll(async () => {
  env = await createTestEnv('chatclock');
  db = await Database.connect({ url: env.databaseUrl, schema: 'chat', migrations, poolMax: 4 });
  await db.migrate();
});

afterAll(async () => {
  await db?.close();
  await env?.cleanup();
});

const actor = (d: TestDevice): Actor => ({ userId: d.userId, deviceId: d.deviceId, sessionId: randomUUID() });

describe('the injected clock', () => {
  it('dates what commands record and orders the chat list, whatever the insertion order', async () => {
    const users: TestUser[] = Array.from({ length: 2 }, () => {
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
    const clock = new ManualClock('2031-05-01T12:00:00.000Z');
    const app = new ChatApp(db, new EventStore(db, [chatReadModels]), { maxGroupMembers: 8 }, createLogger('clock-test', 'silent'), clock);
    const createGroup = async () => {
      const chatId = randomUUID();
      const genesis = epochRecord(chatId, 1, '', roster, owner);
      return app.createGroup(actor(owner), {
        chatId,
        members: [{ userId: users[1]!.userId, role: 'member' }],
        epochRecord: genesis.record,
        epochKeys: genesis.keys,
      });
    };

    const later = await createGroup();
    expect(later).toMatchObject({ createdAt: '2031-05-01T12:00:00.000Z', lastActivityAt: '2031-05-01T12:00:00.000Z' });
    expect(later.members.map((m) => m.joinedAt)).toEqual(['2031-05-01T12:00:00.000Z', '2031-05-01T12:00:00.000Z']);

    clock.set('2031-04-30T08:30:00.000Z'); // created second, a day earlier by the clock
    const earlier = await createGroup();
    expect(earlier.createdAt).toBe('2031-04-30T08:30:00.000Z');
    const [epoch] = (await app.listEpochs(actor(owner), { chatId: earlier.chatId, afterEpoch: 0, limit: 10 })).epochs;
    expect(epoch!.createdAt).toBe('2031-04-30T08:30:00.000Z');

    const { chats } = await app.listChats(actor(owner), { type: undefined, limit: 10, pageToken: '' });
    expect(chats.map((c) => c.chatId)).toEqual([later.chatId, earlier.chatId]);
  });
});
