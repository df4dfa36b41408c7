// The digest service end to end on real PostgreSQL, Redis and NATS: the API
// (in-process, and once through gRPC) with a worker running the built-in
// extractive summariser.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { credentials } from '@grpc/grpc-js';
import { ServiceAuth, callUnary, contextStream } from '@bil/runtime';
import { loadDigestProto } from '@bil/proto';
import { eventually, expectSnapshotsEqualReplay } from '@bil/testkit';
import type { GetDigestKeyResponse__Output } from '@bil/proto/gen/bil/digest/v1/GetDigestKeyResponse';
import type { RequestDigestResponse__Output } from '@bil/proto/gen/bil/digest/v1/RequestDigestResponse';
import type { GetDigestResponse__Output } from '@bil/proto/gen/bil/digest/v1/GetDigestResponse';
import type { SetDigestPolicyResponse__Output } from '@bil/proto/gen/bil/digest/v1/SetDigestPolicyResponse';
import { launchPlanning, reunionFr } from '@bil/testkit';
import { encodeTranscript, transcriptSha256 } from '@bil/summarizer';
import { startWorker, type WorkerProcess } from '../src/system.js';
import { KEYS_STREAM, keysDecider } from '../src/domain/keys/keys.js';
import { digestDecider, digestStream } from '../src/domain/digest/digest.js';
import { policyDecider, policyStream } from '../src/domain/policy/policy.js';
import { consentDecider } from '../src/domain/consent/consent.js';
import { MARKER, bullKeys, findMarker, newChat, newUser, openResult, removeMember, sealed, startHarness, transcriptFor, userIdsOf, waitForStatus, refusal, type Harness, type TestUser } from './support.js';

let h: Harness;
let worker: WorkerProcess | undefined;
let alice: TestUser;
let bob: TestUser;
let carol: TestUser;

beforeAll(async () => {
  h = await startHarness('digest', { DIGEST_RATE_PER_MINUTE: '3', DIGEST_DAILY_CAP: '6' });
  [alice, bob, carol] = await Promise.all([newUser(h, 'Alice Martin'), newUser(h, 'Bob Chen'), newUser(h, 'Carol Diaz')]);
});

afterAll(async () => {
  await worker?.stop();
  await h?.close();
});

