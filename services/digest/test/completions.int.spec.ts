// Group commit of finished jobs (src/app/completions.ts): jobs that finish
// together are stored in one transaction, each DigestCompleted with its own
// job's correlation id, every result once; a request settled meanwhile is
// decided again and left as it is.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ExtractiveSummarizer, type Summarizer } from '@bil/summarizer';
import { launchPlanning } from '@bil/testkit';
import { DigestWorker } from '../src/app/digest-worker.js';
import { digestDecider, digestStream } from '../src/domain/digest/digest.js';
import { newChat, newUser, sealed, startHarness, waitForStatus, type Harness } from './support.js';

let h: Harness;

beforeAll(async () => {
  h = await startHarness('digestgroup', { DIGEST_RATE_PER_MINUTE: '1000' });
});

afterAll(async () => {
  await h?.close();
});

const worker = (summarizer: Summarizer) =>
  new DigestWorker(h.core.db, h.core.store, h.core.keys, h.core.identity, summarizer, { resultTtlMs: h.config.DIGEST_RESULT_TTL_MS, jobTimeoutMs: 30_000 }, h.logs.logger);

describe('completions', () => {
  it('stores jobs finishing together in fewer transactions than jobs, each event with its own correlation id', async () => {
    const alice = await newUser(h, 'Alice');
    const chatId = await newChat(h, [alice]);
    const jobs = [];
    for (let i = 0; i < 8; i++) {
      const requestId = randomUUID();
      const transcript = await sealed(h, alice, requestId, chatId, launchPlanning());
      await h.api.app.requestDigest(alice.actor, requestId, [transcript]);
      jobs.push({ requestId, userId: alice.userId, deviceId: alice.deviceId, correlationId: `corr-${i}`, transcripts: [transcript] });
    }
    // Every job waits in its summariser until all are there, so they finish together.
    let entered = 0;
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const extractive = new ExtractiveSummarizer();
    const together: Summarizer = { method: 'extractive', summarize: async (input) => (++entered === jobs.length && release(), await gate, extractive.summarize(input)) };
    const w = worker(together);
    const outcomes = await Promise.all(jobs.map((j) => w.process(j, { made: 0, max: 1 })));
    expect(outcomes).toEqual(jobs.map(() => 'ready'));
    const rows = await h.core.db.query<{ stream_id: string; tx_id: string; correlation: string }>(
      `SELECT stream_id, tx_id::text AS tx_id, metadata->>'correlationId' AS correlation FROM digest.events
       WHERE type = 'DigestCompleted' AND stream_id = ANY (?::text[])`,
      [`{${jobs.map((j) => `digest-${j.requestId}`).join(',')}}`],
    );
    expect(rows).toHaveLength(jobs.length);
    for (const j of jobs) expect(rows.find((r) => r.stream_id === `digest-${j.requestId}`)?.correlation).toBe(j.correlationId);
    expect(new Set(rows.map((r) => r.tx_id)).size).toBeLessThan(jobs.length);
    const results = await h.core.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM digest.results WHERE request_id = ANY (?::uuid[])`, [`{${jobs.map((j) => j.requestId).join(',')}}`]);
    expect(results[0]!.n).toBe(jobs.length);
    for (const j of jobs) expect((await waitForStatus(h, alice, j.requestId, 'ready')).results).toHaveLength(1);
  });

  it('a request settled after its job read it (the sweeper failed it) stays as it is: the job finds it done, no result stored', async () => {
    const alice = await newUser(h, 'Alice');
    const chatId = await newChat(h, [alice]);
    const requestId = randomUUID();
    const transcript = await sealed(h, alice, requestId, chatId, launchPlanning());
    await h.api.app.requestDigest(alice.actor, requestId, [transcript]);
    // The summariser waits until the request has been failed: between the job's read and its completion.
    let entered!: () => void;
    const inside = new Promise<void>((r) => (entered = r));
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const extractive = new ExtractiveSummarizer();
    const gated: Summarizer = { method: 'extractive', summarize: async (input) => (entered(), await gate, extractive.summarize(input)) };
    const w = worker(gated);
    const running = w.process({ requestId, userId: alice.userId, deviceId: alice.deviceId, transcripts: [transcript] }, { made: 0, max: 1 });
    await inside;
    await h.core.store.handle(digestDecider, digestStream(requestId), { type: 'FailDigest', reason: 'abandoned', now: new Date().toISOString() });
    release();
    expect(await running).toBe('ready'); // the job's own run ended; what it found is below
    const types = await h.core.db.query<{ type: string }>(`SELECT type FROM digest.events WHERE stream_id = ? ORDER BY stream_version`, [digestStream(requestId)]);
    expect(types.map((t) => t.type)).toEqual(['DigestRequested', 'DigestFailed']);
    expect(await h.core.db.query(`SELECT 1 FROM digest.results WHERE request_id = ?`, [requestId])).toHaveLength(0);
  });
});
