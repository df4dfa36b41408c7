// npm run bench:e2e [-- --quick] [-- --only=one-to-one,hot-chat]
// Starts the project (as npm start does) and the raw server side by side,
// runs each measurement against both back to back, prints one table per
// measurement (project | raw | ratio), writes bench/results/<time>.{md,json}
// and, for a full run of everything, the tables into docs/performance.md.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { installRsaKeyPool } from './clients.js';
import type { Ctx, Measurement, Outcome } from './context.js';
import { digest } from './measure/digest.js';
import { closeGroup, fanout } from './measure/fanout.js';
import { history } from './measure/history.js';
import { login } from './measure/login.js';
import { closeWorld, hotChat, oneToOne } from './measure/one-to-one.js';
import { sockets } from './measure/sockets.js';
import { storm } from './measure/storm.js';
import { startStacks } from './stack.js';
import { renderTable, type Table } from './stats.js';

// In run order: idle sockets first, on processes that have not yet grown and
// shrunk their heaps (RSS per socket is otherwise lost in memory returned).
const MEASUREMENTS: Record<string, Measurement> = {
  sockets,
  'one-to-one': oneToOne,
  'hot-chat': hotChat,
  history,
  fanout,
  storm,
  digest,
  login,
};

const args = process.argv.slice(2);
const quick = process.env.BENCH_QUICK === '1' || args.includes('--quick');
const only = args.find((a) => a.startsWith('--only='))?.slice(7).split(',');
const names = only ?? Object.keys(MEASUREMENTS);
for (const n of names) {
  if (!MEASUREMENTS[n]) {
    console.error(`bench: unknown measurement "${n}" (one of: ${Object.keys(MEASUREMENTS).join(', ')})`);
    process.exit(2);
  }
}
const root = join(import.meta.dirname, '..', '..');
const started = Date.now();
const log = (s: string) => console.log(`[bench ${((Date.now() - started) / 1000).toFixed(0).padStart(4)} s] ${s}`);

installRsaKeyPool();
const stack = await startStacks(log);
const ctx: Ctx = { stack, quick, log };
const pgVersion = (await stack.db.query<{ v: string }>("SELECT current_setting('server_version') AS v")).rows[0]!.v;
const machine = `${cpus().length} cores (nproc), ${cpus()[0]?.model ?? '?'}, ${(totalmem() / 2 ** 30).toFixed(1)} GiB RAM, Node ${process.version}, PostgreSQL ${pgVersion}`;
log(`machine: ${machine}; WebSocket path: ${stack.wsUrl}`);

const tables: Table[] = [];
const data: Record<string, unknown> = {};
let interrupted = false;
const stopNow = async () => {
  if (interrupted) return;
  interrupted = true;
  log('interrupted: stopping both systems');
  closeGroup();
  closeWorld();
  await stack.stop();
  process.exit(130);
};
process.on('SIGINT', () => void stopNow());
process.on('SIGTERM', () => void stopNow());

for (const name of names) {
  const t0 = Date.now();
  log(`── ${name}`);
  let out: Outcome;
  try {
    out = await MEASUREMENTS[name]!(ctx);
  } catch (err) {
    log(`${name} failed: ${(err as Error).stack ?? String(err)}`);
    out = { tables: [{ name, title: name, rows: [], notes: [`failed: ${(err as Error).message.split('\n')[0]}`] }], data: { error: String(err) } };
  }
  data[name] = { seconds: (Date.now() - t0) / 1000, ...((out.data as object) ?? {}) };
  for (const t of out.tables) {
    tables.push(t);
    console.log(`\n${renderTable(t)}\n`);
  }
}
closeGroup();
closeWorld();
await stack.stop();

const seconds = (Date.now() - started) / 1000;
const command = `npm run bench:e2e${quick ? ' -- --quick' : ''}${only ? ` -- --only=${only.join(',')}` : ''}`;
const stamp = new Date(started).toISOString().replace(/[:.]/g, '-');
const header = [
  `Run ${new Date(started).toISOString()} (${quick ? 'quick' : 'full'} mode, ${seconds.toFixed(0)} s): \`${command}\``,
  '',
  `Machine: ${machine}. WebSocket path measured: ${stack.wsUrl.includes(stack.ports.BIL_GATEWAY_PORT) ? `through the gateway's /v1/ws as npm start routes it (${process.env.GATEWAY_WS_HANDOFF === 'proxy' ? 'piped to delivery' : 'the socket handed to delivery'})` : stack.wsUrl}.`,
].join('\n');
const md = [header, '', ...tables.map(renderTable).flatMap((t) => [t, ''])].join('\n');
const dir = join(root, 'bench', 'results');
mkdirSync(dir, { recursive: true });
writeFileSync(join(dir, `${stamp}.md`), md);
writeFileSync(join(dir, `${stamp}.json`), JSON.stringify({ started: new Date(started).toISOString(), quick, command, machine, seconds, tables, data }, null, 2));
log(`results: bench/results/${stamp}.md and .json (${seconds.toFixed(0)} s)`);

if (!only && !quick) {
  // The latest full run replaces the block between the markers in docs/performance.md.
  const docs = join(root, 'docs', 'performance.md');
  const text = readFileSync(docs, 'utf8');
  const [a, b] = ['<!-- bench:e2e results start -->', '<!-- bench:e2e results end -->'];
  const i = text.indexOf(a);
  const j = text.indexOf(b);
  if (i >= 0 && j > i) {
    writeFileSync(docs, `${text.slice(0, i + a.length)}\n${md.replace(/^### /gm, '#### ')}\n${text.slice(j)}`);
    log('docs/performance.md: latest results updated');
  }
}
process.exit(0);
