// The event store, outbox relay and durable consumers on real PostgreSQL and NATS. Past 400 lines on
// purpose: the describes share one schema and one JetStream stream (the relay tests publish what the
// store tests appended, and the snapshot check covers every stream the file wrote).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Migration } from '@mikro-orm/migrations';
import { createTestEnv, eventually, expectSnapshotsEqualReplay, explainGenericPlan, type TestEnv } from '@bil/testkit';
import { AckPolicy, DeliverPolicy } from '@nats-io/jetstream';
import {
  ConcurrencyError,
  Database,
  DurableConsumer,
  EventStore,
  Metrics,
  OutboxRelay,
  connectNats,
  createLogger,
  ensureStream,
  eventStoreSchemaSql,
  eventSubject,
  outboxBatchSql,
  processedEventsTrimIndexSql,
  streamStateVersionSql,
  type Decider,
  type IncomingEvent,
  type Tx,
  type Nats,
  type Projection,
} from './index.js';

class Init extends Migration {
  override async up(): Promise<void> {
    for (const sql of eventStoreSchemaSql('rt')) this.addSql(sql);
    this.addSql(streamStateVersionSql('rt'));
    this.addSql(processedEventsTrimIndexSql('rt'));
    this.addSql('CREATE TABLE rt.counters (id text PRIMARY KEY, total integer NOT NULL)');
    this.addSql('CREATE TABLE rt.applied (event_id uuid PRIMARY KEY, amount integer NOT NULL)');
  }
}

type Cmd = { type: 'Add'; amount: number };
type Ev = { type: 'Added'; data: { amount: number } };
type State = { total: number };
const counter: Decider<Cmd, Ev, State> = {
  initialState: () => ({ total: 0 }),
  decide: (c) => [{ type: 'Added', data: { amount: c.amount } }],
  evolve: (s, e) => ({ total: s.total + e.data.amount }),
};
const counters: Projection = {
  name: 'counters',
  tables: ['counters'],
  async apply(tx, events) {
    for (const e of events) {
      await tx.query(
        `INSERT INTO rt.counters (id, total) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET total = rt.counters.total + excluded.total`,
        [e.streamId, (e.data as { amount: number }).amount],
      );
    }
  },
};

const logger = createLogger('runtime-test', 'silent');
let env: TestEnv;
let db: Database;
let store: EventStore;
let nats: Nats;

beforeAll(async () => {
  env = await createTestEnv('runtime');
  db = await Database.connect({ url: env.databaseUrl, schema: 'rt', migrations: [{ name: 'Init', class: Init }] });
  await db.migrate();
  store = new EventStore(db, [counters]);
  nats = await connectNats(env.natsUrl, env.natsPrefix, 'runtime-test');
  await ensureStream(nats, 'rt');
});

afterAll(async () => {
  await nats?.nc.close();
  await db?.close();
  await env?.cleanup();
});

const toMessage = (e: { type: string; data: object; streamId: string }) => ({
  subject: eventSubject(nats.prefix, 'rt', 'counter', e.type),
  payload: { ...e.data, counterId: e.streamId },
});

async function streamMessages(): Promise<Array<{ eventId: string; seq: number }>> {
  const name = `${env.natsPrefix.replace(/\./g, '_')}RT`.toUpperCase();
  const info = await nats.jsm.streams.info(name);
  const out: Array<{ eventId: string; seq: number }> = [];
  for (let seq = info.state.first_seq; seq <= info.state.last_seq && info.state.messages > 0; seq++) {
    const m = await nats.jsm.streams.getMessage(name, { seq });
    if (m) out.push({ eventId: m.header.get('Bil-Event-Id'), seq });
  }
  return out;
}

/** Version 2 of the counter's state: a new shape (and a renamed field) that the stored version-1 rows lack. */
const counter2: Decider<Cmd, Ev, { sum: number; adds: number }> = {
  stateVersion: 2,
  initialState: () => ({ sum: 0, adds: 0 }),
  decide: (c) => [{ type: 'Added', data: { amount: c.amount } }],
  evolve: (s, e) => ({ sum: s.sum + e.data.amount, adds: s.adds + 1 }),
};

