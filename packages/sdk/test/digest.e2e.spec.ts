// Unread on login and digests through the real stack with the SDK: identity,
// chat, the digest API and one digest worker (built-in extractive summariser)
// and the gateway as built processes, with a delivery node pushing the outcome.
// Bob decrypts his unread messages locally and summarises them in the three
// modes: on the device (nothing sent), with his own model (a fake
// OpenAI-compatible server; nothing sent to bil), and at the digest service
// (sealed to the configured key, the summary sealed back and checked). A
// member's signed opt-out and the group's signed setting keep messages on the
// device; afterwards neither the digest schema nor Redis holds a marker phrase.
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import pg from 'pg';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, FakeOpenAI, MODEL_SUMMARY } from '@bil/testkit';
import { BilClient, BilStateError, DigestFailedError, MemoryKeyStore, type DigestSummary, type FetchLike, type LocalAccount } from '../src/index.js';
import { chatStackBuilt, deliveryMain, digestMain, startStack, type Stack } from './stack.js';

const PASSWORD = 'correct horse battery staple';
const MARKER = 'PERIWINKLE-ZEPPELIN-7731';
const CAROL_MARKER = 'TANGERINE-OBELISK-4410';
const username = (prefix: string) => `${prefix}_${randomBytes(4).toString('hex')}`;

interface Device {
  client: BilClient;
  store: MemoryKeyStore;
  account: LocalAccount;
  /** Every request this client made: "METHOD /path". */
  sent: string[];
}

/** Thirty messages about launching the website, with requests to Bob and a marker phrase. */
const CONVERSATION = [
  'Morning Bob! The website launch is planned for next Thursday.',
  'The launch checklist is in the shared drive, please have a look.',
  `Remember the launch codename is ${MARKER}, keep it internal.`,
  'Marketing wants the pricing page finished before the launch.',
  'Bob, can you review the pricing page copy by Wednesday?',
  'The hosting provider confirmed the new servers for the launch.',
  'We still have a problem with the checkout form on mobile.',
  'The checkout form bug blocks the launch, it must be fixed first.',
  'Bob, could you fix the checkout form bug on mobile before Tuesday?',
  'I will prepare the launch announcement for the newsletter.',
  'The newsletter goes out on Thursday morning at 9.',
  'Legal approved the new privacy policy for the website.',
  'The website analytics dashboard is ready too.',
  'We decided to keep the old blog online until after the launch.',
  'The design team delivered the final homepage images.',
  'Homepage images are compressed and uploaded to the website.',
  'Load testing showed the website handles 2000 visitors per minute.',
  'Bob, please update the launch checklist when the checkout fix is merged.',
  'Support needs a short FAQ about the new pricing before the launch.',
  'I will write the pricing FAQ with support tomorrow.',
  'The domain redirect from the old website is configured.',
  'Search engine sitemaps are generated for the new website.',
  'Launch rehearsal on Wednesday afternoon with the whole team.',
  `The rehearsal channel is ${MARKER} as well.`,
  'After the launch we review the website metrics on Friday.',
  'The budget for launch ads was approved by finance.',
  'Ads start running on launch day at noon.',
  'Bob, can you confirm the launch date with the hosting provider?',
  'Everything else for the website launch looks on track.',
  'Thanks Bob, ping me if anything blocks the launch.',
];

