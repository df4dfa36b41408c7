// 3. group fan-out: one group of 500 members (100 in quick mode), every
// member but the sender connected to both systems; stepped open-loop message
// rates, each message delivered to every other member's device. Three
// systems: the project, the raw server (pg + ws: the message stored in one
// transaction, one frame encoded once and written to every socket) and raw
// broadcast (no database at all: the ceiling of a ws server on this machine).
import type WebSocket from 'ws';
import { makeUsers, openSocket, pool, templateFor, type Target, type User } from '../clients.js';
import { cpuOf, PROJECT, RAW, type Ctx, type Outcome } from '../context.js';
import { delivered } from '../load.js';
import { fmt, ratio, type Row } from '../stats.js';
import { world } from './one-to-one.js';
import { highestHeld, stepSystems } from './steps.js';
import { TEXT } from './world.js';

export interface Group {
  target: Target;
  members: User[];
  /** Sockets fanout opened (members the 1:1 world had not connected), both systems. */
  extra: { user: User; project: WebSocket; raw: WebSocket }[];
}

let group: Group | undefined;

/** The group of the fan-out (made once; the storm reuses it). */
export async function fanoutGroup(ctx: Ctx): Promise<Group> {
  if (group) return group;
  const w = await world(ctx);
  const size = Number(process.env.BENCH_GROUP_SIZE ?? (ctx.quick ? 100 : 500));
  const have = [...w.senders, ...w.recipients];
  if (size > have.length) {
    ctx.log(`fan-out: registering ${size - have.length} more accounts…`);
    have.push(...(await makeUsers(ctx.stack.baseUrl, size - have.length)));
  }
  const members = have.slice(0, size);
  const owner = members[0]!;
  ctx.log(`fan-out: group of ${size} (the SDK creates it and its first epoch)…`);
  const chat = await owner.client.chats.createGroup({ title: 'bench fan-out', members: members.slice(1).map((m) => m.userId) });
  const target = await templateFor(chat.chatId, owner, TEXT);
  await fetch(`${ctx.stack.raw.baseUrl}/raw/setup`, {
    method: 'POST',
    body: JSON.stringify({ chats: [{ chat_id: chat.chatId, members: members.map((m) => m.userId), devices: members.map((m) => m.deviceId) }] }),
  });
  const connected = new Set(w.recipients.map((r) => r.userId));
  const onMessage = (id: string) => w.active.t && delivered(w.active.t, id);
  const extra = await pool(
    members.slice(1).filter((m) => !connected.has(m.userId)),
    16,
    async (user) => ({
      user,
      project: await openSocket(ctx.stack.wsUrl, user.token, { onMessage, cursors: user.cursors.project }),
      raw: await openSocket(ctx.stack.raw.wsUrl, user.token, { onMessage, cursors: user.cursors.raw }),
    }),
  );
  ctx.log(`fan-out: ${size - 1} devices connected to each system (body ${Buffer.byteLength(JSON.stringify(target.template))} bytes)`);
  group = { target, members, extra };
  return group;
}

export function closeGroup(): void {
  for (const e of group?.extra ?? []) {
    e.project.terminate();
    e.raw.terminate();
  }
  group = undefined;
}

export async function fanout(ctx: Ctx): Promise<Outcome> {
  const w = await world(ctx);
  const g = await fanoutGroup(ctx);
  const n = g.members.length - 1;
  const rates = ctx.quick ? [5, 10, 20, 40] : [5, 10, 20, 40, 60, 80];
  const r = await stepSystems(
    ctx,
    w,
    [g.target],
    rates,
    ctx.quick ? 4 : 6,
    `fan-out ${n}`,
    [
      { name: 'project', url: (c) => `${ctx.stack.baseUrl}/v1/chats/${c}/messages` },
      { name: 'raw', url: (c) => `${ctx.stack.raw.baseUrl}/v1/chats/${c}/messages` },
      { name: 'broadcast', url: (c) => `${ctx.stack.raw.baseUrl}/raw/broadcast/${c}` },
    ],
    n,
  );
  const best = (name: string) => highestHeld(r[name]!) * n;
  // CPU per delivery and last-delivery p99 at the highest rate all three held (else the lowest rate).
  const common = Math.max(rates[0]!, ...rates.filter((x) => ['project', 'raw', 'broadcast'].every((s) => r[s]!.some((q) => q.rate === x && q.held))));
  const step = (name: string) => r[name]!.find((q) => q.rate === common);
  const perDelivery = (name: string, names: readonly string[]) => {
    const s = step(name);
    return s ? (cpuOf(s.cpu, names) * 1e6) / Math.max(1, s.deliver.count) : NaN;
  };
  const [pc, rc, bc] = [perDelivery('project', PROJECT), perDelivery('raw', RAW), perDelivery('broadcast', ['raw'])];
  const last = (name: string) => step(name)?.lastDeliver.p99;
  const rows: Row[] = [
    { label: 'highest deliveries/s held (p99 < 1 s)', project: `${best('project')}/s`, raw: `${best('raw')}/s`, extra: `${best('broadcast')}/s`, ratio: `${ratio(best('project'), best('raw'))} (vs broadcast ${ratio(best('project'), best('broadcast'))})` },
    { label: `server CPU per delivery at ${common} msg/s`, project: fmt(pc, 'µs'), raw: fmt(rc, 'µs'), extra: fmt(bc, 'µs'), ratio: `${ratio(pc, rc)} (vs broadcast ${ratio(pc, bc)})` },
    { label: `last-delivery p99 at ${common * n}/s`, project: fmt(last('project'), 'ms'), raw: fmt(last('raw'), 'ms'), extra: fmt(last('broadcast'), 'ms'), ratio: `${ratio(last('project') ?? NaN, last('raw') ?? NaN)}` },
  ];
  const bench = step('project')?.cpu.bench;
  return {
    tables: [
      {
        name: 'fanout',
        title: `group fan-out, ${n + 1} members (${n} devices connected)`,
        rawHeader: 'raw (pg + ws)',
        extraHeader: 'raw broadcast',
        rows,
        notes: [
          `message rates ${rates.join(', ')}/s × ${n} deliveries; "held": every delivery within the drain and last-delivery p99 < 1 s.`,
          `the receivers share the load generator's process (CPU ${fmt(bench, 's')} in the project's ${common} msg/s step): at the top rates it can be the limit for all three.`,
          `steps: ${Object.entries(r).map(([k, v]) => `${k} ${v.map((s) => `${s.rate}${s.held ? '' : '✗'}`).join(',')}`).join('; ')}.`,
        ],
      },
    ],
    data: r,
  };
}
