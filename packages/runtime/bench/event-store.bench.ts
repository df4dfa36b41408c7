// Benchmark of the write path every service shares: command → append (with
// the compact state row and a projection) → commit, and the outbox relay
// publishing to JetStream. Prints figures; asserts nothing.
//   npm run bench -w @bil/runtime            (BENCH_COMMANDS, BENCH_CONCURRENCY to change the load)
import { Migration } from '@mikro-orm/migrations';
import { createTestEnv } from '@bil/testkit';
import { Database, EventStore, OutboxRelay, connectNats, createLogger, ensureStream, eventStoreSchemaSql, eventSubject, streamStateVersionSql, type Decider, type Projection } from '../src/index.js';

class Init extends Migration {
  override async up(): Promise<void> {
    for (const sql of eventStoreSchemaSql('bench')) this.addSql(sql);
    this.addSql(streamStateVersionSql('bench'));
    this.addSql('CREATE TABLE bench.totals (id text PRIMARY KEY, total bigint NOT NULL)');
  }
}
type Cmd = { n: number };
type Ev = { type: 'Added'; data: { n: number } };
const decider: Decider<Cmd, Ev, { total: number }> = {
  initialState: () => ({ total: 0 }),
  decide: (c) => [{ type: 'Added', data: { n: c.n } }],
  evolve: (s, e) => ({ total: s.total + e.data.n }),
};
const totals: Projection = {
  name: 'totals',
  tables: ['totals'],
  async apply(tx, events) {
    for (const e of events) {
      await tx.query(`INSERT INTO bench.totals VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET total = bench.totals.total + excluded.total`, [
        e.streamId,
        (e.data as { n: number }).n,
      ]);
    }
  },
};

const COMMANDS = Number(process.env.BENCH_COMMANDS ?? 5000);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 16);
const STREAMS = Number(process.env.BENCH_STREAMS ?? 1000);

const env = await createTestEnv('bench');
const db = await Database.connect({ url: env.databaseUrl, schema: 'bench', migrations: [{ name: 'Init', class: Init }], poolMax: CONCURRENCY });
await db.migrate();
const store = new EventStore(db, [totals]);
const nats = await connectNats(env.natsUrl, env.natsPrefix, 'bench');
await ensureStream(nats, 'bench');
const logger = createLogger('bench', 'silent');

try {
  const latencies: number[] = [];
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < COMMANDS) {
        const i = next++;
        const t0 = performance.now();
        await store.handle(decider, `s-${i % STREAMS}`, { n: 1 }, { retries: 20 });
        latencies.push(performance.now() - t0);
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))]!.toFixed(2);
  console.log(`append: ${COMMANDS} commands, ${CONCURRENCY} concurrent, ${STREAMS} streams`);
  console.log(`append: ${(COMMANDS / seconds).toFixed(0)} commands/s; latency ms p50 ${pct(50)} p95 ${pct(95)} p99 ${pct(99)}`);

  const relay = new OutboxRelay({ db, nats, logger, toMessage: (e) => ({ subject: eventSubject(nats.prefix, 'bench', 'counter', e.type), payload: e.data as Record<string, unknown> }) });
  const t1 = performance.now();
  const published = await relay.drain();
  const relaySeconds = (performance.now() - t1) / 1000;
  console.log(`outbox: ${published} events published to JetStream in ${relaySeconds.toFixed(2)} s = ${(published / relaySeconds).toFixed(0)} events/s`);
} finally {
  await nats.nc.close();
  await db.close();
  await env.cleanup();
}