describe('event store', () => {
  it('appends and reads a stream, projecting in the same transaction', async () => {
    await store.handle(counter, 'c-1', { type: 'Add', amount: 2 });
    const r = await store.handle(counter, 'c-1', { type: 'Add', amount: 3 });
    expect(r.state.total).toBe(5);
    expect(r.version).toBe(2);
    const events = await store.readStream(db, 'c-1');
    expect(events.map((e) => e.streamVersion)).toEqual([1, 2]);
    expect(Number(events[1]!.position)).toBeGreaterThan(Number(events[0]!.position));
    const [row] = await db.query<{ total: number }>(`SELECT total FROM rt.counters WHERE id = 'c-1'`);
    expect(row?.total).toBe(5);
  });

  it('lets exactly one of two concurrent appends at the same version win', async () => {
    await store.handle(counter, 'c-race', { type: 'Add', amount: 1 });
    const loaded = await store.load(db, counter, 'c-race');
    const attempt = () =>
      db.tx(async (tx) => {
        const s = { ...loaded };
        await store.append(tx, s, [{ type: 'Added', data: { amount: 1 } }], { total: 2 });
        await tx.query('SELECT pg_sleep(0.05)');
      });
    const results = await Promise.allSettled([attempt(), attempt()]);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    const failed = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
    expect(failed.reason).toBeInstanceOf(ConcurrencyError);
    expect((await store.readStream(db, 'c-race')).map((e) => e.streamVersion)).toEqual([1, 2]);
  });

  it('retries a command on conflict so concurrent commands all land', async () => {
    await Promise.all(Array.from({ length: 8 }, () => store.handle(counter, 'c-many', { type: 'Add', amount: 1 }, { retries: 10 })));
    const loaded = await store.load(db, counter, 'c-many');
    expect(loaded).toMatchObject({ version: 8, state: { total: 8 } });
  });

  it('handles commands inside the caller\'s transaction: a builder decides on the loaded state, a refusal rolls everything back', async () => {
    await db.tx(async (tx) => {
      await store.handleIn(tx, counter, 'c-in-a', { type: 'Add', amount: 4 });
      const r = await store.handleIn(tx, counter, 'c-in-b', ({ state, version }) => ({ type: 'Add', amount: state.total + version + 1 }));
      expect(r).toMatchObject({ version: 1, state: { total: 1 } });
    });
    const again = await store.handle(counter, 'c-in-a', ({ state }) => ({ type: 'Add', amount: state.total }), { metadata: { actorUserId: 'u-1' } });
    expect(again).toMatchObject({ version: 2, state: { total: 8 } });
    expect(again.events[0]!.metadata.actorUserId).toBe('u-1');
    const refused = db.tx(async (tx) => {
      await store.handleIn(tx, counter, 'c-in-c', { type: 'Add', amount: 1 });
      await store.handleIn(tx, counter, 'c-in-a', () => {
        throw new Error('refused');
      });
    });
    await expect(refused).rejects.toThrow('refused');
    expect(await store.readStream(db, 'c-in-c')).toEqual([]);
  });

  it('runs a whole transaction again on a conflict (transact), at most `retries` times, and passes other errors through', async () => {
    let attempts = 0;
    const r = await store.transact(async (tx) => {
      attempts++;
      if (attempts < 3) throw new ConcurrencyError('c-tx', 0);
      return store.handleIn(tx, counter, 'c-tx', { type: 'Add', amount: 1 });
    });
    expect(attempts).toBe(3);
    expect(r.version).toBe(1);
    attempts = 0;
    await expect(
      store.transact(async () => {
        attempts++;
        throw new ConcurrencyError('c-tx', 0);
      }, { retries: 2 }),
    ).rejects.toBeInstanceOf(ConcurrencyError);
    expect(attempts).toBe(3);
    attempts = 0;
    await expect(
      store.transact(async () => {
        attempts++;
        throw new Error('not a conflict');
      }),
    ).rejects.toThrow('not a conflict');
    expect(attempts).toBe(1);
  });

  it('rebuilds projections to exactly the live read model', async () => {
    for (let i = 0; i < 20; i++) await store.handle(counter, `c-rb-${i % 4}`, { type: 'Add', amount: i });
    const live = await db.query(`SELECT id, total FROM rt.counters ORDER BY id`);
    await db.query(`UPDATE rt.counters SET total = -1`);
    await store.rebuildProjections(7);
    const rebuilt = await db.query(`SELECT id, total FROM rt.counters ORDER BY id`);
    expect(rebuilt).toEqual(live);
  });

  it('stamps each stored state with the decider\'s state version; every snapshot equals the replay of its events', async () => {
    await store.handle(counter, 'c-stamp', { type: 'Add', amount: 1 });
    const [row] = await db.query<{ state_version: number }>(`SELECT state_version FROM rt.streams WHERE stream_id = 'c-stamp'`);
    expect(row?.state_version).toBe(1);
    const checked = await expectSnapshotsEqualReplay(db, 'rt', { 'c-': counter });
    expect(checked).toBeGreaterThan(10);
  });

  it('rebuilds a state stored under another state version from the events (evolve), stores it, and appends on it', async () => {
    for (const amount of [2, 3, 4]) await store.handle(counter, 'c-evolve', { type: 'Add', amount });
    const loaded = await store.load(db, counter2, 'c-evolve');
    expect(loaded).toMatchObject({ version: 3, state: { sum: 9, adds: 3 }, stateVersion: 2 });
    const [stored] = await db.query<{ state: unknown; state_version: number }>(`SELECT state, state_version FROM rt.streams WHERE stream_id = 'c-evolve'`);
    expect(stored).toEqual({ state: { sum: 9, adds: 3 }, state_version: 2 });
    const r = await store.handle(counter2, 'c-evolve', { type: 'Add', amount: 1 });
    expect(r).toMatchObject({ version: 4, state: { sum: 10, adds: 4 } });
    await expectSnapshotsEqualReplay(db, 'rt', { 'c-evolve': counter2, 'c-': counter });
    // A state stored under version 2 is taken as it is: no replay (a replay would find the events' sum, 10).
    await db.query(`UPDATE rt.streams SET state = '{"sum": 100, "adds": 4}'::jsonb WHERE stream_id = 'c-evolve'`);
    expect((await store.load(db, counter2, 'c-evolve')).state).toEqual({ sum: 100, adds: 4 });
    await db.query(`UPDATE rt.streams SET state = '{"sum": 10, "adds": 4}'::jsonb WHERE stream_id = 'c-evolve'`);
  });

  it('loads many streams in one statement: each as load() would, upgrading an old state version, leaving out the unknown', async () => {
    for (const amount of [5, 6]) await store.handle(counter, 'c-many-a', { type: 'Add', amount });
    await store.handle(counter, 'c-many-"b\\', { type: 'Add', amount: 7 });
    const many = await store.loadMany(db, counter, ['c-many-a', 'c-many-"b\\', 'c-none']);
    expect([...many.keys()].sort()).toEqual(['c-many-"b\\', 'c-many-a']);
    for (const id of many.keys()) expect(many.get(id)).toEqual(await store.load(db, counter, id));
    const upgraded = await store.loadMany(db, counter2, ['c-many-a']);
    expect(upgraded.get('c-many-a')).toMatchObject({ version: 2, state: { sum: 11, adds: 2 }, stateVersion: 2 });
    expect((await store.loadMany(db, counter, [])).size).toBe(0);
  });

  it('appends to many streams in one statement (appendMany): each claimed at its version, a moved one left out, projections and listeners once', async () => {
    await store.handle(counter, 'c-am-old', { type: 'Add', amount: 1 });
    await store.handle(counter, 'c-am-moved', { type: 'Add', amount: 1 });
    const items = await Promise.all(['c-am-old', 'c-am-new', 'c-am-moved'].map((id) => store.load(db, counter, id)));
    await store.handle(counter, 'c-am-moved', { type: 'Add', amount: 1 }); // another writer gets there first
    const local = new EventStore(db, [counters]);
    const heard: string[][] = [];
    local.onCommitted((events) => heard.push(events.map((e) => e.streamId)));
    const add = (amount: number): Ev => ({ type: 'Added', data: { amount } });
    const out = await db.tx((tx) =>
      local.appendMany(tx, [
        { stream: items[0]!, events: [add(2), add(3)], newState: { total: 6 } },
        { stream: items[1]!, events: [add(4)], newState: { total: 4 }, metadata: { actorUserId: 'u-am' } },
        { stream: items[2]!, events: [add(5)], newState: { total: 6 } },
      ]),
    );
    expect(out.map((s) => s?.map((e) => e.streamVersion))).toEqual([[2, 3], [1], undefined]);
    expect(out[1]![0]!.metadata.actorUserId).toBe('u-am');
    expect(items.map((i) => i.version)).toEqual([3, 1, 1]); // the moved one keeps what it was loaded at
    expect(heard).toEqual([['c-am-old', 'c-am-old', 'c-am-new']]);
    expect(await store.load(db, counter, 'c-am-old')).toMatchObject({ version: 3, state: { total: 6 } });
    expect(await store.load(db, counter, 'c-am-new')).toMatchObject({ version: 1, state: { total: 4 } });
    expect(await store.load(db, counter, 'c-am-moved')).toMatchObject({ version: 2, state: { total: 2 } });
    const totals = await db.query<{ id: string; total: number }>(`SELECT id, total FROM rt.counters WHERE id LIKE 'c-am-%' ORDER BY id`);
    expect(totals).toEqual([
      { id: 'c-am-moved', total: 2 },
      { id: 'c-am-new', total: 4 },
      { id: 'c-am-old', total: 6 },
    ]);
    await expect(db.tx((tx) => local.appendMany(tx, [items[1]!, items[1]!].map((stream) => ({ stream, events: [add(1)], newState: { total: 5 } }))))).rejects.toThrow('more than once');
  });
});

