// ListEpochs pages are sized by bytes as well as count, as ListMessages (issue #14's leftover):
// a page holds the records that fit the byte budget, the first always, has_more until the end.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomUUID } from 'node:crypto';
import type { Database} from '@bil/runtime';
import { EventStore, createLogger } from '@bil/runtime';
import { chatReadModels } from './projections/read-models.js';
import { ChatApp } from './chat-app.js';
import { actorOf, openChatDb, epochRecord, seedDirectory } from '../test-support.js';

let t: Awaited<ReturnType<typeof openChatDb>>;
let db: Database;

beforeAll(async () => {
  t = await openChatDb('chatepochs', 4);
  db = t.db;
});

afterAll(() => t?.close());

const actor = actorOf;

describe('ListEpochs pages', () => {
  it('hold the records that fit the byte budget (the first always), with has_more until the end', async () => {
    const users = await seedDirectory(db, 3);
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
