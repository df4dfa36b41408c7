// A worker process killed mid-job (SIGKILL, while the model call is in
// flight), with the DEFAULT lock and stalled-check settings: BullMQ's lock
// expires, another worker's stalled check puts the job back, and the request
// is completed exactly once (one DigestCompleted, one result row per chat, one
// digest.v1.digest.ready on NATS), well within the SDK's 60 s default wait
// measured from the request. And the other way round: a model call longer
// than the lock keeps the job (the lock is renewed), no second worker runs it.
// And two runs of one job at once: one completion is stored.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { contextStream } from '@bil/runtime';
import { FakeOpenAI, eventually, launchPlanning } from '@bil/testkit';
import { digestConfigSchema, loadDigestConfig } from '../src/config.js';
import { startWorker, type WorkerProcess } from '../src/system.js';
import { DigestWorker } from '../src/app/digest-worker.js';
import { ExtractiveSummarizer } from '@bil/summarizer';
import { newChat, newUser, sealed, startHarness, waitForStatus, type Harness } from './support.js';

const serviceDir = fileURLToPath(new URL('..', import.meta.url));
/** The SDK's default wait for a digest (packages/sdk, `timeoutMs`). */
const SDK_DEFAULT_WAIT_MS = 60_000;

let h: Harness;
let fake: FakeOpenAI;
let child: ChildProcess | undefined;
const workers: WorkerProcess[] = [];

beforeAll(async () => {
  h = await startHarness('digestcrash');
  fake = await new FakeOpenAI().start();
});

afterAll(async () => {
  child?.kill('SIGKILL');
  for (const w of workers) await w.stop();
  await fake?.stop();
  await h?.close();
});

/** Worker settings as in production: only the connections and the model endpoint are set, nothing about the queue. */
function defaultWorkerEnv(): Record<string, string> {
  return {
    ...h.env.serviceEnv,
    DIGEST_WORKER_METRICS_PORT: '0',
    OPENAI_API_KEY: fake.apiKey,
    OPENAI_BASE_URL: fake.url,
    OPENAI_MODEL: fake.model,
  };
}