describe.skipIf(!chatStackBuilt || !existsSync(digestMain) || !existsSync(deliveryMain))('@bil/sdk unread and digests against identity + chat + digest + gateway (e2e)', () => {
  let stack: Stack;
  /** The digest service's identity key, as its operator publishes it (read here from the honest service, out of band). */
  let serviceIdentityKey: string;
  let alice: Device;
  let bob: Device;
  let carol: Device;
  let chatId: string;
  let groupId: string;
  const model = new FakeOpenAI('byo-key', 'byo-model');
  const byo = () => ({ apiKey: 'byo-key', baseURL: model.url, model: 'byo-model' });
  const yes = () => true;
  let names: Record<string, string>;

  function makeClient(store: MemoryKeyStore, digest?: { serviceIdentityKey?: string; minUnread?: number }): { client: BilClient; sent: string[] } {
    const sent: string[] = [];
    const logged: FetchLike = (url, init) => {
      sent.push(`${init.method ?? 'GET'} ${new URL(url).pathname}`);
      return fetch(url, init);
    };
    return { client: new BilClient({ baseUrl: stack.baseUrl, keyStore: store, fetch: logged, ...(digest ? { digest } : {}) }), sent };
  }

  async function register(prefix: string, digest?: { serviceIdentityKey?: string }): Promise<Device> {
    const store = new MemoryKeyStore();
    const { client, sent } = makeClient(store, digest);
    const account = await client.register({ username: username(prefix), password: PASSWORD, deviceName: 'laptop' });
    return { client, store, account, sent };
  }

  const digestCalls = (d: Device, from: number) => d.sent.slice(from).filter((r) => r.includes('digest'));

  beforeAll(async () => {
    stack = await startStack({}, { digest: true, delivery: true });
    await model.start();
    alice = await register('alice');
    const token = (await alice.store.load())!.tokens!.accessToken;
    const key = (await (await fetch(`${stack.baseUrl}/v1/digest/key`, { headers: { authorization: `Bearer ${token}` } })).json()) as { service_identity_key: string };
    serviceIdentityKey = key.service_identity_key;
    [bob, carol] = await Promise.all([register('bob', { serviceIdentityKey }), register('carol', { serviceIdentityKey })]);
    names = { [alice.account.userId]: 'Alice', [bob.account.userId]: 'Bob', [carol.account.userId]: 'Carol' };
    chatId = (await alice.client.chats.createPersonal(bob.account.userId)).chatId;
    for (const text of CONVERSATION) await alice.client.messages.send(chatId, text);
  }, 180_000);

  afterAll(async () => {
    await model.stop();
    await stack?.stop();
  });

  it('shows the unread messages on login: count, first unread seq, newest ones decrypted', async () => {
    const unread = await bob.client.unread({ messagesPerChat: 10 });
    expect(unread.total).toBe(30);
    expect(unread.unreadChats).toBe(1);
    expect(unread.nextPageToken).toBe('');
    const [chat] = unread.chats;
    expect(chat).toMatchObject({ chatId, type: 'personal', unreadCount: 30, firstUnreadSeq: 1, lastSeq: 30 });
    expect(chat!.messages.map((m) => (m.ok ? m.text : m.error))).toEqual(CONVERSATION.slice(20));
    // Alice has read her own messages.
    expect((await alice.client.unread()).total).toBe(0);
  });

  it('server digest: refused without a configured key, and before the user confirmed the disclosure; nothing sent', async () => {
    const unconfigured = makeClient(bob.store);
    const err = await unconfigured.client.digest([chatId]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BilStateError);
    expect((err as BilStateError).code).toBe('digest_key_not_configured');
    expect(unconfigured.sent).toEqual([]);
    const before = bob.sent.length;
    const refused = await bob.client.digest([chatId], { names }).catch((e: unknown) => e);
    expect((refused as BilStateError).code).toBe('digest_disclosure_required');
    expect(digestCalls(bob, before)).not.toContain('POST /v1/digests');
    expect(bob.client.digests.disclosure('server')).toMatch(/operat/);
  }, 60_000);

  it('server digest: offered above the threshold; the summary is sealed to Bob and echoes his request and range', async () => {
    expect(await bob.client.digests.offered(await bob.client.unread())).toEqual([chatId]);
    // Bob's live connection is told when the digest is ready: with polling
    // effectively off, digest() can only finish (within this test's timeout) by that push.
    const live = bob.client.live();
    const pushed: Array<{ requestId: string; status: string; chatIds: readonly string[] }> = [];
    live.on('digest', (d) => pushed.push(d));
    await new Promise<void>((resolve) => live.once('synced', () => resolve()));
    const asked: unknown[] = [];
    const confirm = (d: unknown) => asked.push(d) > 0;
    const [outcome] = await bob.client.digest([chatId], { names, confirm, timeoutMs: 600_000, pollMs: 600_000 }).finally(() => live.close());
    expect(pushed).toMatchObject([{ status: 'ready', chatIds: [chatId] }]);
    expect(asked).toMatchObject([{ on: 'server', chatIds: [chatId] }]);
    const s = outcome as DigestSummary;
    expect(s).toMatchObject({ kind: 'summary', on: 'server', chatId, method: 'extractive', language: 'en', messageCount: 30, excludedCount: 0, fromSeq: 1, toSeq: 30 });
    expect(s.topic.toLowerCase()).toMatch(/launch|website/);
    const actions = JSON.stringify(s.actions);
    expect(actions, actions).toContain('review the pricing page');
    expect(s.actions).toContainEqual({ owner: 'Alice', action: 'I will prepare the launch announcement for the newsletter.' });
    // Acknowledged once per chat and mode (in the profile); no key pinned from the server.
    const profile = (await bob.store.load())!;
    expect(profile.digest?.disclosures?.[chatId]).toEqual(['server']);
    expect(profile.servicePins).toBeUndefined();
    const [again] = await bob.client.digest([chatId], { names });
    expect(again).toMatchObject({ kind: 'summary', on: 'server', messageCount: 30 });
  }, 90_000);

  it('on the device: summarised locally, nothing sent to the digest service', async () => {
    const before = bob.sent.length;
    const [outcome] = await bob.client.digest([chatId], { on: 'device', names });
    expect(outcome).toMatchObject({ kind: 'summary', on: 'device', method: 'extractive', messageCount: 30, excludedCount: 0, fromSeq: 1, toSeq: 30 });
    expect((outcome as DigestSummary).actions).toContainEqual({ owner: 'Alice', action: 'I will prepare the launch announcement for the newsletter.' });
    expect(digestCalls(bob, before)).toEqual([]);
  }, 60_000);

  it("with the user's own model: the model's endpoint gets the transcript and the key, no bil server gets it", async () => {
    const before = bob.sent.length;
    const refused = await bob.client.digest([chatId], { on: 'model', model: byo(), names }).catch((e: unknown) => e);
    expect((refused as BilStateError).code).toBe('digest_disclosure_required');
    expect(model.seen).toEqual([]);
    const [outcome] = await bob.client.digest([chatId], { on: 'model', model: byo(), names, confirm: yes });
    expect(outcome).toMatchObject({ kind: 'summary', on: 'model', method: 'llm', topic: MODEL_SUMMARY.topic, messageCount: 30, fromSeq: 1, toSeq: 30 });
    expect(model.seen.length).toBeGreaterThan(0);
    expect(model.seen[0]!.authorization).toBe('Bearer byo-key');
    expect(model.seen[0]!.model).toBe('byo-model');
    expect(JSON.stringify(model.seen[0]!.messages)).toContain(MARKER);
    // Only the signed policy (metadata) was read from bil: no key, no request.
    expect(digestCalls(bob, before).filter((r) => r !== `GET /v1/chats/${chatId}/digest-policy`)).toEqual([]);
  }, 60_000);

  it('a timed-out server digest carries its request id and a JSON pending request that resumes', async () => {
    // The worker can finish before the client's first look (this range was
    // summarised above), so the first answer for the request is held back as
    // "pending": the client must then give up at its deadline, not wait.
    let heldBack = false;
    const slow: FetchLike = async (url, init) => {
      const res = await fetch(url, init);
      if (heldBack || (init.method ?? 'GET') !== 'GET' || !new URL(url).pathname.startsWith('/v1/digests/')) return res;
      heldBack = true;
      const { digest } = (await res.json()) as { digest: Record<string, unknown> };
      return new Response(JSON.stringify({ digest: { ...digest, status: 'pending', results: [] } }), { status: 200, headers: { 'content-type': 'application/json' } });
    };
    const impatient = new BilClient({ baseUrl: stack.baseUrl, keyStore: bob.store, fetch: slow, digest: { serviceIdentityKey } });
    const err = (await impatient.digest([chatId], { names, timeoutMs: 1, pollMs: 1 }).catch((e: unknown) => e)) as DigestFailedError;
    expect(heldBack).toBe(true);
    expect(err).toBeInstanceOf(DigestFailedError);
    expect(err.reason).toBe('client_timeout');
    expect(err.requestId).toMatch(/^[0-9a-f-]{36}$/);
    const pending = JSON.parse(JSON.stringify(err.pending));
    expect(pending.requestId).toBe(err.requestId);
    const [outcome] = await bob.client.digests.resume(pending);
    expect(outcome).toMatchObject({ kind: 'summary', on: 'server', chatId, messageCount: 30 });
  }, 90_000);

  it('below the threshold (the client setting; the server one is not used): the messages instead', async () => {
    // Bob reads all but the last 5: below the threshold (20).
    await bob.client.messages.markRead(chatId, 25);
    const [outcome] = await bob.client.digest([chatId], { names });
    expect(outcome!.kind).toBe('messages');
    expect(outcome?.kind === 'messages' && outcome.messages.map((m) => (m.ok ? m.text : ''))).toEqual(CONVERSATION.slice(25));
    expect(await bob.client.digests.offered(await bob.client.unread())).toEqual([]);
    expect(await bob.client.digests.offered(await bob.client.unread(), { minUnread: 5 })).toEqual([chatId]);
    const [few] = await bob.client.digest([chatId], { on: 'device', minUnread: 5, names });
    expect(few).toMatchObject({ kind: 'summary', messageCount: 5, fromSeq: 26, toSeq: 30 });
  }, 60_000);

  it("a member's signed opt-out keeps their messages out of another member's server and model digests", async () => {
    groupId = (await alice.client.chats.createGroup({ title: 'Launch crew', members: [bob.account.userId, carol.account.userId] })).chatId;
    // The digest service learns of the new group from chat's events a moment later.
    expect(await eventually(() => carol.client.digests.setConsent(groupId, false), 20_000, 200)).toMatchObject({ include: false });
    for (const text of CONVERSATION.slice(0, 20)) await alice.client.messages.send(groupId, text);
    for (let i = 0; i < 10; i++) await carol.client.messages.send(groupId, `Carol's private note ${i}: ${CAROL_MARKER}`);
    expect(await bob.client.digests.policy(groupId)).toMatchObject({ enabled: true, groupSetting: 'allowed', excludedUserIds: [carol.account.userId] });

    const [server] = await bob.client.digest([groupId], { names, confirm: yes });
    expect(server).toMatchObject({ kind: 'summary', on: 'server', messageCount: 20, excludedCount: 10, fromSeq: 1, toSeq: 30 });
    expect(JSON.stringify(server)).not.toContain(CAROL_MARKER);

    const seen = model.seen.length;
    const [own] = await bob.client.digest([groupId], { on: 'model', model: byo(), names, confirm: yes });
    expect(own).toMatchObject({ kind: 'summary', on: 'model', messageCount: 20, excludedCount: 10 });
    const sentToModel = JSON.stringify(model.seen.slice(seen));
    expect(sentToModel).toContain('pricing page');
    expect(sentToModel).not.toContain(CAROL_MARKER);

    // Reading on the device is not sending: Carol's messages are summarised there.
    const [local] = await bob.client.digest([groupId], { on: 'device', names });
    expect(local).toMatchObject({ kind: 'summary', on: 'device', messageCount: 30, excludedCount: 0 });
  }, 120_000);

  it("the group's signed setting off (an admin's epoch): server and model digests are disabled, on the device still works", async () => {
    await alice.client.chats.setDigests(groupId, false);
    expect(await bob.client.digests.policy(groupId)).toMatchObject({ enabled: false, groupSetting: 'off' });
    const before = bob.sent.length;
    expect(await bob.client.digest([groupId], { names, confirm: yes })).toEqual([{ kind: 'disabled', chatId: groupId, reason: 'group_setting' }]);
    expect(await bob.client.digest([groupId], { on: 'model', model: byo(), confirm: yes })).toEqual([{ kind: 'disabled', chatId: groupId, reason: 'group_setting' }]);
    expect(digestCalls(bob, before)).not.toContain('POST /v1/digests');
    expect((await bob.client.digest([groupId], { on: 'device', names }))[0]).toMatchObject({ kind: 'summary', on: 'device' });
    // A later rotation carries the setting over; switching it on again allows digests.
    await alice.client.chats.rotate(groupId);
    expect((await bob.client.digests.policy(groupId)).groupSetting).toBe('off');
    await alice.client.chats.setDigests(groupId, true);
    expect((await bob.client.digest([groupId], { names }))[0]).toMatchObject({ kind: 'summary', on: 'server', messageCount: 20 });
  }, 120_000);

  it('the service switch off: not offered, disabled, refused by the service', async () => {
    // New unread messages above the threshold again.
    for (let i = 0; i < 20; i++) await alice.client.messages.send(chatId, `Follow-up ${i} about the launch`);
    expect(await bob.client.digests.offered(await bob.client.unread())).toContain(chatId);
    const live = bob.client.live();
    const policyChanged = new Promise((resolve) => live.once('digest-policy', resolve));
    await new Promise<void>((resolve) => live.once('synced', () => resolve()));
    expect(await alice.client.digests.setPolicy(chatId, false)).toEqual({ enabled: false });
    // Bob's client hears of it live, so it stops offering the digest.
    expect(await policyChanged.finally(() => live.close())).toEqual({ chatId, userId: alice.account.userId, enabled: false, disabledByCount: 1 });
    expect(await bob.client.digests.policy(chatId)).toMatchObject({ enabled: false, serverEnabled: false });
    expect(await bob.client.digests.offered(await bob.client.unread())).not.toContain(chatId);
    expect(await bob.client.digest([chatId])).toEqual([{ kind: 'disabled', chatId, reason: 'server_policy' }]);
    // A client that asks anyway is refused by the service.
    const token = (await bob.store.load())!.tokens!.accessToken;
    const box = { header: { v: 1, kind: 'digest-request', context: `${crypto.randomUUID()}:${chatId}:${bob.account.deviceId}` }, wrapped_key: 'AA', ciphertext: 'AA', signature: '' };
    const res = await fetch(`${stack.baseUrl}/v1/digests`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ request_id: crypto.randomUUID(), transcripts: [{ chat_id: chatId, sealed: box, message_count: 1 }] }),
    });
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(res.status).toBeLessThan(500);
  }, 60_000);

  it('leaves no plaintext in the digest schema or in Redis', async () => {
    const db = new pg.Client({ connectionString: stack.env.databaseUrl });
    await db.connect();
    const found: string[] = [];
    try {
      const tables = await db.query<{ table_name: string }>(`SELECT table_name FROM information_schema.tables WHERE table_schema = 'digest'`);
      expect(tables.rows.length).toBeGreaterThan(0);
      for (const { table_name } of tables.rows) {
        const rows = await db.query<{ t: string }>(`SELECT t::text AS t FROM digest."${table_name}" t`);
        if (rows.rows.some((r) => r.t.includes(MARKER) || r.t.includes(CAROL_MARKER) || r.t.includes('pricing page'))) found.push(`postgres digest.${table_name}`);
      }
    } finally {
      await db.end();
    }
    const redis = new Redis(stack.env.redisUrl);
    try {
      let cursor = '0';
      do {
        const [next, keys] = await redis.scan(cursor, 'MATCH', `${stack.env.redisPrefix}*`, 'COUNT', 500);
        cursor = next;
        for (const key of keys) {
          const type = await redis.type(key);
          const value =
            type === 'string' ? await redis.get(key)
            : type === 'hash' ? JSON.stringify(await redis.hgetall(key))
            : type === 'list' ? JSON.stringify(await redis.lrange(key, 0, -1))
            : type === 'set' ? JSON.stringify(await redis.smembers(key))
            : type === 'zset' ? JSON.stringify(await redis.zrange(key, 0, -1))
            : type === 'stream' ? JSON.stringify(await redis.xrange(key, '-', '+'))
            : '';
          if (value?.includes(MARKER) || value?.includes('pricing page')) found.push(`redis ${key}`);
        }
      } while (cursor !== '0');
    } finally {
      redis.disconnect();
    }
    expect(found).toEqual([]);
    expect(stack.output()).not.toContain(MARKER);
  });
});
