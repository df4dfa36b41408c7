// `npm run faults`: the fault campaign of issue 14 (docs/operations.md,
// "Fault campaign"). Starts its own PostgreSQL, Redis and NATS and the whole
// system on free ports, a few SDK users sending 5 messages a second in 1:1
// chats and a group while every device is connected live, then runs each
// fault in turn: kill -9 of every service and its restart, NATS, Redis and
// PostgreSQL down 10 s. For each it prints what the clients saw, how long
// after the restore live delivery resumed and everything sent was visible on
// every device, and whether any acknowledged message was lost, duplicated or
// out of order. Exits 1 if a check fails. Knobs: FAULTS_RATE (sends/s, 5),
// FAULTS_OUTAGE_MS (dependency outages, 10000), FAULTS_ONLY (comma-separated
// scenario names, e.g. "redis,nats"), FAULTS_LIVE_LIMIT_MS (6000: first live delivery
// and every socket live again after a restore), FAULTS_NEW_SEND_LIMIT_MS (10000).
import { hostname, cpus, loadavg } from 'node:os';
import { OUTAGE_RETRY_BUDGET_MS } from '@bil/sdk';
import { FaultSystem } from './system.mjs';
import { Load } from './load.mjs';

const env = process.env;
const RATE = Number(env.FAULTS_RATE ?? 5);
const OUTAGE_MS = Number(env.FAULTS_OUTAGE_MS ?? 10_000);
const LIVE_LIMIT_MS = Number(env.FAULTS_LIVE_LIMIT_MS ?? 6000); // the SDK's 3 s capped reconnect delay plus a catch-up
// A send made just after a restore may still meet a 503 and wait out its Retry-After (2 s) behind the backlog.
const NEW_SEND_LIMIT_MS = Number(env.FAULTS_NEW_SEND_LIMIT_MS ?? 10_000);
const SERVICE_DOWN_MS = 2000; // a supervisor's restart delay
const SETTLE_MS = 40_000; // longer than the SDK's 30 s outage budget
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const log = (...a) => console.log('[faults]', ...a);

const sys = new FaultSystem();
const kill = (name) => ({ name, label: `kill -9 ${name}`, downMs: SERVICE_DOWN_MS, fault: () => sys.killService(name), restore: () => sys.startService(name) });
const server = (name, kind, label, mode) => ({
  name,
  label: `${label} down ${OUTAGE_MS / 1000} s`,
  downMs: OUTAGE_MS,
  fault: () => sys.servers[kind].stop(mode),
  restore: () => sys.servers[kind].start(),
});
let scenarios = [
  { name: 'baseline', label: 'none (baseline)', downMs: 3000, fault: async () => {}, restore: async () => {} },
  ...['identity', 'chat', 'delivery', 'digest', 'digest-worker', 'gateway'].map(kill),
  server('nats', 'nats', 'NATS (kill -9)', 'kill'),
  server('redis', 'redis', 'Redis (kill -9, data lost)', 'kill'),
  // Fast shutdown: the campaign's own cluster runs without fsync, so a crash could lose what it acknowledged.
  server('postgres', 'postgres', 'PostgreSQL (stopped)', 'graceful'),
];
if (env.FAULTS_ONLY) {
  const only = env.FAULTS_ONLY.split(',');
  scenarios = scenarios.filter((s) => s.name === 'baseline' || only.includes(s.name));
}

let load;
const results = [];
let failed = false;
const started = Date.now();

async function runScenario(sc) {
  const from = Date.now();
  const first = load.sends.length;
  await sleep(2000); // steady load before the fault
  const tFault = Date.now();
  await sc.fault();
  await sleep(sc.downMs);
  await sc.restore();
  const tBack = Date.now();
  const before = () => load.sends.slice(first).filter((s) => s.startedAt < tBack);
  let live;
  let sockets;
  let resumed;
  for (const end = tBack + SETTLE_MS; Date.now() < end; ) {
    if (sockets === undefined && load.users.every((u) => u.state === 'live')) sockets = Date.now() - tBack;
    if (resumed === undefined) {
      const after = load.users.flatMap((u) => [...u.got.values()].map((t) => t[0])).filter((t) => t >= tBack);
      if (after.length) resumed = Math.min(...after) - tBack;
    }
    if (live === undefined) {
      const times = load.sends.filter((s) => s.startedAt >= tBack).map((s) => load.deliveredAt(s)).filter((t) => t !== undefined);
      if (times.length) live = Math.min(...times) - tBack;
    }
    const b = before();
    const settled = b.every((s) => s.error !== undefined || (s.ackedAt !== undefined && load.deliveredAt(s) !== undefined));
    if (live !== undefined && resumed !== undefined && sockets !== undefined && settled) break;
    await sleep(50);
  }
  const b = before();
  const delivered = b.filter((s) => s.ackedAt !== undefined).map((s) => load.deliveredAt(s));
  const all = delivered.includes(undefined) ? undefined : Math.max(0, ...delivered.map((t) => t - tBack));
  await sleep(1000);
  const seen = new Map();
  for (const e of load.seen) if (e.at >= tFault && e.at <= Date.now()) seen.set(e.what, (seen.get(e.what) ?? 0) + 1);
  const r = { sc, from, first, last: load.sends.length, live, sockets, resumed, all, seen, downMs: tBack - tFault };
  results.push(r);
  const mine = load.sends.slice(first);
  log(`${sc.label} (load ${loadavg()[0].toFixed(0)}): down ${(r.downMs / 1000).toFixed(1)} s; first live delivery ${fmt(resumed)}, a message sent after the restore ${fmt(live)}, sockets live ${fmt(sockets)}; all delivered ${fmt(all)}; seen ${[...seen].map(([k, v]) => `${k} ×${v}`).join(', ') || 'nothing'}`);
  log(`  send→ack p50/p95 ${pct(mine.map((s) => s.ackedAt && s.ackedAt - s.startedAt))}, ack→delivered ${pct(mine.map((s) => s.ackedAt && load.deliveredAt(s) && load.deliveredAt(s) - s.ackedAt))}; devices ${load.users.map((u) => `${u.name}:${u.state}:missing ${load.missingOn(u, mine)}`).join(' ')}`);
  const crashed = sys.crashed();
  if (crashed.length) throw new Error(`services exited by themselves: ${crashed.join(', ')} (logs in ${sys.logDir})`);
}