describe('outbox relay', () => {
  it('never skips an event whose transaction commits after a later position', async () => {
    const relay = new OutboxRelay({ db, nats, logger, name: 'ooo', toMessage });
    await relay.drain();
    // T1 takes a position first but commits last.
    let releaseT1!: () => void;
    const t1Inserted = new Promise<void>((resolve) => {
      void db.tx(async (tx) => {
        await store.append(tx, { streamId: 'late', version: 0, state: { total: 0 } }, [{ type: 'Added', data: { amount: 1 } }], { total: 1 });
        resolve();
        await new Promise<void>((r) => (releaseT1 = r));
      });
    });
    await t1Inserted;
    await store.handle(counter, 'early', { type: 'Add', amount: 1 });
    const [late] = await store.readStream(db, 'late');
    expect(late).toBeUndefined(); // not committed yet
    await relay.drain({ waitMs: 0 }); // must not move the checkpoint past T1's row (and not wait for it)
    releaseT1();
    await eventually(async () => (await store.readStream(db, 'late')).length === 1);
    await relay.drain();
    const published = (await streamMessages()).map((m) => m.eventId);
    const lateEvent = (await store.readStream(db, 'late'))[0]!;
    const earlyEvent = (await store.readStream(db, 'early'))[0]!;
    expect(published).toContain(lateEvent.eventId);
    expect(published).toContain(earlyEvent.eventId);
    expect(Number(lateEvent.position)).toBeLessThan(Number(earlyEvent.position));
  });

  it('drain waits for what committed before it behind an older running transaction (anywhere on the server)', async () => {
    const relay = new OutboxRelay({ db, nats, logger, name: 'behind', toMessage });
    await relay.drain();
    // T0: any transaction with an xid, still running (here in a table of no relay; in CI, another suite's database).
    let releaseT0!: () => void;
    const t0Started = new Promise<void>((resolve) => {
      void db.tx(async (tx) => {
        await tx.query(`CREATE TABLE IF NOT EXISTS rt.scratch (id uuid)`);
        await tx.query(`INSERT INTO rt.scratch (id) VALUES (gen_random_uuid())`);
        resolve();
        await new Promise<void>((r) => (releaseT0 = r));
      });
    });
    await t0Started;
    await store.handle(counter, 'behind-1', { type: 'Add', amount: 1 });
    const [event] = await store.readStream(db, 'behind-1');
    setTimeout(() => releaseT0(), 150);
    expect(await relay.drain()).toBeGreaterThanOrEqual(1);
    expect((await streamMessages()).map((m) => m.eventId)).toContain(event!.eventId);
  });

  it('publishes every event exactly once when killed mid-batch and restarted', async () => {
    const relayName = 'crashy';
    // Everything already in the store counts as published for this relay.
    await new OutboxRelay({ db, nats, logger, name: relayName, toMessage }).drain();
    const before = (await streamMessages()).length;
    for (let i = 0; i < 30; i++) await store.handle(counter, `crash-${i}`, { type: 'Add', amount: 1 });
    let published = 0;
    const crashing = new OutboxRelay({
      db,
      nats,
      logger,
      name: relayName,
      toMessage,
      batchSize: 50,
      afterPublish: () => {
        if (++published === 17) throw new Error('killed');
      },
    });
    await expect(crashing.drain()).rejects.toThrow('killed');
    await new OutboxRelay({ db, nats, logger, name: relayName, toMessage }).drain();
    const ids = (await streamMessages()).slice(before).map((m) => m.eventId);
    const expected = (await db.query<{ event_id: string }>(`SELECT event_id FROM rt.events WHERE stream_id LIKE 'crash-%'`)).map((r) => r.event_id);
    expect(ids).toHaveLength(30);
    expect(new Set(ids)).toEqual(new Set(expected));
  });
});

