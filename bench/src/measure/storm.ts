// 5. reconnect storm: every device of the fan-out group (499 in full mode;
// issue #18 asks for 2,000 — BENCH_GROUP_SIZE sets the group, at the cost of
// one SDK account per device) goes offline, the group gets 50 messages, then
// all devices reconnect at once and sync from their cursors; the time until
// every device has its `synced` (all it missed, from the real chat service).
// A socket closed before `synced` (e.g. 4013 when delivery's deadline on chat
// expires) reconnects after 500 ms, as a client would, and counts as a retry.
// Raw: the raw server answers `sync` with one query per listed chat.
import type WebSocket from 'ws';
import { nextBody, openSocket, pool, post, type User } from '../clients.js';
import { sleep, type Ctx, type Outcome } from '../context.js';
import { fmt, ratio } from '../stats.js';
import { fanoutGroup } from './fanout.js';
import { world } from './one-to-one.js';

interface StormResult {
  devices: number;
  missed: number;
  seconds: number;
  retries: number;
  frames: number;
}

export async function storm(ctx: Ctx): Promise<Outcome> {
  const w = await world(ctx);
  const g = await fanoutGroup(ctx);
  const devices = g.members.slice(1);
  const missed = ctx.quick ? 20 : 50;
  const results: Record<string, StormResult> = {};
  const opened: WebSocket[] = [];
  for (const sys of ['project', 'raw'] as const) {
    const base = sys === 'project' ? ctx.stack.baseUrl : ctx.stack.raw.baseUrl;
    const wsUrl = sys === 'project' ? ctx.stack.wsUrl : ctx.stack.raw.wsUrl;
    for (const e of g.extra) e[sys].terminate();
    if (sys === 'project') for (const s of w.projectSockets.values()) s.terminate();
    else w.close(); // the world's raw sockets (its project ones are closed already)
    await sleep(2000);
    let sent = 0;
    await Promise.all(
      Array.from({ length: 4 }, async () => {
        while (sent < missed) {
          sent++;
          const { body } = nextBody(g.target);
          const status = await post(`${base}/v1/chats/${g.target.chatId}/messages`, g.target.sender.token, body);
          if (status < 200 || status >= 300) throw new Error(`storm: a ${sys} send answered ${status}`);
        }
      }),
    );
    ctx.log(`storm ${sys}: ${devices.length} devices offline, ${missed} messages sent; reconnecting all at once…`);
    let retries = 0;
    let frames = 0;
    const t0 = performance.now();
    const connect = async (u: User): Promise<void> => {
      for (;;) {
        try {
          opened.push(await openSocket(wsUrl, u.token, { cursors: u.cursors[sys], onFrame: () => frames++ }));
          return;
        } catch {
          retries++;
          await sleep(500);
        }
      }
    };
    await pool(devices, devices.length, connect);
    const seconds = (performance.now() - t0) / 1000;
    results[sys] = { devices: devices.length, missed, seconds, retries, frames };
    ctx.log(`storm ${sys}: all synced in ${seconds.toFixed(1)} s (${frames} frames, ${retries} retries)`);
  }
  for (const s of opened) s.terminate();
  const p = results.project!;
  const r = results.raw!;
  return {
    tables: [
      {
        name: 'storm',
        title: `reconnect storm: ${devices.length} devices × ${missed} missed messages`,
        rows: [
          { label: 'time until every device is caught up', project: fmt(p.seconds, 's'), raw: fmt(r.seconds, 's'), ratio: ratio(p.seconds, r.seconds) },
          { label: 'reconnects (closed before synced)', project: String(p.retries), raw: String(r.retries), ratio: '—' },
          { label: 'message frames received', project: String(p.frames), raw: String(r.frames), ratio: '—' },
        ],
        notes: [`every device syncs from the cursors its sockets saw; frames ≥ ${devices.length * missed} means nothing was missing. Time ratio: project / raw (lower is better).`],
      },
    ],
    data: results,
  };
}
