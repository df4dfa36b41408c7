// Groups as step 8 made them, through the real identity + chat + gateway: the
// title travels only encrypted in the signed record, members and roles are
// shown from the verified record, a leave is signed and verified before an
// admin's client drops the member, and the server's record of it all is
// ciphertext. (Attacks by a malicious server are in tests/adversary.)
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BilClient, MemoryKeyStore, type LocalAccount } from '../src/index.js';
import { chatStackBuilt, startStack, type Stack } from './stack.js';

const PASSWORD = 'correct horse battery staple';

interface Person {
  client: BilClient;
  account: LocalAccount;
}

describe.skipIf(!chatStackBuilt)('@bil/sdk groups: encrypted titles, verified members, signed leaves (e2e)', () => {
  let stack: Stack;
  let alice: Person;
  let bob: Person;
  let carol: Person;

  const register = async (prefix: string): Promise<Person> => {
    const client = new BilClient({ baseUrl: stack.baseUrl, keyStore: new MemoryKeyStore() });
    const account = await client.register({ username: `${prefix}_${randomBytes(4).toString('hex')}`, password: PASSWORD });
    return { client, account };
  };

  const query = async (sql: string, params: unknown[]) => {
    const db = new pg.Client({ connectionString: stack.env.databaseUrl });
    await db.connect();
    try {
      return (await db.query(sql, params)).rows;
    } finally {
      await db.end();
    }
  };

  beforeAll(async () => {
    stack = await startStack({}, { chat: true });
    [alice, bob, carol] = await Promise.all(['alice', 'bob', 'carol'].map(register)) as [Person, Person, Person];
  }, 120_000);

  afterAll(async () => {
    await stack?.stop();
  });

  it('the title is only in the signed record, encrypted; members read it, a rename is a new epoch, the server never stores it', async () => {
    const title = `Secret plans ${randomBytes(3).toString('hex')}`;
    const group = await alice.client.chats.createGroup({ title, members: [bob.account.userId] });
    expect(group).toMatchObject({ title, titleVerified: true, epoch: 1 });
    const seen = await bob.client.chats.get(group.chatId);
    expect(seen).toMatchObject({ title, titleVerified: true });
    expect((await bob.client.chats.list({ type: 'group' })).chats.find((c) => c.chatId === group.chatId)?.title).toBe(title);

    const renamed = `Renamed ${randomBytes(3).toString('hex')}`;
    expect(await alice.client.chats.rename(group.chatId, renamed)).toEqual({ epoch: 2 });
    expect((await bob.client.chats.get(group.chatId)).title).toBe(renamed);

    // Nothing the chat service stores names either title: chats, events, outbox.
    const schema = 'chat';
    for (const t of [title, renamed]) {
      const rows = await query(
        `SELECT (SELECT count(*) FROM ${schema}.chats WHERE title = $1)::int AS chats,
                (SELECT count(*) FROM ${schema}.events WHERE data::text LIKE '%' || $1 || '%')::int AS events,
                (SELECT count(*) FROM ${schema}.streams WHERE state::text LIKE '%' || $1 || '%')::int AS streams`,
        [t],
      );
      expect(rows[0]).toEqual({ chats: 0, events: 0, streams: 0 });
    }
  });

  it("members and roles come from the verified record, and match the server's list when it is honest", async () => {
    const group = await alice.client.chats.createGroup({ title: 'Roles', members: [bob.account.userId, { userId: carol.account.userId, role: 'admin' }] });
    const view = await bob.client.chats.get(group.chatId);
    expect(view.memberListMismatch).toBeNull();
    expect(Object.fromEntries(view.verifiedMembers!.map((m) => [m.userId, m.role]))).toEqual({
      [alice.account.userId]: 'admin',
      [bob.account.userId]: 'member',
      [carol.account.userId]: 'admin',
    });
    expect(view.members.find((m) => m.userId === alice.account.userId)?.role).toBe('owner');
    expect(view.verifiedMembers!.find((m) => m.userId === bob.account.userId)?.deviceIds).toEqual([bob.account.deviceId]);
  });

  it("a member's leave is signed; an admin's client verifies it and starts the next epoch without them", async () => {
    const group = await alice.client.chats.createGroup({ title: 'Leaving', members: [bob.account.userId, carol.account.userId] });
    await carol.client.chats.members.leave(group.chatId);
    // Until an admin rotates, the record still lists carol (she holds the epoch key): shown as a difference.
    expect((await bob.client.chats.get(group.chatId)).memberListMismatch).toEqual({ extraOnServer: [], missingOnServer: [carol.account.userId], roleDiffers: [] });
    const sent = await alice.client.messages.send(group.chatId, 'carol left');
    const view = await bob.client.chats.get(group.chatId);
    expect(view.epoch).toBe(2);
    expect(view.verifiedMembers!.map((m) => m.userId).sort()).toEqual([alice.account.userId, bob.account.userId].sort());
    expect((await bob.client.messages.history(group.chatId, { after: sent.seq - 1 })).messages.map((m) => m.ok && m.text)).toEqual(['carol left']);
  });

  it('a personal chat is the one derived from both user ids', async () => {
    const chat = await alice.client.chats.createPersonal(carol.account.userId);
    const { personalChatId } = await import('@bil/crypto');
    expect(chat.chatId).toBe(await personalChatId(alice.account.userId, carol.account.userId));
    await alice.client.messages.send(chat.chatId, 'hi carol');
    expect((await carol.client.messages.history(chat.chatId)).messages.map((m) => m.ok && m.text)).toEqual(['hi carol']);
  });
});
