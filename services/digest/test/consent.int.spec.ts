// Signed digest consent on the digest service (real PostgreSQL, NATS, gRPC):
// SetDigestConsent checks the statement (shape, chat, the caller's own device,
// its signature under the device's signing key from the local directory,
// membership, a strictly higher version), GetDigestPolicy lists the current
// members' newest statements, DigestConsentChanged is published, the read
// model rebuilds to the same rows, and the worker (second line) leaves out the
// messages of members whose newest statement says include: false.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { credentials } from '@grpc/grpc-js';
import { ServiceAuth, callUnary, contextStream } from '@bil/runtime';
import { loadDigestProto } from '@bil/proto';
import { randomUUID } from 'node:crypto';
import { FakeOpenAI, eventually, launchPlanning } from '@bil/testkit';
import { signDigestConsent, type SignedDigestConsent } from '@bil/crypto/node';
import type { GetDigestPolicyResponse__Output } from '@bil/proto/gen/bil/digest/v1/GetDigestPolicyResponse';
import type { SetDigestConsentResponse__Output } from '@bil/proto/gen/bil/digest/v1/SetDigestConsentResponse';
import { startWorker, type WorkerProcess } from '../src/system.js';
import { newChat, newUser, openResult, removeMember, sealed, startHarness, userIdsOf, waitForStatus, refusal, type Harness, type TestUser } from './support.js';

let h: Harness;
let alice: TestUser;
let bob: TestUser;
let mallory: TestUser;
let chatId: string;

const sign = (u: TestUser, include: boolean, version: number, chat = chatId) =>
  signDigestConsent({ chatId: chat, device: { userId: u.userId, deviceId: u.deviceId, keys: u.keys }, include, version, createdAt: Date.now() });

beforeAll(async () => {
  h = await startHarness('digestconsent');
  [alice, bob, mallory] = await Promise.all([newUser(h, 'Alice'), newUser(h, 'Bob'), newUser(h, 'Mallory')]);
  chatId = await newChat(h, [alice, bob]);
});

afterAll(async () => {
  await worker?.stop();
  await fake?.stop();
  await h?.close();
});

let worker: WorkerProcess | undefined;
let fake: FakeOpenAI | undefined;

