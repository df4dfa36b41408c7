// Unread on login and digests through the real stack with the SDK: identity,
// chat, the digest API and one digest worker (built-in extractive summariser)
// and the gateway as built processes, with a delivery node pushing the outcome. Bob decrypts his unread messages
// locally, seals the transcript to the verified digest key and opens the
// summary sealed back to his device; afterwards neither the digest schema nor
// Redis holds a marker phrase of the conversation.
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import pg from 'pg';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BilClient, MemoryKeyStore, type DigestSummary, type LocalAccount } from '../src/index.js';
import { chatStackBuilt, deliveryMain, digestMain, startStack, type Stack } from './stack.js';

const PASSWORD = 'correct horse battery staple';
const MARKER = 'PERIWINKLE-ZEPPELIN-7731';
const username = (prefix: string) => `${prefix}_${randomBytes(4).toString('hex')}`;

interface Device {
  client: BilClient;
  store: MemoryKeyStore;
  account: LocalAccount;
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
  let alice: Device;
  let bob: Device;
  let chatId: string;

  async function register(prefix: string): Promise<Device> {
    const store = new MemoryKeyStore();
    const client = new BilClient({ baseUrl: stack.baseUrl, keyStore: store });
    const account = await client.register({ username: username(prefix), password: PASSWORD, deviceName: 'laptop' });
    return { client, store, account };
  }

  beforeAll(async () => {
    stack = await startStack({}, { digest: true, delivery: true });
    [alice, bob] = await Promise.all([register('alice'), register('bob')]);
    chatId = (await alice.client.chats.createPersonal(bob.account.userId)).chatId;
    for (const text of CONVERSATION) await alice.client.messages.send(chatId, text);
  }, 180_000);

  afterAll(async () => {
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

  it('offers a digest above the threshold and returns a summary of the conversation', async () => {
    const offered = await bob.client.digests.offered(await bob.client.unread());
    expect(offered).toEqual([chatId]);
    const names = { [alice.account.userId]: 'Alice', [bob.account.userId]: 'Bob' };
    // Bob's live connection is told when the digest is ready: with polling
    // effectively off, digest() can only finish (within this test's timeout) by that push.
    const live = bob.client.live();
    const pushed: Array<{ requestId: string; status: string; chatIds: readonly string[] }> = [];
    live.on('digest', (d) => pushed.push(d));
    await new Promise<void>((resolve) => live.once('synced', () => resolve()));
    const [outcome] = await bob.client.digest([chatId], { names, timeoutMs: 600_000, pollMs: 600_000 }).finally(() => live.close());
    expect(pushed).toMatchObject([{ status: 'ready', chatIds: [chatId] }]);
    expect(outcome!.kind).toBe('summary');
    const s = outcome as DigestSummary;
    expect(s).toMatchObject({ chatId, method: 'extractive', language: 'en', messageCount: 30 });
    expect(s.topic.toLowerCase()).toMatch(/launch|website/);
    expect(s.keyPoints.length).toBeGreaterThan(0);
    expect(s.actions.length).toBeGreaterThan(0);
    // The requests to Bob and Alice's own commitments (Bob says nothing in the transcript, so the
    // extractive summariser leaves requests addressed to him without a speaker-owner).
    const actions = JSON.stringify(s.actions);
    expect(actions, actions).toContain('review the pricing page');
    expect(actions).toContain('fix the checkout form bug');
    expect(s.actions).toContainEqual({ owner: 'Alice', action: 'I will prepare the launch announcement for the newsletter.' });
    // The service identity key is pinned on first use.
    expect((await bob.store.load())!.servicePins?.digest).toMatch(/^[A-Za-z0-9_-]{43}$/);
  }, 90_000);

  it('returns the messages instead below the threshold', async () => {
    // Bob reads all but the last 5: below the threshold (20).
    await bob.client.messages.markRead(chatId, 25);
    const [outcome] = await bob.client.digest([chatId]);
    expect(outcome!.kind).toBe('messages');
    expect(outcome?.kind === 'messages' && outcome.messages.map((m) => (m.ok ? m.text : ''))).toEqual(CONVERSATION.slice(25));
    expect(await bob.client.digests.offered(await bob.client.unread())).toEqual([]);
  }, 60_000);

  it('policy off: not offered, refused by the service', async () => {
    // New unread messages above the threshold again.
    for (let i = 0; i < 20; i++) await alice.client.messages.send(chatId, `Follow-up ${i} about the launch`);
    expect(await bob.client.digests.offered(await bob.client.unread())).toEqual([chatId]);
    const live = bob.client.live();
    const policyChanged = new Promise((resolve) => live.once('digest-policy', resolve));
    await new Promise<void>((resolve) => live.once('synced', () => resolve()));
    expect(await alice.client.digests.setPolicy(chatId, false)).toEqual({ enabled: false });
    // Bob's client hears of it live, so it stops offering the digest.
    expect(await policyChanged.finally(() => live.close())).toEqual({ chatId, userId: alice.account.userId, enabled: false, disabledByCount: 1 });
    expect(await bob.client.digests.policy(chatId)).toMatchObject({ enabled: false });
    expect(await bob.client.digests.offered(await bob.client.unread())).toEqual([]);
    expect(await bob.client.digest([chatId])).toEqual([{ kind: 'disabled', chatId }]);
    // A client that asks anyway is refused by the service.
    const token = (await bob.store.load())!.tokens!.accessToken;
    const box = { header: { v: 1, kind: 'digest-request', context: `${chatId}:${bob.account.deviceId}` }, wrapped_key: 'AA', ciphertext: 'AA', signature: '' };
    const res = await fetch(`${stack.baseUrl}/v1/digests`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ request_id: crypto.randomUUID(), transcripts: [{ chat_id: chatId, sealed: box, message_count: 1 }] }),
    });
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(res.status).toBeLessThan(500);
    expect(((await res.json()) as { error: { code: string } }).error.code).toMatch(/disabled/);
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
        if (rows.rows.some((r) => r.t.includes(MARKER) || r.t.includes('pricing page'))) found.push(`postgres digest.${table_name}`);
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
