// Time in the chat app comes from its injected clock (issue #15): what a
// command records (created, joined, last activity, epoch times) is the
// clock's time, and the chat list orders by it, not by insertion.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomUUID } from 'node:crypto';
import type { Database} from '@bil/runtime';
import { EventStore, ManualClock, createLogger } from '@bil/runtime';
import { chatReadModels } from './projections/read-models.js';
import { ChatApp } from './chat-app.js';
import { actorOf, openChatDb, epochRecord, seedDirectory } from '../test-support.js';

let t: Awaited<ReturnType<typeof openChatDb>>;
let db: Database;

beforeAll(async () => {
  t = await openChatDb('chatclock', 4);
  db = t.db;
});

afterAll(() => t?.close());

const actor = actorOf;

describe('the injected clock', () => {
  it('dates what commands record and orders the chat list, whatever the insertion order', async () => {
    const users = await seedDirectory(db, 2);
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
