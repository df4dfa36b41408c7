// A worker process killed mid-job (SIGKILL, while the model call is in
// flight): BullMQ's lock expires, another worker takes the job over, and the
// request is completed exactly once: one DigestCompleted, one result row per
// chat, one digest.v1.digest.ready on NATS.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { contextStream } from '@bil/runtime';
import { FakeOpenAI, eventually, launchPlanning } from '@bil/testkit';
import { startWorker, type WorkerProcess } from '../src/system.js';
import { TEST_SETTINGS, newChat, newUser, sealed, startHarness, waitForStatus, type Harness } from './support.js';

const serviceDir = fileURLToPath(new URL('..', import.meta.url));

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

describe('a worker dies mid-job', () => {
  it('another worker processes the job, exactly once', async () => {
    const alice = await newUser(h, 'Alice');
    const bob = await newUser(h, 'Bob');
    const chatId = await newChat(h, [alice, bob]);
    const requestId = randomUUID();
    await h.api.app.requestDigest(alice.actor, requestId, [await sealed(h, alice, requestId, chatId, launchPlanning())]);

    // The first worker is its own process (node dist/main.js worker, from source); the model never answers it.
    fake.fallback = { kind: 'hang' };
    const called = new Promise<void>((resolve) => (fake.onRequest = resolve));
    let stderr = '';
    child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts', 'worker'], {
      cwd: serviceDir,
      env: {
        ...process.env,
        ...h.env.serviceEnv,
        ...TEST_SETTINGS,
        DIGEST_WORKER_METRICS_PORT: '0',
        DIGEST_JOB_LOCK_MS: '1500',
        OPENAI_API_KEY: fake.apiKey,
        OPENAI_BASE_URL: fake.url,
        OPENAI_MODEL: fake.model,
        OPENAI_TIMEOUT_MS: '60000',
        LOG_LEVEL: 'silent',
      },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    await Promise.race([called, new Promise((_, reject) => setTimeout(() => reject(new Error(`worker child never called the model: ${stderr}`)), 30_000))]);
    child.kill('SIGKILL');
    await new Promise((r) => child!.once('exit', r));
    expect((await h.api.app.getDigest(alice.actor, requestId)).status).toBe('pending');

    // Two survivors watch for stalled jobs; the model now answers.
    fake.fallback = { kind: 'ok' };
    const config = h.workerConfig({ OPENAI_API_KEY: fake.apiKey, OPENAI_BASE_URL: fake.url, OPENAI_MODEL: fake.model });
    workers.push(startWorker(config, h.logs.logger, h.core), startWorker(config, h.logs.logger, h.core));
    const ready = await waitForStatus(h, alice, requestId, 'ready', 30_000);
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
  });
});
