// Delivery benchmark (issue 5, "Benchmark"). Run: npm run bench -w @bil/delivery
// Size: past 400 lines because its phases (1:1, group, storm, memory) share
// one set-up of nodes, sockets and the stand-in chat.
//
// Processes, all on 127.0.0.1 (local Redis and NATS of the test env):
//   - this orchestrator: the load generator, and chat stood in by the tests'
//     in-process FakeChat (test/support.ts: it stores messages in memory,
//     publishes chat's MessagePosted events to JetStream and serves
//     ListChats/ListMessages/GetChat over gRPC for catch-up);
//   - two delivery nodes (node dist/main.js, child processes, production
//     settings) and, for the memory figure, a third one;
//   - BENCH_WORKERS client processes (bench/client-worker.ts) holding the
//     sockets; they parse every frame and report latency aggregates over IPC;
//   - the raw `ws` baseline server (bench/raw-ws-server.ts).
// Load is open-loop: sends are scheduled at intended times (a 1 ms timer
// tick) whatever happened to earlier ones, and latency runs from the
// intended send time (carried in the message) to the frame's arrival in a
// client process, so a stalled sender or node counts against the latency.
//
// Knobs (env): BENCH_WORKERS (3), BENCH_DEVICES (2000), BENCH_RATES
// (100,200,400,800,1200,1600 msg/s), BENCH_STEP_S (5), BENCH_GROUP (1000),
// BENCH_GROUP_RATES (5,10,20), BENCH_GROUP_S (5), BENCH_MISSED (50),
// BENCH_IDLE (10000), BENCH_BYTES (envelope payload, 1024),
// BENCH_PHASES (1to1,group,storm,memory), BENCH_CPU_PROF (a directory: the
// two nodes write --cpu-prof profiles there), BENCH_MAX_S (900: hard stop).
import { fork, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { createTestEnv } from '@bil/testkit';
import { FakeChat, TokenIssuer, freePort, newUser, startNode, testNats, type DeliveryNode, type Device } from '../test/support.js';
import type { WorkerRequest, WorkerStats } from './client-worker.js';

const here = dirname(fileURLToPath(import.meta.url));
const envInt = (name: string, d: number) => Number(process.env[name] ?? d);
const envList = (name: string, d: number[]) => (process.env[name] ? process.env[name]!.split(',').map(Number) : d);
const WORKERS = envInt('BENCH_WORKERS', 3);
const DEVICES = envInt('BENCH_DEVICES', 2000);
const RATES = envList('BENCH_RATES', [100, 200, 400, 800, 1200, 1600]);
const STEP_S = envInt('BENCH_STEP_S', 5);
const GROUP = envInt('BENCH_GROUP', 1000);
const GROUP_RATES = envList('BENCH_GROUP_RATES', [5, 10, 20]);
const GROUP_S = envInt('BENCH_GROUP_S', 5);
const MISSED = envInt('BENCH_MISSED', 50);
const IDLE = envInt('BENCH_IDLE', 10_000);
const BYTES = envInt('BENCH_BYTES', 1024);
const PHASES = new Set((process.env.BENCH_PHASES ?? '1to1,group,storm,memory').split(','));
const MAX_S = envInt('BENCH_MAX_S', 900);
const PAD = 'x'.repeat(BYTES);
const KEY = 'k'.repeat(300);

const now = () => performance.timeOrigin + performance.now();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const load = () => loadavg().map((l) => l.toFixed(2)).join(' ');
const log = (s: string) => process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)} load ${load()}] ${s}\n`);
const fdLimit = /Max open files\s+(\d+)\s+(\d+)/.exec(readFileSync('/proc/self/limits', 'utf8'));
const rssOf = (pid: number) => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) * 1024;

function pct(sorted: number[], p: number): number {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.ceil((sorted.length * p) / 100) - 1)]! : NaN;
}
const ms = (v: number) => (Number.isFinite(v) ? (v >= 1000 ? `${(v / 1000).toFixed(2)} s` : `${v.toFixed(1)} ms`) : '—');

// ---------------------------------------------------------------- child processes

class Child {
  private next = 1;
  private readonly waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  readonly ready: Promise<void>;
  constructor(
    readonly proc: ChildProcess,
    readyOnFirst: boolean,
  ) {
    let onReady!: () => void;
    this.ready = readyOnFirst ? new Promise((r) => (onReady = r)) : Promise.resolve();
    proc.on('message', (m: { id: number; result?: unknown; error?: string }) => {
      if (m.id === 0) return onReady?.();
      const w = this.waiting.get(m.id);
      this.waiting.delete(m.id);
      if (m.error) w?.reject(new Error(m.error));
      else w?.resolve(m.result);
    });
    proc.on('exit', () => {
      for (const w of this.waiting.values()) w.reject(new Error('child exited'));
    });
  }
  static start(file: string, readyOnFirst = false): Child {
    return new Child(fork(join(here, file), [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }), readyOnFirst);
  }
  call<T>(req: Record<string, unknown>): Promise<T> {
    const id = this.next++;
    return new Promise<T>((resolve, reject) => {
      this.waiting.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.proc.send({ ...req, id });
    });
  }
}

type Req = WorkerRequest extends infer R ? (R extends { id: number } ? Omit<R, 'id'> : never) : never;
const all = <T>(workers: Child[], req: Req) => Promise.all(workers.map((w) => w.call<T>(req)));

/** The load generator's own lateness (actual − intended send time) in the last openLoop, sorted. */
let generatorLag: number[] = [];
/** Calls `fire(i, intended)` for i = 0..count-1 at start + i/rate, open-loop. */
async function openLoop(rate: number, count: number, fire: (i: number, intended: number) => void): Promise<number> {
  const start = now() + 100;
  const lags: number[] = [];
  let i = 0;
  while (i < count) {
    const t = now();
    while (i < count && start + (i * 1000) / rate <= t) {
      const intended = start + (i * 1000) / rate;
      lags.push(now() - intended);
      fire(i, intended);
      i++;
    }
    await sleep(1);
  }
  generatorLag = lags.sort((a, b) => a - b);
  return start;
}
const lagNote = () => `generator lag p99 ${ms(pct(generatorLag, 99))}`;

/** Waits until the workers have `expected` latencies (or `graceMs` passed). */
async function drain(workers: Child[], expected: number, graceMs: number): Promise<void> {
  const end = Date.now() + graceMs;
  while (Date.now() < end) {
    const counts = await all<{ n: number }>(workers, { op: 'count' });
    if (counts.reduce((a, c) => a + c.n, 0) >= expected) return;
    await sleep(100);
  }
}

interface Merged {
  lat: number[];
  last: number[];
  firstIntended: number;
  lastRecv: number;
  stats: WorkerStats[];
}
async function collect(workers: Child[], tag?: string): Promise<Merged> {
  const stats = await all<WorkerStats>(workers, { op: 'stats', tag });
  const lat = stats.flatMap((s) => s.lat).sort((a, b) => a - b);
  const last = new Map<string, number>();
  for (const s of stats) for (const [k, v] of Object.entries(s.last)) last.set(k, Math.max(last.get(k) ?? 0, v));
  return {
    lat,
    last: [...last.values()].sort((a, b) => a - b),
    firstIntended: Math.min(...stats.map((s) => s.firstIntended)),
    lastRecv: Math.max(...stats.map((s) => s.lastRecv)),
    stats,
  };
}

// ---------------------------------------------------------------- table

const rows: string[][] = [];
const notes: string[] = [];
function row(scenario: string, rate: string, m: Pick<Merged, 'lat'> | undefined, extra: string): void {
  rows.push([scenario, rate, m ? ms(pct(m.lat, 50)) : '', m ? ms(pct(m.lat, 99)) : '', m ? ms(pct(m.lat, 99.9)) : '', extra, load()]);
}
function printTable(): void {
  const header = ['scenario', 'rate', 'p50', 'p99', 'p99.9', 'throughput / notes', 'load avg (1/5/15 min)'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) => `| ${r.map((c, i) => (c ?? '').padEnd(widths[i]!)).join(' | ')} |`;
  process.stdout.write(`\n${line(header)}\n|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|\n${rows.map(line).join('\n')}\n\n${notes.join('\n')}\n`);
}

// ---------------------------------------------------------------- run

const kills: Array<() => void> = [];
const watchdog = setTimeout(() => {
  log(`BENCH_MAX_S=${MAX_S} passed: stopping`);
  printTable();
  for (const kill of kills) kill();
  process.exit(2);
}, MAX_S * 1000);
watchdog.unref();

log(`open files limit ${fdLimit?.[1]} (hard ${fdLimit?.[2]}); ${WORKERS} client processes; cores ${(await import('node:os')).cpus().length}`);
const env = await createTestEnv('deliverybench');
const nats = await testNats(env);
const issuer = new TokenIssuer();
const chat = new FakeChat(nats);
const backends = { identity: await issuer.start(), chat: await chat.start() };
// Production settings (startNode's defaults are the tests' short timers).
const production = {
  DELIVERY_HEARTBEAT_MS: '10000',
  DELIVERY_PRESENCE_TTL_SECONDS: '30',
  DELIVERY_REVOCATION_CHECK_MS: '15000',
  DELIVERY_FANOUT_ACK_WAIT_MS: '10000',
  DELIVERY_REORDER_WAIT_MS: '250',
  DELIVERY_MAX_BUFFERED_BYTES: String(1024 * 1024),
  // Every bench socket comes from 127.0.0.1 (10,000 idle ones at once): no per-address cap here.
  DELIVERY_MAX_CONNECTIONS_PER_ADDRESS: '0',
};
const profArgs = process.env.BENCH_CPU_PROF ? ['--cpu-prof', '--cpu-prof-dir', process.env.BENCH_CPU_PROF] : [];
const metricsPorts = [await freePort(), await freePort()];
const nodes: DeliveryNode[] = await Promise.all([
  startNode(env, 'bench-a', backends, { ...production, DELIVERY_METRICS_PORT: String(metricsPorts[0]) }, profArgs),
  startNode(env, 'bench-b', backends, { ...production, DELIVERY_METRICS_PORT: String(metricsPorts[1]) }, profArgs),
]);
/** Gap fills (live frames that waited past the reorder window and were fetched from chat) and slow consumers, both nodes. */
async function counters(): Promise<{ gapFills: number; slow: number }> {
  let gapFills = 0;
  let slow = 0;
  for (const port of metricsPorts) {
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    gapFills += Number(/^bil_delivery_gap_fills_total(?:{[^}]*})? (\S+)/m.exec(text)?.[1] ?? 0);
    slow += Number(/^bil_delivery_slow_consumers_total(?:{[^}]*})? (\S+)/m.exec(text)?.[1] ?? 0);
  }
  return { gapFills, slow };
}
/** CPU seconds (user + system) the two nodes have used so far (/proc/<pid>/stat, 100 ticks/s). */
const cpuOf = (pid: number) => {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
};
const nodesCpu = () => nodes.reduce((sum, n) => sum + cpuOf(n.pid), 0);
const delta = async <T>(fn: () => Promise<T>): Promise<[T, string]> => {
  const a = await counters();
  const cpu = nodesCpu();
  const r = await fn();
  const b = await counters();
  return [r, `nodes' CPU ${(nodesCpu() - cpu).toFixed(1)} s; ${b.gapFills - a.gapFills} gap fills, ${b.slow - a.slow} slow consumers`];
};
const workers = Array.from({ length: WORKERS }, () => Child.start('client-worker.ts'));
const raw = Child.start('raw-ws-server.ts', true);
const extra: DeliveryNode[] = [];
kills.push(() => {
  for (const n of [...nodes, ...extra]) n.kill();
  for (const c of [...workers, raw]) c.proc.kill('SIGKILL');
});

