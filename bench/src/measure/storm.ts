// 5. reconnect storm (issue #18: 2,000 devices × 50 missed): every device of
// the fan-out group (499 in full mode) plus, to reach 2,000 devices, new
// accounts in a few more groups of up to 500 (the fan-out group's owner owns
// and writes to all of them) go offline; each group gets 50 messages (quick:
// 20); then all devices reconnect at once and sync from their cursors; the
// time until every device has its `synced` (all it missed, from the real chat
// service). `BENCH_STORM_DEVICES` sets the number of devices (quick: the
// fan-out group's 99). A socket closed before `synced` (e.g. 4013 when
// delivery gives up on chat) reconnects after 500 ms, as a client would, and
// counts as a retry. Raw: the raw server answers `sync` with one query per
// listed chat.
import type WebSocket from 'ws';
import { makeUsers, nextBody, openSocket, pool, post, templateFor, type Target, type User } from '../clients.js';
import { sleep, type Ctx, type Outcome } from '../context.js';
import { fmt, ratio } from '../stats.js';
import { fanoutGroup } from './fanout.js';
import { world } from './one-to-one.js';
import { TEXT } from './world.js';

interface StormResult {
  devices: number;
  groups: number;
  missed: number;
  seconds: number;
  retries: number;
  frames: number;
}

/** Members per extra group besides the owner (groups are capped at 1,024; delivery batches 500 devices per read). */
const GROUP_DEVICES = 499;

/** New accounts in groups of their own, to bring the storm to `want` devices; their cursors start after the template message. */
async function extraGroups(ctx: Ctx, owner: User, have: number, want: number): Promise<{ targets: Target[]; devices: User[] }> {
  if (want <= have) return { targets: [], devices: [] };
  const t0 = Date.now();
  ctx.log(`storm: registering ${want - have} more accounts…`);
  const devices = await makeUsers(ctx.stack.baseUrl, want - have);
  const chunks: User[][] = [];
  for (let i = 0; i < devices.length; i += GROUP_DEVICES) chunks.push(devices.slice(i, i + GROUP_DEVICES));
  ctx.log(`storm: ${chunks.length} more groups (the SDK creates each and its first epoch)…`);
  const targets: Target[] = [];
  for (const members of chunks) {
    const chat = await owner.client.chats.createGroup({ title: 'bench storm', members: members.map((m) => m.userId) });
    const target = await templateFor(chat.chatId, owner, TEXT);
    const seq = await lastSeq(ctx, chat.chatId, owner);
    for (const m of members) m.cursors.project.set(chat.chatId, seq);
    await fetch(`${ctx.stack.raw.baseUrl}/raw/setup`, {
      method: 'POST',
      body: JSON.stringify({ chats: [{ chat_id: chat.chatId, members: [owner.userId, ...members.map((m) => m.userId)], devices: [owner.deviceId, ...members.map((m) => m.deviceId)] }] }),
    });
    targets.push(target);
  }
  ctx.log(`storm: ${devices.length} more devices in ${chunks.length} groups, set up in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  return { targets, devices };
}

/** The chat's last seq as the owner's client sees it (the new members have seen it: their cursor). */
async function lastSeq(ctx: Ctx, chatId: string, owner: User): Promise<number> {
  const res = await fetch(`${ctx.stack.baseUrl}/v1/chats/${chatId}`, { headers: { authorization: `Bearer ${owner.token}` } });
  const body = (await res.json()) as { chat?: { last_seq?: number | string } };
  return Number(body.chat?.last_seq ?? 0);
}

export async function storm(ctx: Ctx): Promise<Outcome> {
  const w = await world(ctx);
  const g = await fanoutGroup(ctx);
  const groupDevices = g.members.slice(1);
  const want = Number(process.env.BENCH_STORM_DEVICES ?? (ctx.quick ? groupDevices.length : 2000));
  const extra = await extraGroups(ctx, g.target.sender, groupDevices.length, want);
  const devices = [...groupDevices, ...extra.devices].slice(0, Math.max(want, 1));
  const targets = [g.target, ...extra.targets];
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
    for (const target of targets) {
      let sent = 0;
      await Promise.all(
        Array.from({ length: 4 }, async () => {
          while (sent < missed) {
            sent++;
            const { body } = nextBody(target);
            const status = await post(`${base}/v1/chats/${target.chatId}/messages`, target.sender.token, body);
            if (status < 200 || status >= 300) throw new Error(`storm: a ${sys} send answered ${status}`);
          }
        }),
      );
    }
    ctx.log(`storm ${sys}: ${devices.length} devices in ${targets.length} groups offline, ${missed} messages sent to each group; reconnecting all at once…`);
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
    results[sys] = { devices: devices.length, groups: targets.length, missed, seconds, retries, frames };
    ctx.log(`storm ${sys}: all synced in ${seconds.toFixed(1)} s (${frames} frames, ${retries} retries)`);
  }
  for (const s of opened) s.terminate();
  const p = results.project!;
  const r = results.raw!;
  return {
    tables: [
      {
        name: 'storm',
        title: `reconnect storm: ${devices.length} devices in ${targets.length} groups × ${missed} missed messages`,
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