describe('signed digest consent', () => {
  it('stores a member’s statement over gRPC and lists it in the policy; publishes digest.v1.consent.changed', async () => {
    const proto = loadDigestProto();
    const client = new proto.bil.digest.v1.DigestService(`127.0.0.1:${h.api.grpcPort}`, credentials.createInsecure(), ServiceAuth.fromEnv('gateway', h.env.serviceEnv).clientOptions('digest', {}));
    try {
      const statement = sign(alice, false, 1000);
      const res = await callUnary<object, SetDigestConsentResponse__Output>(client, client.SetDigestConsent as never, {
        actor: alice.actor,
        chatId,
        consent: JSON.stringify(statement),
      });
      expect(JSON.parse(res.consent)).toEqual(statement);
      const policy = await callUnary<object, GetDigestPolicyResponse__Output>(client, client.GetDigestPolicy as never, { actor: bob.actor, chatIds: [chatId] });
      expect(policy.policies[0]!.consents.map((c) => JSON.parse(c) as SignedDigestConsent)).toEqual([statement]);
      const bad = await refusal(callUnary(client, client.SetDigestConsent as never, { actor: alice.actor, chatId, consent: '{"payload":' }));
      expect(bad.code).toBe('invalid_consent');
      expect(bad.kind).toBe('invalid_argument');
    } finally {
      client.close();
    }
    const stream = contextStream(h.nats.prefix, 'digest');
    const subject = `${h.nats.prefix}digest.v1.consent.changed`;
    await eventually(async () => ((await h.nats.jsm.streams.info(stream, { subjects_filter: subject })).state.subjects?.[subject] ?? 0) === 1);
    const msg = await h.nats.jsm.streams.getMessage(stream, { last_by_subj: subject });
    expect(msg!.json()).toMatchObject({ chatId, userId: alice.userId, deviceId: alice.deviceId, include: false, version: '1000' });
  });

  it('keeps only a strictly higher version; the same statement again is a repeat', async () => {
    const first = sign(bob, false, 2000);
    expect(JSON.parse(await h.api.consents.set(bob.actor, chatId, JSON.stringify(first)))).toEqual(first);
    expect(JSON.parse(await h.api.consents.set(bob.actor, chatId, JSON.stringify(first)))).toEqual(first);
    const older = await refusal(h.api.consents.set(bob.actor, chatId, JSON.stringify(sign(bob, true, 1999))));
    expect([older.code, older.kind]).toEqual(['consent_stale', 'failed_precondition']);
    expect((await refusal(h.api.consents.set(bob.actor, chatId, JSON.stringify(sign(bob, true, 2000))))).code).toBe('consent_stale');
    const newer = sign(bob, true, 2001);
    await h.api.consents.set(bob.actor, chatId, JSON.stringify(newer));
    const rows = await h.core.db.query<{ include: boolean; version: string }>(`SELECT include, version FROM digest.consents WHERE chat_id = ? AND user_id = ?`, [chatId, bob.userId]);
    expect(rows).toEqual([{ include: true, version: '2001' }]);
  });

  it('refuses statements that are not the caller’s own, signed by their device, for this chat', async () => {
    const other = await newChat(h, [alice, bob]);
    const good = sign(alice, false, 3000);
    const tampered = { ...good, payload: { ...good.payload, include: true } };
    const byBobsKey = signDigestConsent({ chatId, device: { userId: alice.userId, deviceId: alice.deviceId, keys: bob.keys }, include: false, version: 3001, createdAt: 1 });
    const cases: Array<[string, unknown, string]> = [
      ['not JSON', 'nope', chatId],
      ['extra member', JSON.stringify({ ...good, extra: 1 }), chatId],
      ['too large', JSON.stringify({ ...good, signature: 'x'.repeat(3000) }), chatId],
      ['another chat in the path', JSON.stringify(good), other],
      ['another member’s statement', JSON.stringify(sign(bob, false, 3000)), chatId],
      ['tampered payload', JSON.stringify(tampered), chatId],
      ['signed with another device’s key', JSON.stringify(byBobsKey), chatId],
    ];
    for (const [why, consent, chat] of cases) {
      const err = await refusal(h.api.consents.set(alice.actor, chat, consent));
      expect(err.code, why).toBe('invalid_consent');
    }
    expect((await refusal(h.api.consents.set(alice.actor, 'x', JSON.stringify(good)))).code).toBe('invalid_chat_id');
  });

  it('refuses a non-member with chat_not_found', async () => {
    const err = await refusal(h.api.consents.set(mallory.actor, chatId, JSON.stringify(sign(mallory, false, 1))));
    expect([err.code, err.kind]).toEqual(['chat_not_found', 'not_found']);
  });

  it('stops listing the statement of a member who left (it stays stored)', async () => {
    const carol = await newUser(h, 'Carol');
    const chat = await newChat(h, [alice, carol]);
    await h.api.consents.set(carol.actor, chat, JSON.stringify(sign(carol, false, 10, chat)));
    expect((await h.api.consents.ofCurrentMembers([chat])).get(chat)).toHaveLength(1);
    await removeMember(h, chat, carol);
    expect((await h.api.consents.ofCurrentMembers([chat])).get(chat)).toBeUndefined();
    expect(await h.core.db.query(`SELECT 1 FROM digest.consents WHERE chat_id = ? AND user_id = ?`, [chat, carol.userId])).toHaveLength(1);
  });

  it('rebuilt consents equal the live ones', async () => {
    const snapshot = () => h.core.db.query(`SELECT * FROM digest.consents ORDER BY chat_id, user_id`);
    const live = await snapshot();
    expect(live.length).toBeGreaterThanOrEqual(3);
    await h.core.store.rebuildProjections();
    expect(await snapshot()).toEqual(live);
  });

  it('the worker leaves out the messages of members whose newest statement says include: false, and counts them', async () => {
    fake = await new FakeOpenAI().start();
    worker = startWorker(h.workerConfig({ OPENAI_API_KEY: fake.apiKey, OPENAI_BASE_URL: fake.url, OPENAI_MODEL: fake.model }), h.logs.logger, h.core);
    const [am, bc, cd] = await Promise.all([newUser(h, 'Alice Martin'), newUser(h, 'Bob Chen'), newUser(h, 'Carol Diaz')]);
    const chat = await newChat(h, [am, bc, cd], 'Website launch');
    await h.api.consents.set(bc.actor, chat, JSON.stringify(sign(bc, false, 1, chat)));
    // Carol opted out, then back in: the newest statement counts.
    await h.api.consents.set(cd.actor, chat, JSON.stringify(sign(cd, false, 1, chat)));
    await h.api.consents.set(cd.actor, chat, JSON.stringify(sign(cd, true, 2, chat)));

    // A client that ignored Bob's opt-out: every message, Bob's marked.
    const BOB = 'bob-only-phrase-5521';
    const conversation = launchPlanning('', userIdsOf(am, bc, cd));
    conversation.messages = conversation.messages.map((m) => (m.senderUserId === bc.userId ? { ...m, text: `${m.text} ${BOB}` } : m));
    const bobs = conversation.messages.filter((m) => m.senderUserId === bc.userId).length;
    expect(bobs).toBe(5);
    const requestId = randomUUID();
    await h.api.app.requestDigest(am.actor, requestId, [await sealed(h, am, requestId, chat, conversation)]);
    const ready = await waitForStatus(h, am, requestId, 'ready');
    const summary = await openResult(h, am, requestId, chat, ready.results[0]!.sealed);
    expect(summary).toMatchObject({ message_count: 14 - bobs, excluded_count: bobs, from_seq: 1, to_seq: 14, method: 'llm' });
    const prompt = JSON.stringify(fake.seen.at(-1)!.messages);
    expect(prompt).not.toContain(BOB);
    expect(prompt).not.toContain('Bob Chen:');
    expect(prompt).toContain('Carol Diaz');

    // Only opted-out members' messages: a summary of 0 messages, without calling the model.
    const calls = fake.seen.length;
    const onlyBob = { ...conversation, messages: conversation.messages.filter((m) => m.senderUserId === bc.userId) };
    const second = randomUUID();
    await h.api.app.requestDigest(am.actor, second, [await sealed(h, am, second, chat, onlyBob)]);
    const done = await waitForStatus(h, am, second, 'ready');
    const empty = await openResult(h, am, second, chat, done.results[0]!.sealed);
    expect(empty).toMatchObject({ message_count: 0, excluded_count: bobs, method: 'extractive' });
    expect(JSON.stringify(empty)).not.toContain(BOB);
    expect(fake.seen.length).toBe(calls);
  });
});