async function connectDevices(
  devs: Array<{ d: Device; token: string; cursors?: Record<string, number> }>,
  url: (i: number) => string,
  tag: string,
  concurrency: number,
  raw = false,
  retries = 0,
) {
  // Device i goes to worker i % WORKERS; one request per (worker, url).
  const batches = new Map<string, { w: Child; url: string; devices: Array<{ deviceId: string; token: string; cursors?: Record<string, number> }> }>();
  devs.forEach((x, i) => {
    const key = `${i % WORKERS}|${url(i)}`;
    let b = batches.get(key);
    if (!b) batches.set(key, (b = { w: workers[i % WORKERS]!, url: url(i), devices: [] }));
    b.devices.push({ deviceId: x.d.deviceId, token: x.token, cursors: x.cursors });
  });
  const res = await Promise.all([...batches.values()].map((b) => b.w.call<{ ok: number; failed: number; retried: number }>({ op: 'connect', url: b.url, tag, raw, devices: b.devices, concurrency, retries })));
  return { ok: res.reduce((a, r) => a + r.ok, 0), failed: res.reduce((a, r) => a + r.failed, 0), retried: res.reduce((a, r) => a + r.retried, 0) };
}

try {
  await raw.ready;
  const rawPort = (await raw.call<{ port: number }>({ op: 'port' })).port;

  // ---- set-up: DEVICES devices in DEVICES/2 personal chats (pairs split over the
  // two nodes), and a GROUP-member group over the first GROUP devices.
  const devices = Array.from({ length: DEVICES }, () => newUser()[0]!);
  const pairs: string[] = [];
  for (let k = 0; k < DEVICES / 2; k += 50) {
    pairs.push(
      ...(await Promise.all(
        Array.from({ length: Math.min(50, DEVICES / 2 - k) }, (_, j) => chat.createChat('personal', [devices[2 * (k + j)]!.userId, devices[2 * (k + j) + 1]!.userId])),
      )),
    );
  }
  const groupMembers = devices.slice(0, GROUP);
  const groupId = await chat.createChat('group', groupMembers.map((d) => d.userId));
  const tokens = await Promise.all(devices.map((d) => issuer.token(d, { ttlSeconds: 3600 })));
  const nodeOf = (i: number) => nodes[i % 2]!.url;
  let t0 = now();
  const conn = await connectDevices(
    devices.map((d, i) => ({ d, token: tokens[i]! })),
    nodeOf,
    'dev',
    50,
  );
  log(`${conn.ok} devices connected and synced (${conn.failed} failed) in ${ms(now() - t0)}`);

  // ---- 1:1 between DEVICES devices at increasing rates, with raw NATS beside.
  if (PHASES.has('1to1')) {
    await nats.nc.flush();
    const natsSubject = `${env.natsPrefix}bench.raw`;
    await workers[0]!.call({ op: 'nats', url: env.natsUrl, subject: natsSubject });
    let knee: number | undefined;
    let lastUnder: number | undefined;
    for (const rate of RATES) {
      const count = rate * STEP_S;
      await all(workers, { op: 'reset' });
      const [, fills] = await delta(async () => {
        await openLoop(rate, count, (i, intended) => {
          const k = Math.floor(Math.random() * pairs.length);
          const flip = Math.random() < 0.5 ? 0 : 1;
          const sender = devices[2 * k + flip]!;
          const recipient = devices[2 * k + 1 - flip]!;
          void chat.post(pairs[k]!, sender, { wrappedKeys: { [recipient.deviceId]: KEY, [sender.deviceId]: KEY }, body: `T${intended}|${PAD}` });
        });
        await drain(workers, count, 10_000);
      });
      const m = await collect(workers);
      const p99 = pct(m.lat, 99);
      row('1:1 delivery (2 nodes, pairs across nodes)', `${rate}/s`, m, `${m.lat.length}/${count} delivered; ${fills}; ${lagNote()}`);
      if (p99 > 100 && knee === undefined) knee = rate;
      if (p99 <= 100) lastUnder = rate;
      log(`1:1 ${rate}/s p50 ${ms(pct(m.lat, 50))} p99 ${ms(p99)} (${m.lat.length}/${count})`);

      await all(workers, { op: 'reset' });
      await openLoop(rate, count, (i, intended) => {
        nats.nc.publish(natsSubject, JSON.stringify({ seq: i, envelope: JSON.stringify({ ciphertext: `T${intended}|${PAD}` }) }));
      });
      const lag = lagNote();
      await drain(workers, count, 5000);
      const n = await collect(workers);
      row('  raw NATS publish→subscribe (baseline)', `${rate}/s`, n, `${n.lat.length}/${count} delivered; ${lag}`);
      if (knee !== undefined) break;
    }
    notes.push(
      knee !== undefined
        ? `1:1: p99 passes 100 ms at ${knee} msg/s (last rate under: ${lastUnder ?? 'none'} msg/s).`
        : `1:1: p99 stayed under 100 ms up to ${RATES.at(-1)} msg/s (the highest rate tried).`,
    );
  }

  // ---- a GROUP-member group, one device each, half on each node; raw ws broadcast beside.
  if (PHASES.has('group')) {
    const groupRow = (label: string, rate: number, m: Merged, expected: number, more = '') => {
      const secs = (m.lastRecv - m.firstIntended) / 1000;
      row(
        label,
        `${rate}/s × ${GROUP}`,
        m,
        `${Math.round(m.lat.length / secs)} deliveries/s; last delivery p50 ${ms(pct(m.last, 50))} p99 ${ms(pct(m.last, 99))}; ${m.lat.length}/${expected}${more}`,
      );
    };
    for (const rate of GROUP_RATES) {
      const count = rate * GROUP_S;
      const expected = count * (GROUP - 1); // not the sender's own device
      await all(workers, { op: 'reset' });
      const [, fills] = await delta(async () => {
        await openLoop(rate, count, (i, intended) => {
          void chat.post(groupId, groupMembers[i % GROUP]!, { body: `T${intended}|${PAD}` });
        });
        await drain(workers, expected, 20_000);
      });
      const m = await collect(workers);
      groupRow('group fan-out, per frame (2 nodes)', rate, m, expected, `; ${fills}; ${lagNote()}`);
      log(`group ${rate}/s p50 ${ms(pct(m.lat, 50))} p99 ${ms(pct(m.lat, 99))} last p99 ${ms(pct(m.last, 99))} (${m.lat.length}/${expected})`);
    }
    const rawConn = await connectDevices(
      groupMembers.map((d) => ({ d, token: '' })),
      () => `ws://127.0.0.1:${rawPort}/`,
      'raw',
      50,
      true,
    );
    for (const rate of GROUP_RATES) {
      const count = rate * GROUP_S;
      const expected = count * rawConn.ok;
      await all(workers, { op: 'reset' });
      const cpu = cpuOf(raw.proc.pid!);
      await raw.call({ op: 'broadcast', rate, count, pad: PAD, startAt: now() + 100 });
      await drain(workers, expected, 20_000);
      const m = await collect(workers, 'raw');
      groupRow('  raw ws broadcast (baseline, 1 process)', rate, m, expected, `; server CPU ${(cpuOf(raw.proc.pid!) - cpu).toFixed(1)} s`);
    }
    await all(workers, { op: 'close', tag: 'raw' });
  }

  // ---- reconnect storm: every device offline, MISSED new messages in each of its
  // chats, then all reconnect at once with their cursors.
  if (PHASES.has('storm')) {
    await all(workers, { op: 'close', tag: 'dev' });
    await sleep(1000);
    const cursors = new Map<string, number>();
    for (const id of [...pairs, groupId]) cursors.set(id, chat.chats.get(id)!.messages.length);
    for (let k = 0; k < pairs.length; k++) {
      for (let j = 0; j < MISSED; j++) await chat.post(pairs[k]!, devices[2 * k + (j % 2)]!, { body: `missed ${j}`, publish: false });
    }
    await all(workers, { op: 'reset' });
    t0 = now();
    const storm = await connectDevices(
      devices.map((d, i) => ({
        d,
        token: tokens[i]!,
        cursors: { [pairs[Math.floor(i / 2)]!]: cursors.get(pairs[Math.floor(i / 2)]!)!, ...(i < GROUP ? { [groupId]: cursors.get(groupId)! } : {}) },
      })),
      nodeOf,
      'dev',
      0,
      false,
      6,
    );
    const st = await all<WorkerStats>(workers, { op: 'stats', tag: 'dev' });
    const syncedAll = Math.max(...st.map((s) => s.syncedMax)) - t0;
    const minM = Math.min(...st.map((s) => s.minMessages));
    const maxM = Math.max(...st.map((s) => s.maxMessages));
    rows.push([
      `reconnect storm: ${DEVICES} devices × ${MISSED} missed`,
      'all at once',
      '',
      '',
      '',
      `all synced after ${ms(syncedAll)}; ${storm.ok}/${DEVICES} synced (${storm.retried} reconnects with backoff), ${st.reduce((a, s) => a + s.totalMessages, 0)} messages (${minM}–${maxM} per device)`,
      load(),
    ]);
    const closes: Record<string, number> = {};
    for (const x of st) for (const [code, k] of Object.entries(x.closed)) closes[code] = (closes[code] ?? 0) + k;
    if (storm.failed > 0) log(`storm: first failure on node A: ${/.*(catch-up failed|presence unavailable|accepting a socket failed).*/.exec(nodes[0]!.output() + nodes[1]!.output())?.[0] ?? 'none logged'}`);
    log(`storm: ${storm.ok} synced in ${ms(syncedAll)}, failed ${storm.failed}; close codes ${JSON.stringify(closes)}`);
    await all(workers, { op: 'close', tag: 'dev' });
  } else {
    await all(workers, { op: 'close', tag: 'dev' });
  }

  // ---- memory per idle authenticated connection: a fresh node, IDLE devices
  // (no chats) connected and synced; RSS delta / connections. Raw ws beside.
  if (PHASES.has('memory')) {
    const mem = await startNode(env, 'bench-mem', backends, production, profArgs);
    extra.push(mem);
    const idle = Array.from({ length: IDLE }, () => newUser()[0]!);
    const idleTokens = await Promise.all(idle.map((d) => issuer.token(d, { ttlSeconds: 3600 })));
    await sleep(2000);
    const before = rssOf(mem.pid);
    t0 = now();
    const c = await connectDevices(
      idle.map((d, i) => ({ d, token: idleTokens[i]! })),
      () => mem.url,
      'idle',
      100,
    );
    const connectS = (now() - t0) / 1000;
    await sleep(3000);
    const after = rssOf(mem.pid);
    rows.push([
      `idle authenticated connections (1 node)`,
      `${c.ok} sockets`,
      '',
      '',
      '',
      `${((after - before) / c.ok / 1024).toFixed(1)} KiB/connection (RSS ${(before / 2 ** 20).toFixed(0)} → ${(after / 2 ** 20).toFixed(0)} MiB); connected in ${connectS.toFixed(1)} s (${Math.round(c.ok / connectS)}/s)`,
      load(),
    ]);
    log(`memory: ${c.ok} ok ${c.failed} failed, ${((after - before) / c.ok / 1024).toFixed(1)} KiB/conn`);
    await all(workers, { op: 'close', tag: 'idle' });
    await mem.stop();

    const rawBefore = (await raw.call<{ rss: number }>({ op: 'rss' })).rss;
    const rc = await connectDevices(
      idle.map((d) => ({ d, token: '' })),
      () => `ws://127.0.0.1:${rawPort}/`,
      'raw',
      100,
      true,
    );
    await sleep(3000);
    const rawAfter = (await raw.call<{ rss: number }>({ op: 'rss' })).rss;
    rows.push([
      `  raw ws idle sockets (baseline)`,
      `${rc.ok} sockets`,
      '',
      '',
      '',
      `${((rawAfter - rawBefore) / rc.ok / 1024).toFixed(1)} KiB/connection (RSS ${(rawBefore / 2 ** 20).toFixed(0)} → ${(rawAfter / 2 ** 20).toFixed(0)} MiB)`,
      load(),
    ]);
    await all(workers, { op: 'close', tag: 'raw' });
  }
} finally {
  if (process.env.BENCH_DUMP_METRICS) {
    for (const port of metricsPorts) {
      const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      process.stderr.write(text.split('\n').filter((l) => /^(bil_delivery|nodejs_eventloop_lag|nodejs_gc_duration_seconds_sum)/.test(l)).join('\n') + '\n');
    }
  }
  printTable();
  await Promise.allSettled(workers.map((w) => w.call({ op: 'exit' })));
  await Promise.allSettled([raw.call({ op: 'exit' })]);
  await Promise.allSettled([...nodes, ...extra].map((n) => n.stop()));
  chat.stop();
  issuer.stop();
  await nats.nc.close();
  await env.cleanup();
  clearTimeout(watchdog);
}
process.exit(0);
