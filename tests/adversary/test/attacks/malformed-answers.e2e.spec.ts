// Issue 12, "Why" 8 (second half): paging that always answers `has_more`
// loops forever, and `null` lists crash with a raw TypeError. Step 8: paging
// stops after a bounded number of pages with a BilProtocolError; a malformed
// answer is a BilProtocolError (the CLI: exit 1, `protocol_error`), not a
// TypeError.
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { BilProtocolError } from '@bil/sdk/node';
import { chatKnowsDevices, cli, failure, paths, registerAll, restart, unique, type Person } from '../harness/clients.js';
import { serverGet } from '../harness/forge.js';
import { startProxy, type Json, type MaliciousGateway } from '../harness/proxy.js';

/** "A bounded number of pages": the SDK's MAX_PAGES (packages/sdk/src/chat/answers.ts), plus the first request. */
const PAGE_BOUND = 1001;
/** The rules stop lying after this many answers, so a client without a bound still ends. */
const LIES = 1100;

describe('the server answers with endless or malformed pages', () => {
  let proxy: MaliciousGateway;
  let alice: Person;
  let bob: Person;
  let personal: string;
  let group: string;

  beforeAll(async () => {
    proxy = await startProxy(inject('gatewayUrl'));
    [alice, bob] = await registerAll(proxy.url, 'alice', 'bob');
    personal = (await alice.client.chats.createPersonal(bob.userId)).chatId;
    group = (await alice.client.chats.createGroup({ title: 'pages', members: [bob.userId] })).chatId;
    for (const t of ['one', 'two', 'three']) await alice.client.messages.send(personal, t);
    await alice.client.messages.send(group, 'in the group');
  });
  afterEach(() => proxy.reset());
  afterAll(() => proxy?.close());

  const requests = (path: RegExp, from: number) => proxy.log.slice(from).filter((x) => x.userId === bob.userId && x.method === 'GET' && path.test(x.path)).length;

  it('epoch pages that always say has_more: BilProtocolError after a bounded number of pages', async () => {
    const rule = proxy.onResponse('keys: has_more forever', { method: 'GET', path: paths.keys(group), userId: bob.userId, times: LIES }, (res) => {
      if (res.status !== 200) return undefined;
      const epochs = (res.body.epochs as Json[]).length ? res.body.epochs : (JSON.parse(proxy.log.findLast((x) => paths.keys(group).test(x.path) && x.userId === bob.userId && x.clientBody.includes('"epoch":1'))?.clientBody ?? '{"epochs":[]}').epochs as Json[]);
      return { body: { ...res.body, epochs, has_more: true } };
    });
    const from = proxy.log.length;
    const err = await failure(restart(bob, proxy.url).client.messages.send(group, 'hello'));
    expect(rule.fired).toBeGreaterThan(1);
    expect(requests(paths.keys(group), from)).toBeLessThanOrEqual(PAGE_BOUND);
    expect(err).toBeInstanceOf(BilProtocolError);
  });

  it('message pages that always say has_more (the digest reads every unread page): BilProtocolError after a bounded number', async () => {
    const first = (await serverGet(bob, `/v1/chats/${personal}/messages?after=0&limit=1`)).messages as Json[];
    const rule = proxy.reply('messages: the same page, has_more forever', { method: 'GET', path: paths.messages(personal), userId: bob.userId, times: LIES }, () => ({
      status: 200,
      body: { messages: first, has_more: true, last_seq: 3 },
    }));
    const from = proxy.log.length;
    const err = await failure(restart(bob, proxy.url).client.digest([personal], { on: 'device', timeoutMs: 20_000 }));
    expect(rule.fired).toBeGreaterThan(1);
    expect(requests(paths.messages(personal), from)).toBeLessThanOrEqual(PAGE_BOUND);
    expect(err).toBeInstanceOf(BilProtocolError);
  });

  const nulls: { what: string; path: RegExp; field: (body: Json) => Json; call: (p: Person) => Promise<unknown> }[] = [
    { what: 'messages: null in a history page', path: /\/messages$/, field: (b) => ({ ...b, messages: null }), call: (p) => p.client.messages.history(personal) },
    { what: 'chats: null in the chat list', path: /^\/v1\/chats$/, field: (b) => ({ ...b, chats: null }), call: (p) => p.client.chats.list() },
    // (`members: null` itself reads as "no members listed", as in chat lists.)
    { what: 'members: [null] in a chat', path: /^\/v1\/chats\/[0-9a-f-]{36}$/, field: (b) => ({ chat: { ...b.chat, members: [null] } }), call: (p) => p.client.chats.get(group) },
    { what: 'devices: null in the directory', path: /\/devices$/, field: (b) => ({ ...b, devices: null }), call: (p) => p.client.contacts.devices(alice.userId) },
    { what: 'epochs: null in the key page', path: /\/keys$/, field: (b) => ({ ...b, epochs: null }), call: (p) => p.client.messages.send(group, 'hello') },
    { what: 'chats: null in unread', path: /^\/v1\/unread$/, field: (b) => ({ ...b, chats: null }), call: (p) => p.client.unread() },
  ];
  it.each(nulls)('$what: BilProtocolError, not a TypeError', async ({ what, path, field, call }) => {
    const rule = proxy.onResponse(what, { method: 'GET', path, userId: bob.userId }, (res) => (res.status === 200 ? { body: field(res.body) } : undefined));
    const err = await failure(call(restart(bob, proxy.url)));
    expect(rule.fired).toBeGreaterThan(0);
    expect(err).not.toBeInstanceOf(TypeError);
    expect(err).toBeInstanceOf(BilProtocolError);
    expect(err.code).toBe('protocol_error');
  });

  it('bil history on a null list: exit 1, protocol_error, no stack trace', async () => {
    const bil = cli(proxy.url);
    try {
      expect((await bil('register', unique('dora'))).code).toBe(0);
      const dora = (await bil.json('whoami')).json as { userId: string; deviceId: string };
      await chatKnowsDevices(inject('databaseUrl'), [dora.deviceId]);
      const chatId = (await alice.client.chats.createPersonal(dora.userId)).chatId;
      await alice.client.messages.send(chatId, 'hi');
      const rule = proxy.onResponse('messages: null (CLI)', { method: 'GET', path: paths.messages(chatId), userId: dora.userId }, (res) => ({ body: { ...res.body, messages: null } }));
      const r = await bil('history', chatId);
      expect(rule.fired).toBeGreaterThan(0);
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).toContain('protocol_error');
      expect(r.stderr).not.toMatch(/TypeError|\n\s+at /);
    } finally {
      bil.cleanup();
    }
  });
});
