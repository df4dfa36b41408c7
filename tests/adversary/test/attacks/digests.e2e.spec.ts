// Issue 13, "Why" 1–3: digests. The server swaps the digest key (the SDK used
// to pin whatever GET /v1/digest/key said on first use), lowers the unread
// threshold to 1, replays a sealed transcript under a new request id, answers
// with an earlier request's results, and strips or rolls back a member's
// signed "leave my messages out" after the client saw it. Step 9: the key is
// configured and must verify under it; the threshold is the client's; the
// sealed context binds request, chat and device, and the result echoes the
// transcript's hash and range; consents are pinned at the highest version.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { generateDeviceKeys, generateIdentityKey, signServiceKey, toBase64Url } from '@bil/crypto';
import { BilClient, BilStateError, type DigestSummary } from '@bil/sdk/node';
import { eventually, FakeOpenAI } from '@bil/testkit';
import { failure, registerAll, type Person } from '../harness/clients.js';
import { serverGet } from '../harness/forge.js';
import { startProxy, type Json, type MaliciousGateway } from '../harness/proxy.js';

const CAROL_MARKER = 'QUARTZ-HEDGEHOG-5512';
const uuid = '[0-9a-f-]{36}';
const paths = {
  key: /^\/v1\/digest\/key$/,
  digests: /^\/v1\/digests$/,
  digest: new RegExp(`^/v1/digests/${uuid}$`),
  policy: new RegExp(`^/v1/chats/${uuid}/digest-policy$`),
  consent: new RegExp(`^/v1/chats/${uuid}/digest-consent$`),
};

