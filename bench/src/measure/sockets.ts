// 4. idle authenticated sockets: RSS growth of the processes that hold them
// (delivery, plus the gateway when sockets open through it) per socket at 0 / 1,000
// / 5,000 sockets, vs the raw server's ws with the same token check. Each
// socket is its own device (delivery keeps one socket per device) with a
// token signed by identity's key (stack.mint), synced and then idle.
// RSS is noisy: a process returns memory freed by earlier work (the first
// full run printed negative figures when this came after the fan-out), and
// the first connections pay for JIT and buffers. So this measurement runs
// first in a full run, warms up with a round of sockets opened and closed,
// and reads RSS only once it has settled (three readings within 1%).
import { randomUUID } from 'node:crypto';
import type WebSocket from 'ws';
import { openSocket, pool } from '../clients.js';
import { sleep, type Ctx, type Outcome } from '../context.js';
import { rssBytes } from '../proc.js';
import { fmt, ratio, type Row } from '../stats.js';

interface Point {
  sockets: number;
  rss: number;
  connectPerSecond: number;
}

const WARM_UP = 200;

/** RSS of `pids` once three readings a second apart agree within 1% (at most 20 s). */
async function settledRss(pids: number[]): Promise<number> {
  const rss = () => pids.reduce((s, p) => s + rssBytes(p), 0);
  const seen: number[] = [rss()];
  for (let i = 0; i < 20; i++) {
    await sleep(1000);
    seen.push(rss());
    const last = seen.slice(-3);
    if (last.length === 3 && Math.max(...last) - Math.min(...last) <= 0.01 * Math.max(...last)) break;
  }
  return seen[seen.length - 1]!;
}

async function measure(ctx: Ctx, url: string, pids: number[], counts: number[]): Promise<Point[]> {
  const out: Point[] = [];
  const open: WebSocket[] = [];
  const connect = () => openSocket(url, ctx.stack.mint(randomUUID(), randomUUID()));
  const warm = await pool(Array.from({ length: WARM_UP }), 64, connect);
  for (const ws of warm) ws.terminate();
  await sleep(2000);
  for (const n of counts) {
    const need = n - open.length;
    const t0 = performance.now();
    if (need > 0) open.push(...(await pool(Array.from({ length: need }), 64, connect)));
    const connectPerSecond = need > 0 ? need / ((performance.now() - t0) / 1000) : NaN;
    const rss = await settledRss(pids); // idle: heartbeats, timers and the allocator settle
    out.push({ sockets: n, rss, connectPerSecond });
    ctx.log(`sockets ${url}: ${n} open, RSS ${(rss / 2 ** 20).toFixed(1)} MiB`);
  }
  for (const ws of open) ws.terminate();
  await sleep(2000);
  return out;
}

export async function sockets(ctx: Ctx): Promise<Outcome> {
  const { stack } = ctx;
  const counts = ctx.quick ? [0, 500, 1000] : [0, 1000, 5000];
  const viaGateway = stack.wsUrl.includes(`:${stack.ports.BIL_GATEWAY_PORT}/`);
  const projectPids = [stack.processes.pids.delivery!, ...(viaGateway ? [stack.processes.pids.gateway!] : [])];
  const project = await measure(ctx, stack.wsUrl, projectPids, counts);
  const raw = await measure(ctx, stack.raw.wsUrl, [stack.processes.pids.raw!], counts);
  const rows: Row[] = [];
  for (let i = 1; i < counts.length; i++) {
    const per = (p: Point[]) => (p[i]!.rss - p[0]!.rss) / counts[i]! / 1024;
    rows.push({ label: `RSS per idle socket at ${counts[i]}`, project: fmt(per(project), 'KiB'), raw: fmt(per(raw), 'KiB'), ratio: ratio(per(project), per(raw)) });
    rows.push({ label: `connects/s up to ${counts[i]}`, project: fmt(project[i]!.connectPerSecond), raw: fmt(raw[i]!.connectPerSecond), ratio: ratio(project[i]!.connectPerSecond, raw[i]!.connectPerSecond) });
  }
  return {
    tables: [
      {
        name: 'sockets',
        title: 'idle authenticated sockets',
        rows,
        notes: [
          `project RSS is ${viaGateway ? 'delivery + gateway (sockets open through the gateway; npm start has it hand each socket to delivery unless GATEWAY_WS_HANDOFF=proxy)' : 'delivery only (sockets go straight to it)'}; raw: the raw server. RSS ratio: project / raw (lower is better).`,
          `RSS at 0: project ${fmt(project[0]!.rss / 2 ** 20, 'MiB')}, raw ${fmt(raw[0]!.rss / 2 ** 20, 'MiB')}; 64 connects at a time; after a warm-up of ${WARM_UP} sockets opened and closed, each reading once RSS settled (three readings 1 s apart within 1%).`,
        ],
      },
    ],
    data: { project, raw },
  };
}