function pct(values) {
  const v = values.filter((x) => typeof x === 'number').sort((a, b) => a - b);
  if (!v.length) return '-';
  return `${v[Math.floor(v.length / 2)]}/${v[Math.floor(v.length * 0.95)]} ms`;
}

const fmt = (ms) => (ms === undefined ? 'NOT within 40 s' : `${(ms / 1000).toFixed(1)} s`);

function table() {
  const rows = [['scenario', 'client-visible errors', 'recovery to live delivery', 'all delivered', 'lost', 'dup']];
  for (const r of results) {
    const sends = load.sends.slice(r.first, r.last);
    r.lost = load.missing(sends).length;
    r.dup = load.duplicates(sends);
    const errs = [...r.seen].map(([k, v]) => `${k} ×${v}`).join('; ') || 'none';
    rows.push([r.sc.label, errs, `${fmt(r.resumed)} (new send ${fmt(r.live)}, sockets ${fmt(r.sockets)})`, fmt(r.all), String(r.lost), String(r.dup)]);
    const bad = [];
    if (r.resumed === undefined || r.resumed > LIVE_LIMIT_MS) bad.push(`live delivery not back within ${LIVE_LIMIT_MS / 1000} s`);
    if (r.live === undefined || r.live > NEW_SEND_LIMIT_MS) bad.push(`a message sent after the restore not delivered within ${NEW_SEND_LIMIT_MS / 1000} s`);
    if (r.sockets === undefined || r.sockets > LIVE_LIMIT_MS) bad.push(`live clients not all live within ${LIVE_LIMIT_MS / 1000} s`);
    if (r.all === undefined) bad.push('some acknowledged message not delivered within 40 s');
    if (r.lost) bad.push(`${r.lost} acknowledged messages never reached a connected device`);
    if (r.dup) bad.push(`${r.dup} duplicates`);
    for (const [k] of r.seen) if (/^5\d\d internal|^500|undecryptable|ws error internal/.test(k)) bad.push(`clients saw ${k}`);
    // A send may give up only once the outage outlasted the SDK's retry budget.
    if (r.downMs < OUTAGE_RETRY_BUDGET_MS) for (const [k] of r.seen) if (k.startsWith('send failed')) bad.push(`clients saw ${k} after ${(r.downMs / 1000).toFixed(0)} s down`);
    if (bad.length) {
      failed = true;
      console.log(`FAIL ${r.sc.label}: ${bad.join('; ')}`);
    }
  }
  const widths = rows[0].map((_, i) => Math.max(...rows.map((row) => row[i].length)));
  const line = (row) => `| ${row.map((c, i) => c.padEnd(widths[i])).join(' | ')} |`;
  console.log(line(rows[0]));
  console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
  for (const row of rows.slice(1)) console.log(line(row));
}

try {
  log(`starting PostgreSQL, Redis, NATS and the system on free ports (logs in ${sys.logDir})`);
  await sys.start();
  load = new Load(sys.baseUrl);
  await load.setup();
  log(`${load.users.length} users live, chats: ${load.chats.map((c) => c.kind).join(', ')}; sending ${RATE}/s`);
  load.startLoad(RATE);
  for (const sc of scenarios) await runScenario(sc);
  load.stopLoad();
  for (const end = Date.now() + SETTLE_MS; load.pending() && Date.now() < end; ) await sleep(100);
  for (const end = Date.now() + 60_000; load.missing(load.sends).length && Date.now() < end; ) {
    log(`waiting: ${load.pending()} sends pending, ${load.missing(load.sends).length} acknowledged not on every device (${load.users.map((u) => `${u.name}:${u.state}:${load.missingOn(u, load.sends)}`).join(' ')})`);
    await sleep(5000);
  }
  table();
  const acked = load.sends.filter((s) => s.ackedAt !== undefined).length;
  const order = load.orderErrors();
  if (order) {
    failed = true;
    console.log(`FAIL per-chat order: ${order} messages arrived after a higher seq of their chat`);
  }
  if (load.pending()) {
    failed = true;
    console.log(`FAIL ${load.pending()} sends neither acknowledged nor failed ${SETTLE_MS / 1000} s after the load stopped`);
  }
  log(`${load.sends.length} sends, ${acked} acknowledged, ${load.missing(load.sends).length} missing on a device, ${load.duplicates(load.sends)} duplicates, ${order} out of order; ${((Date.now() - started) / 1000).toFixed(0)} s on ${hostname()} (${cpus().length} cores, load average ${loadavg().map((l) => l.toFixed(1)).join(' ')})`);
} catch (err) {
  failed = true;
  console.error(`[faults] ${err?.stack ?? err}`);
} finally {
  load?.close();
  await sys.stop();
}
log(failed ? 'FAILED' : 'passed');
process.exit(failed ? 1 : 0);