describe('outbox relay read at 100k+ stored events', () => {
  // Its cost must not grow with history: the read is an index range from the checkpoint, with or
  // without planner statistics (the local PostgreSQL may run without autovacuum). Asserted on the plan
  // and on the rows the scan touched, not on timing.
  it('reads by index range from the checkpoint: one batch touches at most a batch of rows', async () => {
    const schema = 'rt_outbox_plan';
    for (const sql of eventStoreSchemaSql(schema)) await db.query(sql);
    // 120k events in 120 transactions (a tx id each), as many writers would leave them.
    for (let t = 0; t < 120; t++) {
      await db.query(
        `INSERT INTO ${schema}.events (event_id, stream_id, stream_version, type, data)
         SELECT gen_random_uuid(), 's-' || ?::int, g, 'Added', '{"amount":1}'::jsonb FROM generate_series(1, 1000) g`,
        [t],
      );
    }
    const [mid] = await db.query<{ tx_id: string; position: string }>(
      `SELECT tx_id::text AS tx_id, position FROM ${schema}.events ORDER BY tx_id, position OFFSET 100000 LIMIT 1`,
    );
    type Node = { 'Node Type': string; 'Index Name'?: string; 'Index Cond'?: string; 'Actual Rows'?: number; 'Rows Removed by Filter'?: number; Plans?: Node[] };
    const nodes = (n: Node): Node[] => [n, ...(n.Plans ?? []).flatMap(nodes)];
    // As the relay runs it: on its own session, the checkpoint as parameters; and the generic plan,
    // which its prepared statement may switch to (planned without the checkpoint's values).
    const session = await db.session();
    const explain = async (generic: boolean) => {
      if (generic) return nodes(await explainGenericPlan<Node>(db, outboxBatchSql(schema), [mid!.tx_id, mid!.position, 500], { analyze: true }));
      const [row] = await session.query<{ 'QUERY PLAN': Array<{ Plan: Node }> }>(`EXPLAIN (ANALYZE, FORMAT JSON) ${outboxBatchSql(schema)}`, [mid!.tx_id, mid!.position, 500]);
      return nodes(row!['QUERY PLAN'][0]!.Plan);
    };
    for (const [stats, generic] of [['without statistics', false], ['without statistics, generic', true], ['after ANALYZE', false], ['after ANALYZE, generic', true]] as const) {
      if (stats === 'after ANALYZE') await db.query(`ANALYZE ${schema}.events`);
      const plan = await explain(generic);
      const scan = plan.find((n) => n['Index Name'] === 'events_tx_position_idx');
      expect(scan, stats).toBeDefined();
      // Both ends of the range are index conditions: after the checkpoint, below the snapshot's xmin.
      expect(scan!['Index Cond'], stats).toMatch(/ROW\(tx_id, "?position"?\) > ROW/);
      expect(scan!['Index Cond'], stats).toMatch(/tx_id < pg_snapshot_xmin/);
      expect(plan.some((n) => n['Node Type'] === 'Seq Scan'), stats).toBe(false);
      // The rows read are at most the batch (fewer while another helper's transaction holds xmin back
      // on the shared server): nothing walked and filtered away below the checkpoint.
      expect(scan!['Actual Rows'], stats).toBeLessThanOrEqual(500);
      expect(scan!['Rows Removed by Filter'] ?? 0, stats).toBe(0);
    }
    await session.close();
    await db.query(`DROP SCHEMA ${schema} CASCADE`);
  });
});