describe('digest service', () => {
  it('publishes a key signed by the service identity key, and the threshold', async () => {
    const { key, serviceIdentityKey, settings } = await h.api.app.getKey();
    const signed = JSON.parse(key.signedKey) as { payload: { key_id: string; service: string } };
    expect(signed.payload.key_id).toBe(key.keyId);
    expect(signed.payload.service).toBe('digest');
    expect(serviceIdentityKey).toBe(h.core.keys.identityKey);
    expect(settings.minUnread).toBe(20);
  });

  it('summarises sealed transcripts, seals each summary to the requesting device, and stores only sealed data', async () => {
    const chat1 = await newChat(h, [alice, bob, carol], 'Website launch');
    const chat2 = await newChat(h, [alice, carol], '');
    const requestId = randomUUID();
    const launch = launchPlanning(`Remember ${MARKER}.`, userIdsOf(alice, bob, carol));
    const transcripts = [await sealed(h, alice, requestId, chat1, launch), await sealed(h, alice, requestId, chat2, reunionFr())];
    const first = await h.api.app.requestDigest(alice.actor, requestId, transcripts);
    expect(first.created).toBe(true);
    expect(first.digest.status).toBe('pending');

    // Queued in Redis, sealed: the scan sees BullMQ's keys and no marker.
    expect((await bullKeys(h)).length).toBeGreaterThan(0);
    expect(await findMarker(h)).toEqual([]);

    // Repeating the request is idempotent: same request, nothing queued twice.
    const again = await h.api.app.requestDigest(alice.actor, requestId, transcripts);
    expect(again.created).toBe(false);
    // The backlog the workers would scale on: one job waiting (queued once).
    expect(await h.api.metrics.registry.getSingleMetricAsString('bil_digest_queue_jobs')).toContain('bil_digest_queue_jobs{state="waiting",service="digest"} 1');

    worker = startWorker(h.config, h.logs.logger, h.core);
    const ready = await waitForStatus(h, alice, requestId, 'ready');
    expect(ready.method).toBe('extractive');
    expect(ready.results.map((r) => r.chatId)).toEqual([chat1, chat2]);
    expect(Date.parse(ready.expiresAt) - Date.parse(ready.completedAt)).toBe(h.config.DIGEST_RESULT_TTL_MS);

    const s1 = await openResult(h, alice, requestId, chat1, ready.results[0]!.sealed);
    // It echoes the request, chat, device, the SHA-256 of the transcript bytes and the range.
    expect(s1).toMatchObject({
      type: 'bil.digest-summary.v2',
      request_id: requestId,
      chat_id: chat1,
      device_id: alice.deviceId,
      transcript_sha256: await transcriptSha256(encodeTranscript(transcriptFor(alice, requestId, chat1, launch))),
      from_seq: 1,
      to_seq: 14,
      message_count: 14,
      excluded_count: 0,
      language: 'en',
      method: 'extractive',
    });
    expect(s1.actions).toEqual(expect.arrayContaining([{ owner: 'Bob Chen', action: 'Bob, can you fix the Safari checkout bug by Wednesday?' }]));
    const s2 = await openResult(h, alice, requestId, chat2, ready.results[1]!.sealed);
    expect(s2.language).toBe('fr');

    // Only the requesting device can open it: Bob's device can't.
    await expect(openResult(h, bob, requestId, chat1, ready.results[0]!.sealed)).rejects.toThrow();

    // digest.v1.digest.ready went out once, without any sealed data.
    const stream = contextStream(h.nats.prefix, 'digest');
    const ready$ = await eventually(async () => {
      const info = await h.nats.jsm.streams.info(stream);
      return info.state.messages >= 2 ? info : undefined; // key.rotated + digest.ready
    });
    expect(ready$.state.messages).toBe(2);
    const msg = await h.nats.jsm.streams.getMessage(stream, { last_by_subj: `${h.nats.prefix}digest.v1.digest.ready` });
    expect(msg?.json()).toMatchObject({ requestId, userId: alice.userId, deviceId: alice.deviceId, chatIds: [chat1, chat2], method: 'extractive' });
    expect(msg?.string()).not.toContain('"sealed"');

    // The job left Redis; nothing anywhere holds the plaintext.
    await eventually(async () => !(await bullKeys(h)).some((k) => k.endsWith(`:${requestId}`)));
    expect(await findMarker(h)).toEqual([]);
  });

  it("someone else's request is not found", async () => {
    const chat = await newChat(h, [carol, bob]);
    const requestId = randomUUID();
    await h.api.app.requestDigest(carol.actor, requestId, [await sealed(h, carol, requestId, chat, launchPlanning())]);
    expect((await refusal(h.api.app.getDigest(bob.actor, requestId))).code).toBe('digest_not_found');
    expect((await refusal(h.api.app.requestDigest(bob.actor, requestId, [await sealed(h, bob, requestId, chat, launchPlanning())]))).code).toBe('request_id_taken');
  });

  it('refuses chats the caller is not a member of, and transcripts not sealed for this chat and device', async () => {
    const chat = await newChat(h, [alice, bob]);
    const other = await newChat(h, [alice, bob]);
    const id = randomUUID();
    const notMine = await refusal(h.api.app.requestDigest(carol.actor, id, [await sealed(h, carol, id, chat, launchPlanning())]));
    expect(notMine.code).toBe('chat_not_found');
    // Sealed for another chat, or by another device: refused without opening it.
    const wrongChat = await refusal(h.api.app.requestDigest(alice.actor, id, [{ chatId: chat, sealed: (await sealed(h, alice, id, other, launchPlanning())).sealed }]));
    expect(wrongChat.code).toBe('invalid_sealed_transcript');
    const wrongDevice = await refusal(h.api.app.requestDigest(alice.actor, id, [await sealed(h, bob, id, chat, launchPlanning())]));
    expect(wrongDevice.code).toBe('invalid_sealed_transcript');
  });

  it('any member can switch digests off: requests are refused until every switch-off is withdrawn', async () => {
    const chat = await newChat(h, [alice, bob, carol]);
    expect(await h.api.app.getPolicy(alice.actor, [chat])).toEqual([{ chatId: chat, enabled: true, disabledByMe: false, disabledByCount: 0 }]);
    await h.api.app.setPolicy(bob.actor, chat, false);
    await h.api.app.setPolicy(carol.actor, chat, false);
    expect(await h.api.app.getPolicy(alice.actor, [chat])).toEqual([{ chatId: chat, enabled: false, disabledByMe: false, disabledByCount: 2 }]);

    const id = randomUUID();
    const refused = await refusal(h.api.app.requestDigest(alice.actor, id, [await sealed(h, alice, id, chat, launchPlanning())]));
    expect(refused.code).toBe('digests_disabled');
    expect(refused.kind).toBe('failed_precondition');
    expect(refused.details).toEqual({ chat_ids: [chat] });

    // Alice can't withdraw Bob's choice; Bob withdraws his, Carol leaves the chat (hers goes with her).
    expect((await h.api.app.setPolicy(alice.actor, chat, true)).enabled).toBe(false);
    expect(await h.api.app.setPolicy(bob.actor, chat, true)).toEqual({ chatId: chat, enabled: false, disabledByMe: false, disabledByCount: 1 });
    await removeMember(h, chat, carol);
    await eventually(async () => (await h.api.app.getPolicy(alice.actor, [chat]))[0]?.enabled === true);
    // A non-member can neither set nor see the policy.
    expect((await refusal(h.api.app.setPolicy(carol.actor, chat, false))).code).toBe('chat_not_found');
    expect(await h.api.app.getPolicy(carol.actor, [chat])).toEqual([]);
  });

  it('a switch-off after the request was accepted fails it with digests_disabled', async () => {
    await worker?.stop();
    worker = undefined;
    const chat = await newChat(h, [bob, carol]);
    const requestId = randomUUID();
    await h.api.app.requestDigest(bob.actor, requestId, [await sealed(h, bob, requestId, chat, launchPlanning())]);
    await h.api.app.setPolicy(carol.actor, chat, false);
    worker = startWorker(h.config, h.logs.logger, h.core);
    expect((await waitForStatus(h, bob, requestId, 'failed')).failureReason).toBe('digests_disabled');
  });

  it('rate limit per minute and daily cap answer rate_limited with retry-after', async () => {
    const dave = await newUser(h, 'Dave');
    const chats = await Promise.all([1, 2, 3, 4].map(() => newChat(h, [dave, alice])));
    const ask = async (ids: string[], id = randomUUID()) => h.api.app.requestDigest(dave.actor, id, await Promise.all(ids.map((c) => sealed(h, dave, id, c, launchPlanning()))));
    await ask([chats[0]!, chats[1]!, chats[2]!, chats[3]!]); // 4 of 6 chats today
    await ask([chats[0]!, chats[1]!]); // 6 of 6
    const daily = await refusal(ask([chats[2]!]));
    expect(daily.code).toBe('rate_limited');
    expect(daily.details).toMatchObject({ limit: 'daily' });
    expect(Number(daily.details.retry_after_seconds)).toBeGreaterThan(0);

    const erin = await newUser(h, 'Erin');
    const chat = await newChat(h, [erin, alice]);
    const one = async (id = randomUUID()) => h.api.app.requestDigest(erin.actor, id, [await sealed(h, erin, id, chat, launchPlanning())]);
    await one();
    await one();
    await one();
    const perMinute = await refusal(one());
    expect(perMinute.code).toBe('rate_limited');
    expect(perMinute.details).toMatchObject({ limit: 'per_minute' });
  });

  it('after a key rotation, requests sealed to the old key still open; an unknown key is refused', async () => {
    const chat = await newChat(h, [carol, alice]);
    const before = await h.api.app.getKey();
    const requestId = randomUUID();
    const sealedOld = await sealed(h, carol, requestId, chat, launchPlanning());
    const rotated = await h.core.keys.rotate();
    expect(rotated.keyId).not.toBe(before.key.keyId);
    expect((await h.api.app.getKey()).key.keyId).toBe(rotated.keyId);
    await h.api.app.requestDigest(carol.actor, requestId, [sealedOld]);
    expect((await waitForStatus(h, carol, requestId, 'ready')).results).toHaveLength(1);

    const other = randomUUID();
    const forged = JSON.parse((await sealed(h, carol, other, chat, launchPlanning())).sealed) as { header: { key_id: string } };
    forged.header.key_id = 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';
    const unknown = await refusal(h.api.app.requestDigest(carol.actor, other, [{ chatId: chat, sealed: JSON.stringify(forged) }]));
    expect(unknown.code).toBe('digest_key_unknown');
  });

  it('a tampered transcript fails as undecryptable; results expire and are deleted', async () => {
    const chat = await newChat(h, [bob, alice]);
    const bad = randomUUID();
    const box = JSON.parse((await sealed(h, bob, bad, chat, launchPlanning())).sealed) as { ciphertext: string };
    box.ciphertext = `${box.ciphertext.slice(0, -4)}AAAA`;
    await h.api.app.requestDigest(bob.actor, bad, [{ chatId: chat, sealed: JSON.stringify(box) }]);
    expect((await waitForStatus(h, bob, bad, 'failed')).failureReason).toBe('undecryptable');

    const good = randomUUID();
    await h.api.app.requestDigest(alice.actor, good, [await sealed(h, alice, good, chat, launchPlanning())]);
    await waitForStatus(h, alice, good, 'ready');
    const swept = await h.api.app.sweep(Date.now() + h.config.DIGEST_RESULT_TTL_MS + 1000);
    expect(swept.expired).toBeGreaterThanOrEqual(1);
    const expired = await h.api.app.getDigest(alice.actor, good);
    expect(expired.status).toBe('expired');
    expect(expired.results).toEqual([]);
    expect(await h.core.db.query(`SELECT 1 FROM digest.results WHERE request_id = ?`, [good])).toEqual([]);
  });

  it('serves the same over gRPC (what the gateway calls)', async () => {
    const proto = loadDigestProto();
    const client = new proto.bil.digest.v1.DigestService(`127.0.0.1:${h.api.grpcPort}`, credentials.createInsecure(), ServiceAuth.fromEnv('gateway', h.env.serviceEnv).clientOptions('digest', {}));
    try {
      const key = await callUnary<object, GetDigestKeyResponse__Output>(client, client.GetDigestKey as never, {});
      expect(key.key?.keyId).toBe((await h.api.app.getKey()).key.keyId);
      expect(key.minUnreadMessages).toBe(20);
      expect(key.modelConfigured).toBe(false);
      const chat = await newChat(h, [carol, bob]);
      const requestId = randomUUID();
      const res = await callUnary<object, RequestDigestResponse__Output>(client, client.RequestDigest as never, {
        actor: carol.actor,
        requestId,
        transcripts: [{ ...(await sealed(h, carol, requestId, chat, launchPlanning())), messageCount: 14 }],
      });
      expect(res.digest?.status).toBe('DIGEST_STATUS_PENDING');
      const done = await eventually(async () => {
        const r = await callUnary<object, GetDigestResponse__Output>(client, client.GetDigest as never, { actor: carol.actor, requestId });
        return r.digest?.status === 'DIGEST_STATUS_READY' ? r.digest : undefined;
      }, 15_000, 50);
      expect(done.results).toHaveLength(1);
      expect(done.failureReason).toBe('DIGEST_FAILURE_REASON_UNSPECIFIED');
      const policy = await callUnary<object, SetDigestPolicyResponse__Output>(client, client.SetDigestPolicy as never, { actor: bob.actor, chatId: chat, enabled: false });
      expect(policy.policy).toMatchObject({ chatId: chat, enabled: false, disabledByMe: true, disabledByCount: 1 });
      const next = randomUUID();
      const refused = await refusal(callUnary(client, client.RequestDigest as never, { actor: carol.actor, requestId: next, transcripts: [await sealed(h, carol, next, chat, launchPlanning())] }));
      expect(refused.code).toBe('digests_disabled');
      expect((await refusal(callUnary(client, client.GetDigest as never, { actor: null, requestId }))).code).toBe('missing_actor');
    } finally {
      client.close();
    }
  });

  it('rebuilt projections equal the live ones', async () => {
    const snapshot = async () => ({
      digests: await h.core.db.query(`SELECT * FROM digest.digests ORDER BY request_id`),
      optOuts: await h.core.db.query(`SELECT * FROM digest.policy_opt_outs ORDER BY chat_id, user_id`),
    });
    const live = await snapshot();
    await h.core.store.rebuildProjections();
    expect(await snapshot()).toEqual(live);
  });

  it('keeps every stored digest, keys, policy and consent state equal to the replay of its events, under the deciders\' state version', async () => {
    const deciders = { [KEYS_STREAM]: keysDecider, [digestStream('')]: digestDecider, [policyStream('')]: policyDecider, 'consent-': consentDecider };
    expect(await expectSnapshotsEqualReplay(h.core.db, 'digest', deciders)).toBeGreaterThan(5);
  });

  it('never stored or logged the plaintext', async () => {
    expect(h.logs.lines.length).toBeGreaterThan(10);
    expect(await findMarker(h)).toEqual([]);
  });
});
