// Freshness of digests (issue 13): a sealed transcript belongs to one request,
// chat and device (its sealed-box context and its plaintext say so), and the
// sealed summary echoes them with the transcript's hash and seq range. A
// transcript sealed for an earlier request does not pass for a new one, at the
// API (header context) or at the worker (the box does not open under another
// context; the plaintext must name the job's request); v1 is refused.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchPlanning } from '@bil/testkit';
import { encodeTranscript, parseSummary, transcriptSha256 } from '@bil/summarizer';
import { startWorker, type WorkerProcess } from '../src/system.js';
import { newChat, newUser, openResultBytes, sealTranscript, sealed, startHarness, transcriptFor, userIdsOf, waitForStatus, refusal, type Harness, type TestUser } from './support.js';

let h: Harness;
let worker: WorkerProcess;
let alice: TestUser;
let bob: TestUser;
let chatId: string;

beforeAll(async () => {
  h = await startHarness('digestfresh', { DIGEST_RATE_PER_MINUTE: '1000' });
  [alice, bob] = await Promise.all([newUser(h, 'Alice Martin'), newUser(h, 'Bob Chen')]);
  chatId = await newChat(h, [alice, bob], 'Website launch');
  worker = startWorker(h.config, h.logs.logger, h.core);
});

afterAll(async () => {
  await worker?.stop();
  await h?.close();
});

describe('digest freshness', () => {
  it('the summary echoes request, chat, device, the transcript hash and the range the client read', async () => {
    const requestId = randomUUID();
    // The client read seqs 1..20; consent or deletions left 14 of them in the transcript.
    const transcript = transcriptFor(alice, requestId, chatId, launchPlanning('', userIdsOf(alice, bob)), { fromSeq: 1, toSeq: 20 });
    await h.api.app.requestDigest(alice.actor, requestId, [{ chatId, sealed: await sealTranscript(h, alice, transcript) }]);
    const ready = await waitForStatus(h, alice, requestId, 'ready');
    const bytes = await openResultBytes(h, alice, requestId, chatId, ready.results[0]!.sealed);
    const expected = { requestId, chatId, deviceId: alice.deviceId, transcriptSha256: await transcriptSha256(encodeTranscript(transcript)), fromSeq: 1, toSeq: 20 };
    expect(parseSummary(bytes, expected)).toMatchObject({ ...expected, messageCount: 14, excludedCount: 0, method: 'extractive' });
    // What the client checks: the same summary does not pass for another transcript, range or request.
    expect(() => parseSummary(bytes, { ...expected, transcriptSha256: 'AAAA' })).toThrow(/transcript_sha256/);
    expect(() => parseSummary(bytes, { ...expected, toSeq: 14 })).toThrow(/to_seq/);
    expect(() => parseSummary(bytes, { ...expected, requestId: randomUUID() })).toThrow(/request_id/);
  });

  it('the API refuses a transcript sealed for an earlier request id, resubmitted under a new one', async () => {
    const first = randomUUID();
    const box = await sealed(h, alice, first, chatId, launchPlanning());
    await h.api.app.requestDigest(alice.actor, first, [box]);
    await waitForStatus(h, alice, first, 'ready');
    const replay = await refusal(h.api.app.requestDigest(alice.actor, randomUUID(), [box]));
    expect(replay.code).toBe('invalid_sealed_transcript');
    expect(replay.details).toMatchObject({ chat_id: chatId });
  });

  it('the worker does not open a resubmitted box whose header context was rewritten to the new request', async () => {
    const box = JSON.parse((await sealed(h, alice, randomUUID(), chatId, launchPlanning())).sealed) as { header: { context: string } };
    const requestId = randomUUID();
    box.header.context = `${requestId}:${chatId}:${alice.deviceId}`;
    await h.api.app.requestDigest(alice.actor, requestId, [{ chatId, sealed: JSON.stringify(box) }]);
    expect((await waitForStatus(h, alice, requestId, 'failed')).failureReason).toBe('undecryptable');
  });

  it('the worker refuses a transcript whose plaintext names another request, chat or device', async () => {
    const requestId = randomUUID();
    const conversation = launchPlanning();
    const stale = transcriptFor(alice, randomUUID(), chatId, conversation);
    // Sealed with this request's context, but the plaintext is the earlier request's.
    await h.api.app.requestDigest(alice.actor, requestId, [{ chatId, sealed: await sealTranscript(h, alice, { ...stale, requestId }, { plaintext: encodeTranscript(stale) }) }]);
    expect((await waitForStatus(h, alice, requestId, 'failed')).failureReason).toBe('invalid_transcript');

    const other = randomUUID();
    const bobs = transcriptFor(bob, other, chatId, conversation);
    await h.api.app.requestDigest(alice.actor, other, [
      { chatId, sealed: await sealTranscript(h, alice, transcriptFor(alice, other, chatId, conversation), { plaintext: encodeTranscript(bobs) }) },
    ]);
    expect((await waitForStatus(h, alice, other, 'failed')).failureReason).toBe('invalid_transcript');
  });

  it('a v1 transcript is refused', async () => {
    const requestId = randomUUID();
    const v1 = new TextEncoder().encode(
      JSON.stringify({
        type: 'bil.digest-transcript.v1',
        chat_id: chatId,
        title: 'Website launch',
        messages: launchPlanning().messages.map((m) => ({ seq: m.seq, sender: m.sender, sent_at: m.sentAt, text: m.text })),
      }),
    );
    await h.api.app.requestDigest(alice.actor, requestId, [{ chatId, sealed: await sealTranscript(h, alice, transcriptFor(alice, requestId, chatId, launchPlanning()), { plaintext: v1 }) }]);
    const failed = await waitForStatus(h, alice, requestId, 'failed');
    expect(failed.failureReason).toBe('invalid_transcript');
    expect(failed.results).toEqual([]);
  });
});