describe('outbox relay attached to a store', () => {
  it('counts the appended events by type after commit and wakes the relay', async () => {
    const metrics = new Metrics('rt-test');
    const relay = new OutboxRelay({ db, nats, logger, name: 'attached', toMessage, metrics, pollIntervalMs: 60_000 });
    await relay.drain();
    const attached = new EventStore(db, [counters]);
    relay.attach(attached);
    relay.start();
    try {
      const { events } = await attached.handle(counter, 'attached-1', { type: 'Add', amount: 2 });
      expect((await metrics.eventsAppended.get()).values).toEqual([expect.objectContaining({ labels: { type: 'Added' }, value: 1 })]);
      // Woken by the commit, not by its 60 s poll.
      await eventually(async () => (await streamMessages()).some((m) => m.eventId === events[0]!.eventId), 5_000);
    } finally {
      await relay.stop();
    }
  });
});

describe('outbox relay replicas', () => {
  it('two replicas of a relay never both publish an event: one holds the lock, the other waits', async () => {
    const name = 'twins';
    await new OutboxRelay({ db, nats, logger, name, toMessage }).drain();
    for (let i = 0; i < 40; i++) await store.handle(counter, `twin-${i}`, { type: 'Add', amount: 1 });
    const published: string[][] = [[], []];
    const relays = [0, 1].map(
      (r) =>
        new OutboxRelay({
          db,
          nats,
          logger,
          name,
          toMessage,
          batchSize: 5,
          pollIntervalMs: 5,
          afterPublish: async (e) => {
            published[r]!.push(e.eventId);
            await new Promise((res) => setTimeout(res, 2)); // a batch takes a while: the other replica tries meanwhile
          },
        }),
    );
    relays.forEach((r) => r.start());
    await eventually(async () => published[0]!.length + published[1]!.length >= 40, 15_000);
    await new Promise((res) => setTimeout(res, 100)); // anything published twice would show up now
    await Promise.all(relays.map((r) => r.stop()));
    const all = [...published[0]!, ...published[1]!];
    const expected = (await db.query<{ event_id: string }>(`SELECT event_id FROM rt.events WHERE stream_id LIKE 'twin-%'`)).map((r) => r.event_id);
    expect(all).toHaveLength(40);
    expect(new Set(all)).toEqual(new Set(expected));
  });
});

describe('outbox relay wake-ups', () => {
  // Polls an hour apart: whatever is published here within seconds was woken, not polled.
  const relayOf = (name: string, out: string[]) =>
    new OutboxRelay({ db, nats, logger, name, toMessage, pollIntervalMs: 3_600_000, afterPublish: (e) => void out.push(e.eventId) });

  it("another replica's commit wakes the relay holding the lock at once (a kick on core NATS)", async () => {
    const name = 'kicked';
    await new OutboxRelay({ db, nats, logger, name, toMessage }).drain();
    const a: string[] = [];
    const b: string[] = [];
    const leader = relayOf(name, a);
    const standby = relayOf(name, b);
    leader.start();
    await leader.drain(); // it holds the lock once this returns (started: drain keeps it), however slow the machine
    const replicaStore = new EventStore(db, [counters]);
    standby.attach(replicaStore);
    standby.start();
    try {
      const [stored] = await replicaStore.handle(counter, 'kick-1', { type: 'Add', amount: 1 }).then((r) => r.events);
      await eventually(async () => a.includes(stored!.eventId), 10_000); // the poll is an hour away
      expect(b).toEqual([]);
    } finally {
      await Promise.all([standby.stop(), leader.stop()]);
    }
  });

  it('a commit of private events only (nothing to publish) wakes no relay; the next one that publishes does, and the checkpoint passes both', async () => {
    const name = 'quiet';
    await new OutboxRelay({ db, nats, logger, name, toMessage }).drain();
    const out: string[] = [];
    const relay = new OutboxRelay({ db, nats, logger, name, pollIntervalMs: 3_600_000, afterPublish: (e) => void out.push(e.eventId), toMessage: (e) => (e.streamId.startsWith('quiet-private') ? null : toMessage(e)) });
    const local = new EventStore(db, [counters]);
    relay.attach(local);
    relay.start();
    await relay.drain();
    try {
      const [quiet] = await local.handle(counter, 'quiet-private-1', { type: 'Add', amount: 1 }).then((r) => r.events);
      await new Promise((r) => setTimeout(r, 500));
      expect(out).not.toContain(quiet!.eventId); // not even read: nothing woke the relay
      const [loud] = await local.handle(counter, 'quiet-public-1', { type: 'Add', amount: 1 }).then((r) => r.events);
      await eventually(async () => out.includes(loud!.eventId), 10_000);
      expect(out.indexOf(quiet!.eventId)).toBeGreaterThanOrEqual(0);
      expect(out.indexOf(quiet!.eventId)).toBeLessThan(out.indexOf(loud!.eventId));
    } finally {
      await relay.stop();
    }
  });

  it('events committed here but held back by an older transaction are published soon after it ends, not at the next poll', async () => {
    const name = 'owed';
    await new OutboxRelay({ db, nats, logger, name, toMessage }).drain();
    const out: string[] = [];
    const relay = relayOf(name, out);
    const local = new EventStore(db, [counters]);
    relay.attach(local);
    await relay.drain();
    relay.start();
    const other = await db.session();
    try {
      // An older transaction still running (it has an xid) keeps the relay's read below it.
      await other.query('BEGIN');
      await other.query('SELECT pg_current_xact_id()');
      const [stored] = await local.handle(counter, 'owed-1', { type: 'Add', amount: 1 }).then((r) => r.events);
      await new Promise((r) => setTimeout(r, 300));
      expect(out).not.toContain(stored!.eventId);
      await other.query('COMMIT');
      await eventually(async () => out.includes(stored!.eventId), 3000);
    } finally {
      await other.close();
      await relay.stop();
    }
  });
});

