// Issue 12, "Why" 5: the member list shown to people is the server's.
// GET /v1/chats/{id} hides carol (who still reads: she is in the record and
// holds the key) and shows a ghost owner (in no record). Step 8: `chats.get`
// gives the verified record's members and roles (`verifiedMembers`) and flags
// the difference from the server's list (`memberListMismatch`); `bil chat
// members` shows the record's members and says the lists differ.
import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { chatKnowsDevices, cli, loose, paths, registerAll, unique, type Cli, type Person } from '../harness/clients.js';
import { startProxy, type Json, type MaliciousGateway } from '../harness/proxy.js';

describe("the server's member list is not what people are shown", () => {
  let proxy: MaliciousGateway;
  let alice: Person;
  let bob: Person;
  let carol: Person;
  let erin: { userId: string; deviceId: string };
  let bil: Cli;
  let chatId: string;
  const ghost = randomUUID();

  beforeAll(async () => {
    proxy = await startProxy(inject('gatewayUrl'));
    [alice, bob, carol] = await registerAll(proxy.url, 'alice', 'bob', 'carol');
    bil = cli(proxy.url);
    expect((await bil('register', unique('erin'))).code).toBe(0);
    erin = (await bil.json('whoami')).json as { userId: string; deviceId: string };
    await chatKnowsDevices(inject('databaseUrl'), [erin.deviceId]);
    chatId = (await alice.client.chats.createGroup({ title: 'hidden', members: [bob.userId, carol.userId, erin.userId] })).chatId;
  });
  afterEach(() => proxy.reset());
  afterAll(async () => {
    bil?.cleanup();
    await proxy?.close();
  });

  const hideCarolAddGhost = (userId: string) =>
    proxy.onResponse('carol hidden, a ghost owner shown', { method: 'GET', path: paths.chat(chatId), userId }, (res) => {
      if (res.status !== 200) return undefined;
      const members = [...(res.body.chat.members as Json[]).filter((m) => m.user_id !== carol.userId), { user_id: ghost, role: 'owner', joined_at: new Date().toISOString(), joined_seq: 0 }];
      return { body: { chat: { ...res.body.chat, members, member_count: members.length } } };
    });
  const everyone = () => [alice.userId, bob.userId, carol.userId, erin.userId].sort();

  it('honestly served, the verified members equal the server list and nothing is flagged', async () => {
    const chat = loose(await bob.client.chats.get(chatId));
    expect(chat.verifiedMembers?.map((m: Json) => m.userId).sort()).toEqual(everyone());
    expect(chat.memberListMismatch).toBeFalsy();
  });

  it('chats.get: the record\'s members (carol included, no ghost) and the difference flagged', async () => {
    const rule = hideCarolAddGhost(bob.userId);
    const chat = loose(await bob.client.chats.get(chatId));
    expect(rule.fired).toBe(1);
    expect(chat.verifiedMembers?.map((m: Json) => m.userId).sort()).toEqual(everyone());
    expect(chat.verifiedMembers.find((m: Json) => m.userId === alice.userId).role).not.toBe('member');
    expect(chat.memberListMismatch).toBeTruthy();
    rule.remove();
  });

  it('bil chat members: the record\'s members, and a warning that the server\'s list differs', async () => {
    const rule = hideCarolAddGhost(erin.userId);
    const r = await bil.json('chat', 'members', chatId);
    expect(rule.fired).toBeGreaterThan(0);
    expect(r.code, r.stderr).toBe(0);
    const shown = ((r.json as { members: Json[] }).members ?? []).map((m) => m.userId).sort();
    expect(shown).toEqual(everyone());
    expect(`${r.stdout}\n${r.stderr}`).toMatch(/mismatch|differ/i);

    // People see carol as a member; the ghost appears only in the warning about the server's list.
    const human = await bil('chat', 'members', chatId);
    const lines = `${human.stdout}\n${human.stderr}`.split('\n');
    expect(lines.some((l) => l.includes(carol.userId.slice(0, 8)))).toBe(true);
    for (const l of lines.filter((x) => x.includes(ghost.slice(0, 8)))) expect(l).toMatch(/server/i);
    rule.remove();
  });
});