describe('a worker dies mid-job (default settings)', () => {
  it('another worker finishes the job exactly once, well within 60 s of the request', async () => {
    const env = defaultWorkerEnv();
    const config = loadDigestConfig(env);
    expect([config.DIGEST_JOB_LOCK_MS, config.DIGEST_STALLED_INTERVAL_MS, config.DIGEST_MAX_STALLED_COUNT]).toEqual([10_000, 5_000, 3]);
    for (const k of ['DIGEST_JOB_LOCK_MS', 'DIGEST_STALLED_INTERVAL_MS', 'DIGEST_MAX_STALLED_COUNT'] as const) {
      expect(config[k]).toBe(digestConfigSchema[k].default);
      expect(process.env[k]).toBeUndefined();
    }

    const alice = await newUser(h, 'Alice');
    const bob = await newUser(h, 'Bob');
    const chatId = await newChat(h, [alice, bob]);
    const requestId = randomUUID();
    const transcript = await sealed(h, alice, requestId, chatId, launchPlanning());

    // The first worker is its own process (node src/main.ts worker, as `node dist/main.js worker`); the model never answers it.
    fake.fallback = { kind: 'hang' };
    let output = '';
    child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts', 'worker'], {
      cwd: serviceDir,
      env: { ...process.env, ...env, LOG_LEVEL: 'info' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const started = new Promise<void>((resolve) => {
      const watch = (d: Buffer) => {
        output += d.toString();
        if (output.includes('digest worker started')) resolve();
      };
      child!.stdout!.on('data', watch);
      child!.stderr!.on('data', watch);
    });
    await Promise.race([started, new Promise((_, reject) => setTimeout(() => reject(new Error(`worker child did not start: ${output}`)), 60_000))]);

    const called = new Promise<void>((resolve) => (fake.onRequest = resolve));
    const requestedAt = Date.now();
    await h.api.app.requestDigest(alice.actor, requestId, [transcript]);
    await Promise.race([called, new Promise((_, reject) => setTimeout(() => reject(new Error(`worker child never called the model: ${output}`)), 20_000))]);

    // Two more workers are running (default settings) when the first one dies; the model now answers.
    fake.fallback = { kind: 'ok' };
    workers.push(startWorker(config, h.logs.logger, h.core), startWorker(config, h.logs.logger, h.core));
    child.kill('SIGKILL');
    await new Promise((r) => child!.once('exit', r));
    expect((await h.api.app.getDigest(alice.actor, requestId)).status).toBe('pending');

    const ready = await waitForStatus(h, alice, requestId, 'ready', SDK_DEFAULT_WAIT_MS);
    const elapsed = Date.now() - requestedAt;
    process.stdout.write(`crash recovery with the default settings: ready ${elapsed} ms after the request\n`);
    // Lock 10 s + stalled check 5 s is the worst case for the job to be back in the queue; then one quick model call.
    expect(elapsed).toBeLessThan(30_000);
    expect(ready.method).toBe('llm');

    const completed = await h.core.db.query(`SELECT 1 FROM digest.events WHERE stream_id = ? AND type = 'DigestCompleted'`, [`digest-${requestId}`]);
    expect(completed).toHaveLength(1);
    expect(await h.core.db.query(`SELECT 1 FROM digest.results WHERE request_id = ?`, [requestId])).toHaveLength(1);
    expect(fake.seen).toHaveLength(2); // the dead worker's call, and the one that worked

    // Published once, and nothing more after a while (no second completion).
    const stream = contextStream(h.nats.prefix, 'digest');
    const subject = `${h.nats.prefix}digest.v1.digest.ready`;
    const count = async () => (await h.nats.jsm.streams.info(stream, { subjects_filter: subject })).state.subjects?.[subject] ?? 0;
    await eventually(async () => (await count()) === 1);
    await new Promise((r) => setTimeout(r, 1500));
    expect(await count()).toBe(1);
    expect(fake.seen).toHaveLength(2);
  }, 120_000);

  it('a model call longer than the lock keeps its job: the lock is renewed, no other worker runs it', async () => {
    for (const w of workers.splice(0)) await w.stop();
    const config = loadDigestConfig({ ...defaultWorkerEnv(), DIGEST_JOB_LOCK_MS: '1000', DIGEST_STALLED_INTERVAL_MS: '200' });
    workers.push(startWorker(config, h.logs.logger, h.core), startWorker(config, h.logs.logger, h.core));
    const alice = await newUser(h, 'Alice');
    const chatId = await newChat(h, [alice]);
    const before = fake.seen.length;
    fake.fallback = { kind: 'slow', ms: 4000 }; // four lock durations
    const requestId = randomUUID();
    await h.api.app.requestDigest(alice.actor, requestId, [await sealed(h, alice, requestId, chatId, launchPlanning())]);
    await waitForStatus(h, alice, requestId, 'ready', 30_000);
    expect(fake.seen.length - before).toBe(1);
    expect(await h.core.db.query(`SELECT 1 FROM digest.events WHERE stream_id = ? AND type = 'DigestCompleted'`, [`digest-${requestId}`])).toHaveLength(1);
  }, 60_000);

  it('two runs of one job at once (a lock lost mid-job): both read it pending, one completion is stored, the other finds it done', async () => {
    for (const w of workers.splice(0)) await w.stop(); // the queue's own copy of the job stays waiting
    const alice = await newUser(h, 'Alice');
    const chatId = await newChat(h, [alice]);
    const requestId = randomUUID();
    const transcript = await sealed(h, alice, requestId, chatId, launchPlanning());
    await h.api.app.requestDigest(alice.actor, requestId, [transcript]);
    const settings = { resultTtlMs: h.config.DIGEST_RESULT_TTL_MS, jobTimeoutMs: 30_000 };
    const run = () =>
      new DigestWorker(h.core.db, h.core.store, h.core.keys, h.core.identity, new ExtractiveSummarizer(), settings, h.logs.logger).process(
        { requestId, userId: alice.userId, deviceId: alice.deviceId, transcripts: [transcript] },
        { made: 0, max: 1 },
      );
    const outcomes = await Promise.all([run(), run()]);
    expect(outcomes.every((o) => o === 'ready' || o === 'already_done')).toBe(true);
    expect(await h.core.db.query(`SELECT 1 FROM digest.events WHERE stream_id = ? AND type = 'DigestCompleted'`, [`digest-${requestId}`])).toHaveLength(1);
    expect(await h.core.db.query(`SELECT 1 FROM digest.results WHERE request_id = ?`, [requestId])).toHaveLength(1);
    expect((await waitForStatus(h, alice, requestId, 'ready')).results).toHaveLength(1);
    await h.api.queue.discard(requestId);
  }, 60_000);
});