describe('durable consumer', () => {
  it('applies each event once, even when JetStream redelivers it', async () => {
    await new OutboxRelay({ db, nats, logger, name: 'consumer-test', toMessage }).drain();
    const seen: string[] = [];
    const consumer = new DurableConsumer({
      nats,
      db,
      logger,
      context: 'rt',
      durable: 'applier',
      filter: 'rt.v1.counter.>',
      handle: async (tx, event) => {
        seen.push(event.eventId);
        await tx.query(`INSERT INTO rt.applied (event_id, amount) VALUES (?, ?)`, [event.eventId, event.payload.amount]);
      },
    });
    await consumer.start();
    const total = (await streamMessages()).length;
    await eventually(async () => (await db.query(`SELECT 1 FROM rt.applied`)).length === total, 10_000);
    await consumer.stop();

    // Replay the whole stream into the same durable name: nothing is applied twice.
    const stream = `${env.natsPrefix.replace(/\./g, '_')}RT`.toUpperCase();
    const name = `${env.natsPrefix.replace(/\./g, '_')}applier`;
    await nats.jsm.consumers.delete(stream, name);
    await nats.jsm.consumers.add(stream, { durable_name: name, ack_policy: AckPolicy.Explicit, deliver_policy: DeliverPolicy.All, filter_subject: `${env.natsPrefix}rt.v1.counter.>` });
    const again = new DurableConsumer({ nats, db, logger, context: 'rt', durable: 'applier', filter: 'rt.v1.counter.>', handle: async () => { throw new Error('must not be called'); } });
    await again.start();
    await eventually(async () => (await nats.jsm.consumers.info(stream, name)).num_ack_pending === 0 && (await nats.jsm.consumers.info(stream, name)).num_pending === 0, 10_000);
    await again.stop();
    expect((await db.query(`SELECT 1 FROM rt.applied`)).length).toBe(total);
    expect(new Set(seen).size).toBe(total);
  });

  it("with dedupe 'handler', leaves redeliveries to the handler's own idempotence and writes no processed-event row", async () => {
    await new OutboxRelay({ db, nats, logger, name: 'consumer-test', toMessage }).drain();
    await db.query('CREATE TABLE IF NOT EXISTS rt.upserted (event_id uuid PRIMARY KEY, seen integer NOT NULL)');
    const handle = async (tx: Tx, event: IncomingEvent) => {
      await tx.query(`INSERT INTO rt.upserted (event_id, seen) VALUES (?, 1) ON CONFLICT (event_id) DO UPDATE SET seen = rt.upserted.seen + 1`, [event.eventId]);
    };
    const total = (await streamMessages()).length;
    const stream = `${env.natsPrefix.replace(/\./g, '_')}RT`.toUpperCase();
    const name = `${env.natsPrefix.replace(/\./g, '_')}upserter`;
    for (const round of [1, 2]) {
      // The second round replays the whole stream into the same durable name.
      if (round === 2) {
        await nats.jsm.consumers.delete(stream, name);
        await nats.jsm.consumers.add(stream, { durable_name: name, ack_policy: AckPolicy.Explicit, deliver_policy: DeliverPolicy.All, filter_subject: `${env.natsPrefix}rt.v1.counter.>` });
      }
      const consumer = new DurableConsumer({ nats, db, logger, context: 'rt', durable: 'upserter', filter: 'rt.v1.counter.>', dedupe: 'handler', handle });
      await consumer.start();
      await eventually(async () => (await db.query(`SELECT 1 FROM rt.upserted WHERE seen = ?`, [round])).length === total, 10_000);
      await consumer.stop();
    }
    expect(await db.query(`SELECT 1 FROM rt.processed_events WHERE consumer = 'upserter'`)).toHaveLength(0);
  });

  it('forgets processed event ids only after the retention, and only its own', async () => {
    const ids = Array.from({ length: 7 }, () => crypto.randomUUID());
    const ages = [10, 9, 9, 8.5, 7.5, 1, 0]; // days
    for (const [i, id] of ids.entries()) {
      await db.query(`INSERT INTO rt.processed_events (consumer, event_id, processed_at) VALUES ('trimmer', ?, now() - make_interval(secs => ?))`, [id, ages[i]! * 86_400]);
    }
    const other = crypto.randomUUID();
    await db.query(`INSERT INTO rt.processed_events (consumer, event_id, processed_at) VALUES ('someone-else', ?, now() - interval '30 days')`, [other]);
    const consumer = new DurableConsumer({ nats, db, logger, context: 'rt', durable: 'trimmer', filter: 'rt.v1.none.>', trimIntervalMs: 0, handle: async () => undefined });
    expect(await consumer.trim()).toBe(4); // the default keeps 8 days, more than the stream's 7
    const left = await db.query<{ event_id: string; consumer: string }>(`SELECT event_id, consumer FROM rt.processed_events WHERE consumer IN ('trimmer', 'someone-else')`);
    expect(left.map((r) => r.event_id).sort()).toEqual([...ids.slice(4), other].sort());
    expect(await new DurableConsumer({ nats, db, logger, context: 'rt', durable: 'trimmer', filter: 'rt.v1.none.>', retentionMs: 3600_000, trimIntervalMs: 0, handle: async () => undefined }).trim()).toBe(2);
  });
});

