// The worker with the model summariser, against a fake OpenAI-compatible HTTP
// server on 127.0.0.1 (a real socket; the real `openai` SDK on the other
// side): request format, 429 then success, 500 retries (in the SDK, then as
// job retries with backoff), timeouts, a refusing endpoint, long transcripts
// in parts, and an answer that is not JSON.
import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startWorker, type WorkerProcess } from '../src/system.js';
import { COMBINE_PROMPT, SUMMARY_PROMPT } from '@bil/summarizer';
import { FakeOpenAI, MODEL_SUMMARY, launchPlanning } from '@bil/testkit';
import { MARKER, findMarker, newChat, newUser, openResult, sealed, startHarness, waitForStatus, type Harness, type TestUser } from './support.js';

let h: Harness;
let fake: FakeOpenAI;
let worker: WorkerProcess | undefined;
let alice: TestUser;
let bob: TestUser;

beforeAll(async () => {
  h = await startHarness('digestllm', { DIGEST_RATE_PER_MINUTE: '1000' });
  fake = await new FakeOpenAI().start();
  [alice, bob] = await Promise.all([newUser(h, 'Alice Martin'), newUser(h, 'Bob Chen')]);
});

afterEach(async () => {
  await worker?.stop();
  worker = undefined;
  fake.seen.length = 0;
  fake.script.length = 0;
  fake.fallback = { kind: 'ok' };
});

afterAll(async () => {
  await worker?.stop();
  await fake?.stop();
  await h?.close();
});

// Job attempts (3) and backoff (50 ms) are job options, set by the API process when it enqueues (TEST_SETTINGS).
function runWorker(settings: Record<string, string> = {}) {
  const config = h.workerConfig({
    OPENAI_API_KEY: fake.apiKey,
    OPENAI_BASE_URL: fake.url,
    OPENAI_MODEL: fake.model,
    OPENAI_MAX_RETRIES: '2',
    OPENAI_TIMEOUT_MS: '5000',
    ...settings,
  });
  worker = startWorker(config, h.logs.logger, h.core);
}

async function request(marker = ''): Promise<{ requestId: string; chatId: string }> {
  const chatId = await newChat(h, [alice, bob], 'Website launch');
  const requestId = randomUUID();
  await h.api.app.requestDigest(alice.actor, requestId, [await sealed(h, alice, requestId, chatId, launchPlanning(marker))]);
  return { requestId, chatId };
}

describe('digest worker with an OpenAI-compatible model', () => {
  it('sends the transcript with the prompt to the configured model and seals its summary', async () => {
    runWorker();
    const { requestId, chatId } = await request(MARKER);
    const ready = await waitForStatus(h, alice, requestId, 'ready');
    expect(ready.method).toBe('llm');
    expect(fake.seen).toHaveLength(1);
    const seen = fake.seen[0]!;
    expect(seen.authorization).toBe(`Bearer ${fake.apiKey}`);
    expect(seen.model).toBe('test-model');
    expect(seen.responseFormat).toEqual({ type: 'json_object' });
    expect(seen.messages[0]).toEqual({ role: 'system', content: SUMMARY_PROMPT });
    expect(seen.messages[0]!.content).toMatch(/language of the conversation/);
    expect(seen.messages[0]!.content).toMatch(/owner/);
    expect(seen.messages[1]!.content).toContain('Chat title: Website launch');
    expect(seen.messages[1]!.content).toContain('Bob Chen: Sure, I\'ll take it.');
    // The transcript left the boundary to the model endpoint only…
    expect(seen.messages[1]!.content).toContain(MARKER);
    const summary = await openResult(h, alice, requestId, chatId, ready.results[0]!.sealed);
    expect(summary).toMatchObject({ topic: MODEL_SUMMARY.topic, key_points: MODEL_SUMMARY.key_points, actions: MODEL_SUMMARY.actions, language: 'en', method: 'llm' });
    // …and is nowhere at rest or in the logs.
    expect(await findMarker(h)).toEqual([]);
  });

  it('429 then success: the SDK backs off and retries', async () => {
    runWorker();
    fake.script.push({ kind: 'status', status: 429 });
    const { requestId } = await request();
    expect((await waitForStatus(h, alice, requestId, 'ready')).method).toBe('llm');
    expect(fake.seen).toHaveLength(2);
  });

  it('500s: retried in the SDK, then as a job retry with backoff, until it works', async () => {
    runWorker({ OPENAI_MAX_RETRIES: '1' });
    fake.script.push(...Array.from({ length: 4 }, () => ({ kind: 'status' as const, status: 500 })));
    const { requestId } = await request();
    expect((await waitForStatus(h, alice, requestId, 'ready')).method).toBe('llm');
    expect(fake.seen).toHaveLength(5); // 2 per attempt, the 3rd attempt's first call works
  });

  it('500s on every attempt: failed, summarizer_unavailable', async () => {
    runWorker({ OPENAI_MAX_RETRIES: '1' });
    fake.fallback = { kind: 'status', status: 503 };
    const { requestId } = await request();
    const failed = await waitForStatus(h, alice, requestId, 'failed');
    expect(failed.failureReason).toBe('summarizer_unavailable');
    expect(failed.results).toEqual([]);
    expect(fake.seen).toHaveLength(6); // 3 job attempts of 2 calls
  });

  it('a slow model: timeout, then failed with reason timeout', async () => {
    runWorker({ OPENAI_TIMEOUT_MS: '300', OPENAI_MAX_RETRIES: '0' });
    fake.fallback = { kind: 'slow', ms: 3000 };
    const { requestId } = await request();
    expect((await waitForStatus(h, alice, requestId, 'failed')).failureReason).toBe('timeout');
  });

  it('a job over DIGEST_JOB_TIMEOUT_MS fails with reason timeout', async () => {
    runWorker({ DIGEST_JOB_TIMEOUT_MS: '400' });
    fake.fallback = { kind: 'hang' };
    const { requestId } = await request();
    expect((await waitForStatus(h, alice, requestId, 'failed')).failureReason).toBe('timeout');
  });

  it('an endpoint that refuses the request (bad key): failed at once, summarizer_rejected', async () => {
    runWorker({ OPENAI_API_KEY: 'wrong-key' });
    const { requestId } = await request();
    expect((await waitForStatus(h, alice, requestId, 'failed')).failureReason).toBe('summarizer_rejected');
    expect(fake.seen).toHaveLength(1);
  });

  it('long transcripts are summarised in parts, then combined', async () => {
    runWorker({ DIGEST_CHUNK_CHARS: '500' });
    const { requestId } = await request();
    await waitForStatus(h, alice, requestId, 'ready');
    expect(fake.seen.length).toBeGreaterThanOrEqual(3);
    const parts = fake.seen.slice(0, -1);
    parts.forEach((p, i) => expect(p.messages[1]!.content).toContain(`part ${i + 1} of ${parts.length}`));
    const combine = fake.seen[fake.seen.length - 1]!;
    expect(combine.messages[0]!.content).toBe(COMBINE_PROMPT);
    expect(JSON.parse(combine.messages[1]!.content.split('Part summaries:\n')[1]!)).toHaveLength(parts.length);
  });

  it('an answer that is not the JSON asked for falls back to the extractive summary', async () => {
    runWorker();
    fake.fallback = { kind: 'malformed' };
    const { requestId, chatId } = await request();
    const ready = await waitForStatus(h, alice, requestId, 'ready');
    expect(ready.method).toBe('extractive');
    expect((await openResult(h, alice, requestId, chatId, ready.results[0]!.sealed)).method).toBe('extractive');
  });
});