describe('digests: the key, the threshold, freshness and consent are not the server\'s to decide', () => {
  let proxy: MaliciousGateway;
  let alice: Person;
  let bob: Person;
  let carol: Person;
  /** Bob's client, configured with the digest service's real identity key (as its operator publishes it). */
  let client: BilClient;
  let serviceIdentityKey: string;
  let chatId: string;
  const names = () => ({ [alice.userId]: 'Alice', [bob.userId]: 'Bob', [carol.userId]: 'Carol' });
  const yes = () => true;
  const posted = () => proxy.log.filter((e) => e.method === 'POST' && e.path === '/v1/digests' && e.userId === bob.userId);

  beforeAll(async () => {
    proxy = await startProxy(inject('gatewayUrl'));
    [alice, bob, carol] = await registerAll(proxy.url, 'alice', 'bob', 'carol');
    serviceIdentityKey = (await serverGet(alice, '/v1/digest/key')).service_identity_key;
    client = new BilClient({ baseUrl: proxy.url, keyStore: bob.store, digest: { serviceIdentityKey } });
    chatId = (await alice.client.chats.createPersonal(bob.userId)).chatId;
    for (let i = 0; i < 25; i++) await alice.client.messages.send(chatId, `Launch note ${i}: Bob, can you check the pricing page ${i}?`);
  });
  afterAll(async () => {
    await proxy?.close();
  });

  it('a digest key signed by another identity is refused, and nothing is sealed to it', async () => {
    const evil = generateIdentityKey();
    const keys = await generateDeviceKeys();
    const now = Date.now();
    const signed = await signServiceKey({ identity: evil, service: 'digest', encryptionKey: keys.encryption.spki, issuedAt: now, expiresAt: now + 86_400_000 });
    const swap = proxy.onResponse('swap the digest key', { method: 'GET', path: paths.key, userId: bob.userId }, (res) => ({
      body: { ...res.body, key: { ...res.body.key, key_id: signed.payload.key_id, signed_key: signed }, service_identity_key: toBase64Url(evil.publicKey) },
    }));
    const before = posted().length;
    const err = await failure(client.digest([chatId], { names: names(), confirm: yes }));
    expect(err).toBeInstanceOf(BilStateError);
    expect(err.code).toBe('digest_key_untrusted');
    expect(swap.fired).toBeGreaterThan(0);
    expect(posted().length).toBe(before);
    swap.remove();
  });

  it('a threshold lowered to 1 by the server is ignored: the client\'s own (20) decides', async () => {
    await client.messages.markRead(chatId, 20); // 5 unread
    const lower = (res: { body: Json }) => (res.body && 'min_unread_messages' in res.body ? { body: { ...res.body, min_unread_messages: 1 } } : undefined);
    const onKey = proxy.onResponse('threshold 1 (key)', { method: 'GET', path: paths.key, userId: bob.userId }, lower);
    const onPolicy = proxy.onResponse('threshold 1 (policy)', { method: 'GET', path: paths.policy, userId: bob.userId }, lower);
    const before = posted().length;
    const [outcome] = await client.digest([chatId], { names: names(), confirm: yes });
    expect(outcome!.kind).toBe('messages');
    expect(await client.digests.offered(await client.unread())).toEqual([]);
    expect((await client.digests.policy(chatId)).minUnread).toBe(20);
    expect(onKey.fired + onPolicy.fired).toBeGreaterThan(0);
    expect(posted().length).toBe(before);
    onKey.remove();
    onPolicy.remove();
    for (let i = 0; i < 20; i++) await alice.client.messages.send(chatId, `More launch notes ${i}`);
  });

  it('a sealed transcript replayed under a new request id is refused', async () => {
    const [honest] = await client.digest([chatId], { names: names(), confirm: yes });
    expect(honest).toMatchObject({ kind: 'summary', on: 'server' });
    const earlier = JSON.parse(posted().at(-1)!.forwardedBody) as Json;
    // The server re-posts the earlier box under a new request id of its own (it holds Bob's token)...
    const token = (await bob.store.load())!.tokens!.accessToken;
    const res = await fetch(`${inject('gatewayUrl')}/v1/digests`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ request_id: randomUUID(), transcripts: earlier.transcripts }),
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as Json).error.code).toBe('invalid_sealed_transcript');
    // ...and swaps it into Bob's next request.
    const swap = proxy.onRequest('old transcript, new request', { method: 'POST', path: paths.digests, userId: bob.userId, times: 1 }, (req) => ({
      ...req.body,
      transcripts: earlier.transcripts,
    }));
    const err = await failure(client.digest([chatId], { names: names() }));
    expect(swap.fired).toBe(1);
    expect(err.code).toBe('invalid_sealed_transcript');
  });

  it("an earlier request's result is refused as the answer to a new one", async () => {
    const ready = proxy.log.filter((e) => e.method === 'GET' && paths.digest.test(e.path) && e.userId === bob.userId && e.clientBody.includes('"ready"')).at(-1)!;
    const stale = JSON.parse(ready.clientBody) as Json;
    const replay = proxy.onResponse('earlier results', { method: 'GET', path: paths.digest, userId: bob.userId }, (res) => ({
      body: { digest: { ...stale.digest, request_id: res.body.digest.request_id } },
    }));
    const err = await failure(client.digest([chatId], { names: names() }));
    expect(replay.fired).toBeGreaterThan(0);
    expect(err).toBeInstanceOf(BilStateError);
    expect(err.code).toBe('digest_result_untrusted');
    replay.remove();
  });

  describe("a member's opt-out, once seen, is not undone by the server", () => {
    const model = new FakeOpenAI('byo-key', 'byo-model');
    let groupId: string;
    let optIn: Json;
    const byo = () => ({ on: 'model' as const, model: { apiKey: 'byo-key', baseURL: model.url, model: 'byo-model' }, names: names(), confirm: yes });

    beforeAll(async () => {
      await model.start();
      groupId = (await alice.client.chats.createGroup({ title: 'Launch crew', members: [bob.userId, carol.userId] })).chatId;
      // Carol first allows digests (version n), then leaves her messages out (a higher version).
      await eventually(() => carol.client.digests.setConsent(groupId, true), 20_000, 200);
      optIn = JSON.parse(proxy.log.filter((e) => e.method === 'PUT' && paths.consent.test(e.path) && e.userId === carol.userId).at(-1)!.forwardedBody).consent;
      await carol.client.digests.setConsent(groupId, false);
      for (let i = 0; i < 20; i++) await alice.client.messages.send(groupId, `Alice's launch plan ${i}: the pricing page ships Thursday.`);
      for (let i = 0; i < 5; i++) await carol.client.messages.send(groupId, `Carol's note ${i}: ${CAROL_MARKER}`);
      // Bob's client sees (and pins) Carol's opt-out.
      expect((await client.digests.policy(groupId)).excludedUserIds).toEqual([carol.userId]);
    });
    afterAll(async () => {
      await model.stop();
    });

    it.each([
      ['stripped', () => []],
      ['rolled back to her earlier opt-in', () => [optIn]],
    ])('%s: her messages still stay on the device', async (_, consents) => {
      const rule = proxy.onResponse('consent', { method: 'GET', path: paths.policy, userId: bob.userId }, (res) => ({
        body: { ...res.body, policy: { ...res.body.policy, consents: consents() } },
      }));
      const seen = model.seen.length;
      const [outcome] = await client.digest([groupId], byo());
      expect(rule.fired).toBeGreaterThan(0);
      expect(outcome).toMatchObject({ kind: 'summary', on: 'model', messageCount: 20, excludedCount: 5 });
      const sent = JSON.stringify(model.seen.slice(seen));
      expect(sent).toContain('pricing page');
      expect(sent).not.toContain(CAROL_MARKER);
      expect((await client.digests.policy(groupId)).excludedUserIds).toEqual([carol.userId]);
      rule.remove();
    });

    it('a statement the server forged (not signed by a device of hers) counts for nothing', async () => {
      const forged = { ...optIn, payload: { ...optIn.payload, include: true, version: Number.MAX_SAFE_INTEGER } };
      const rule = proxy.onResponse('forged opt-in', { method: 'GET', path: paths.policy, userId: bob.userId }, (res) => ({
        body: { ...res.body, policy: { ...res.body.policy, consents: [forged] } },
      }));
      const [outcome] = (await client.digest([groupId], byo())) as DigestSummary[];
      expect(rule.fired).toBeGreaterThan(0);
      expect(outcome).toMatchObject({ messageCount: 20, excludedCount: 5 });
      rule.remove();
    });
  });
});