// rt.inline_applied written by CTEs in the insert's own statement, or by apply: the same rows either way.
const applied: Projection = {
  name: 'applied',
  tables: ['applied'],
  inline: {
    types: ['Added'],
    ctes: `a AS (INSERT INTO rt.inline_applied (event_id, amount) SELECT i.event_id, (ev.data->>'amount')::integer FROM ev JOIN ins i USING (position) RETURNING 1)`,
  },
  async apply(tx, events) {
    for (const e of events) await tx.query(`INSERT INTO rt.inline_applied (event_id, amount) VALUES (?, ?)`, [e.eventId, (e.data as { amount: number }).amount]);
  },
};

describe('appendOwned with an inline projection', () => {
  beforeAll(async () => {
    await db.query('CREATE TABLE IF NOT EXISTS rt.inline_applied (event_id uuid PRIMARY KEY, amount integer NOT NULL)');
  });
  const counting = (tx: Tx) => {
    const seen: string[] = [];
    const proxy = new Proxy(tx, {
      get(target, prop, receiver) {
        const v = Reflect.get(target, prop, receiver) as unknown;
        if (prop === 'query' && typeof v === 'function') return (sql: string, params?: unknown[]) => (seen.push(sql), (v as Tx['query']).call(target, sql, params));
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    });
    return { tx: proxy, seen };
  };
  const amounts = async (ids: string[]) =>
    (await db.query<{ amount: number }>(`SELECT amount FROM rt.inline_applied WHERE event_id = ANY(?::uuid[]) ORDER BY amount`, [`{${ids.join(',')}}`])).map((r) => r.amount);

  it('inserts and projects in one statement, and returns the stored events in position order', async () => {
    const inlineStore = new EventStore(db, [applied]);
    const stream = `owned-${crypto.randomUUID()}`;
    const out = await db.tx(async (raw) => {
      const { tx, seen } = counting(raw);
      const stored = await inlineStore.appendOwned(tx, [1, 2, 3].map((n) => ({ streamId: stream, streamVersion: n, event: { type: 'Added', data: { amount: n * 10 } } })));
      return { stored, seen };
    });
    expect(out.seen).toHaveLength(1);
    expect(out.stored.map((e) => [e.streamVersion, e.data])).toEqual([[1, { amount: 10 }], [2, { amount: 20 }], [3, { amount: 30 }]]);
    expect(out.stored.every((e) => /^\d+$/.test(e.position) && /^\d+$/.test(e.txId) && !Number.isNaN(Date.parse(e.occurredAt)))).toBe(true);
    const [row] = await db.query<{ position: string; data: unknown }>(`SELECT position::text, data FROM rt.events WHERE event_id = ?`, [out.stored[1]!.eventId]);
    expect(row).toEqual({ position: out.stored[1]!.position, data: { amount: 20 } });
    expect(await amounts(out.stored.map((e) => e.eventId))).toEqual([10, 20, 30]);
  });

  it('falls back to apply when a projection has no inline form for an event', async () => {
    const mixed = new EventStore(db, [applied, counters]);
    const stream = `owned-${crypto.randomUUID()}`;
    const out = await db.tx(async (raw) => {
      const { tx, seen } = counting(raw);
      const stored = await mixed.appendOwned(tx, [{ streamId: stream, streamVersion: 1, event: { type: 'Added', data: { amount: 7 } } }]);
      return { stored, seen };
    });
    expect(out.seen.length).toBeGreaterThan(1);
    expect(await amounts(out.stored.map((e) => e.eventId))).toEqual([7]);
    expect(await db.query(`SELECT total FROM rt.counters WHERE id = ?`, [stream])).toEqual([{ total: 7 }]);
  });
});

describe('outbox relay: batches read with their commit (pipelined transactions)', () => {
  // Polls an hour apart: whatever is published here within seconds came with its commit or was woken.
  beforeAll(async () => {
    await db.query('CREATE TABLE IF NOT EXISTS rt.inline_applied (event_id uuid PRIMARY KEY, amount integer NOT NULL)');
  });
  const commitAdds = (store: EventStore, amounts: number[]) =>
    db.pipelined(async (tx) => {
      const stream = `tail-${crypto.randomUUID()}`;
      const entries = amounts.map((amount, i) => ({ streamId: stream, streamVersion: i + 1, event: { type: 'Added' as const, data: { amount } } }));
      return (await store.appendOwned(tx, entries, { commit: true })).map((e) => e.eventId);
    });
  async function started(name: string, opts: { batchSize?: number } = {}) {
    await new OutboxRelay({ db, nats, logger, name, toMessage }).drain();
    const out: string[] = [];
    const metrics = new Metrics(`runtime-test-${name}`);
    const relay = new OutboxRelay({ db, nats, logger, name, toMessage, metrics, pollIntervalMs: 3_600_000, afterPublish: (e) => void out.push(e.eventId), ...opts });
    const store = new EventStore(db, [applied]);
    relay.attach(store);
    relay.start();
    await relay.drain(); // holds the lock once this returns
    const batches = async (read: 'relay' | 'commit') => (await metrics.outboxBatches.get()).values.find((v) => v.labels.read === read)?.value ?? 0;
    return { relay, store, out, batches };
  }

  it('publishes the events of each commit from the rows that came back with it: once each, in commit order, without a read of its own', async () => {
    const { relay, store, out, batches } = await started('tail');
    try {
      // A first commit, then a pause: the relay's own start-up batches are done (while one runs, commits carry no read).
      const first = await commitAdds(store, [0]);
      await eventually(async () => first.every((id) => out.includes(id)), 10_000);
      await new Promise((r) => setTimeout(r, 100));
      const before = { relay: await batches('relay'), commit: await batches('commit') };
      const ids: string[] = [];
      for (let i = 0; i < 8; i++) ids.push(...(await commitAdds(store, [i, i + 100])));
      await eventually(async () => ids.every((id) => out.includes(id)), 10_000);
      expect(out).toEqual([...first, ...ids]);
      // Alone on the server every commit's read brings its events (8 batches, none of the relay's own);
      // a transaction running meanwhile anywhere on it (another test's, another database's: the xmin is
      // the server's) holds a read back, and that commit wakes the relay instead.
      const byCommit = (await batches('commit')) - before.commit;
      const byRelay = (await batches('relay')) - before.relay;
      expect(byCommit).toBeGreaterThan(0);
      expect(byCommit).toBeLessThanOrEqual(8); // at most one batch per commit
      expect(byRelay).toBeLessThanOrEqual(8 - byCommit);
      // Concurrent commits: tails from the same checkpoint overlap, and one may come back without its
      // own events (an older commit still running when it read): still each event exactly once.
      const concurrent = (await Promise.all(Array.from({ length: 12 }, (_, i) => commitAdds(store, [i])))).flat();
      await eventually(async () => concurrent.every((id) => out.includes(id)), 10_000);
      await new Promise((r) => setTimeout(r, 100));
      expect(out).toHaveLength(first.length + ids.length + concurrent.length);
      expect(new Set(out).size).toBe(out.length);
    } finally {
      await relay.stop();
    }
  });

  it('a commit held back by an older transaction, or more than a batch, wakes the relay to read the rest itself', async () => {
    const { relay, store, out, batches } = await started('tail-rest', { batchSize: 3 });
    const other = await db.session();
    try {
      const five = await commitAdds(store, [1, 2, 3, 4, 5]); // the tail brings back 3 (a full batch)
      await eventually(async () => five.every((id) => out.includes(id)), 10_000);
      expect(out).toEqual(five);
      expect(await batches('relay')).toBeGreaterThanOrEqual(1);
      // An older transaction still running (it has an xid) keeps every read below it, the tail's too.
      await other.query('BEGIN');
      await other.query('SELECT pg_current_xact_id()');
      const [held] = await commitAdds(store, [6]);
      await new Promise((r) => setTimeout(r, 300));
      expect(out).not.toContain(held);
      await other.query('COMMIT');
      await eventually(async () => out.includes(held!), 3000);
      expect(new Set(out).size).toBe(out.length);
    } finally {
      await other.close();
      await relay.stop();
    }
  });

  it('a relay that does not hold the lock carries no read on commits: the holder is kicked as before', async () => {
    const name = 'tail-standby';
    const a: string[] = [];
    const holder = await started(name);
    // Another process's view: its own Database, its relay without the lock (setCommitTail is per Database).
    const otherDb = await Database.connect({ url: env.databaseUrl, schema: 'rt', migrations: [] });
    const otherStandby = new OutboxRelay({ db: otherDb, nats, logger, name, toMessage, pollIntervalMs: 3_600_000, afterPublish: (e) => void a.push(e.eventId) });
    const otherStore = new EventStore(otherDb, [applied]);
    otherStandby.attach(otherStore);
    otherStandby.start();
    try {
      const ids = await otherDb.pipelined(async (tx) =>
        (await otherStore.appendOwned(tx, [{ streamId: `tail-${crypto.randomUUID()}`, streamVersion: 1, event: { type: 'Added', data: { amount: 1 } } }], { commit: true })).map((e) => e.eventId),
      );
      await eventually(async () => ids.every((id) => holder.out.includes(id)), 10_000);
      expect(a).toEqual([]);
      expect(await holder.batches('relay')).toBeGreaterThanOrEqual(1);
    } finally {
      await otherStandby.stop();
      await otherDb.close();
      await holder.relay.stop();
    }
  });
});
