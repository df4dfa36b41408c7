// End-to-end digest throughput with the built-in extractive summariser, beside
// raw BullMQ no-op jobs on the same Redis in the same run. Prints figures;
// asserts nothing.
//   npm run bench -w @bil/digest      (BENCH_REQUESTS, BENCH_WORKERS, BENCH_CONCURRENCY)
//
// "End to end" = RequestDigest accepted (sealed transcript checked, job
// enqueued) → worker opens it in memory, summarises, seals the result to the
// device, stores it and commits `ready`. Sealing on the client is done before
// the clock starts (it is client cost).
import { randomUUID } from 'node:crypto';
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { createLogger } from '@bil/runtime';
import { startWorker, type WorkerProcess } from '../src/system.js';
import { launchPlanning } from '@bil/testkit';
import { newChat, newUser, sealed, startHarness } from '../test/support.js';

const REQUESTS = Number(process.env.BENCH_REQUESTS ?? 200);
const WORKERS = Number(process.env.BENCH_WORKERS ?? 2);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 4);
const USERS = 10;

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN;
};

const h = await startHarness('digestbench', {
  DIGEST_RATE_PER_MINUTE: '10000',
  DIGEST_DAILY_CAP: '1000000',
  DIGEST_WORKER_CONCURRENCY: String(CONCURRENCY),
});
const quiet = createLogger('digest-bench', 'silent');
const workers: WorkerProcess[] = [];
try {
  const users = await Promise.all(Array.from({ length: USERS }, (_, i) => newUser(h, `User ${i}`)));
  const chats = await Promise.all(users.map((u, i) => newChat(h, [u, users[(i + 1) % USERS]!], `Chat ${i}`)));
  const jobs = await Promise.all(
    Array.from({ length: REQUESTS }, async (_, i) => {
      const user = users[i % USERS]!;
      const chatId = chats[i % USERS]!;
      const requestId = randomUUID();
      return { user, requestId, transcript: await sealed(h, user, requestId, chatId, launchPlanning()) };
    }),
  );
  for (let i = 0; i < WORKERS; i++) workers.push(startWorker(h.config, quiet, h.core));

  const submitted = new Map<string, number>();
  const t0 = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      while (next < jobs.length) {
        const j = jobs[next++]!;
        submitted.set(j.requestId, Date.now());
        await h.api.app.requestDigest(j.user.actor, j.requestId, [j.transcript]);
      }
    }),
  );
  const acceptedSeconds = (performance.now() - t0) / 1000;
  let done: Array<{ request_id: string; status: string; completed_at: Date }> = [];
  for (;;) {
    done = await h.core.db.query(`SELECT request_id, status, completed_at FROM digest.digests WHERE status <> 'pending'`);
    if (done.length >= REQUESTS) break;
    if (performance.now() - t0 > 300_000) throw new Error(`only ${done.length} of ${REQUESTS} finished in 5 minutes`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const seconds = (performance.now() - t0) / 1000;
  const failed = done.filter((d) => d.status !== 'ready').length;
  const latencies = done.map((d) => new Date(d.completed_at).getTime() - submitted.get(d.request_id)!);

  // Baseline: raw BullMQ, no-op processor, same Redis, same worker count and concurrency.
  const connection = new Redis(h.env.redisUrl, { maxRetriesPerRequest: null });
  const prefix = `${h.env.redisPrefix}rawbull`;
  const queue = new Queue('noop', { connection, prefix });
  const rawWorkers = Array.from({ length: WORKERS }, () => new Worker('noop', async () => undefined, { connection: connection.duplicate(), prefix, concurrency: CONCURRENCY }));
  let finished = 0;
  const allDone = new Promise<void>((resolve) => rawWorkers.forEach((w) => w.on('completed', () => ++finished >= REQUESTS && resolve())));
  const t1 = performance.now();
  await queue.addBulk(Array.from({ length: REQUESTS }, (_, i) => ({ name: 'noop', data: { i, pad: 'x'.repeat(4096) } })));
  await allDone;
  const rawSeconds = (performance.now() - t1) / 1000;
  await Promise.all(rawWorkers.map((w) => w.close()));
  await queue.obliterate({ force: true });
  await queue.close();
  connection.disconnect();

  console.log(`digest bench: ${REQUESTS} requests (1 chat, ~30 messages each), ${WORKERS} workers x concurrency ${CONCURRENCY}, built-in summariser`);
  console.log('| path | jobs | seconds | jobs/s | p50 ms | p99 ms |');
  console.log('|---|---|---|---|---|---|');
  console.log(`| digest end to end (request → sealed result stored) | ${REQUESTS} | ${seconds.toFixed(2)} | ${(REQUESTS / seconds).toFixed(1)} | ${pct(latencies, 50)} | ${pct(latencies, 99)} |`);
  console.log(`| of which accepting requests (RequestDigest) | ${REQUESTS} | ${acceptedSeconds.toFixed(2)} | ${(REQUESTS / acceptedSeconds).toFixed(1)} | | |`);
  console.log(`| raw BullMQ no-op jobs | ${REQUESTS} | ${rawSeconds.toFixed(2)} | ${(REQUESTS / rawSeconds).toFixed(1)} | | |`);
  if (failed) console.log(`(${failed} requests ended failed)`);
} finally {
  await Promise.all(workers.map((w) => w.stop()));
  await h.close();
}
