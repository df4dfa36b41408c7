// Stepped open-loop rates against both systems, interleaved per rate
// (project, then raw, at each rate) so both see the same machine; a system
// stops stepping after the first rate it does not hold.
import type { Target } from '../clients.js';
import { cpuOf, PROJECT, RAW, sleep, type Ctx } from '../context.js';
import { runStep, tracker, type StepResult } from '../load.js';
import { fmt, ratio, type Row } from '../stats.js';
import type { World } from './world.js';

export interface Stepped {
  project: StepResult[];
  raw: StepResult[];
}

export interface System {
  name: string;
  /** Where a send to `chatId` goes. */
  url: (chatId: string) => string;
}

/** Stepped open-loop rates against each system in turn at each rate; `expected` deliveries per message. */
export async function stepSystems(ctx: Ctx, world: World, targets: Target[], rates: number[], seconds: number, label: string, systems: System[], expected = 1): Promise<Record<string, StepResult[]>> {
  const out: Record<string, StepResult[]> = Object.fromEntries(systems.map((s) => [s.name, []]));
  // Warm-up, not recorded: pools, prepared plans and the JIT of both systems get a few seconds of the lowest rate.
  for (const s of systems) {
    const t = tracker(expected);
    world.active.t = t;
    await runStep({ rate: Math.max(1, Math.round(rates[0]! / 2)), seconds: 3, targets, url: s.url, t, processes: ctx.stack.processes, drainMs: 2000 });
    world.active.t = undefined;
  }
  const going = new Set(systems.map((s) => s.name));
  for (const rate of rates) {
    for (const s of systems) {
      if (!going.has(s.name)) continue;
      const t = tracker(expected);
      world.active.t = t;
      const r = await runStep({ rate, seconds, targets, url: s.url, t, processes: ctx.stack.processes, trace: `${label.replace(/[^a-z0-9]+/gi, '-')}-${s.name}-${rate}` });
      world.active.t = undefined;
      out[s.name]!.push(r);
      ctx.log(
        `${label} ${s.name} ${rate}/s: acked ${r.acked}/${r.scheduled}, ack p50 ${fmt(r.ack.p50)} p99 ${fmt(r.ack.p99)} ms, deliver p50 ${fmt(r.deliver.p50)} p99 ${fmt(r.deliver.p99)} ms, last p99 ${fmt(r.lastDeliver.p99)} ms, complete ${r.complete}${r.held ? '' : ' — NOT held'}`,
      );
      if (!r.held) going.delete(s.name);
      await sleep(1000);
    }
    if (!going.size) break;
  }
  return out;
}

export async function stepBoth(ctx: Ctx, world: World, targets: Target[], rates: number[], seconds: number, label: string): Promise<Stepped> {
  const r = await stepSystems(ctx, world, targets, rates, seconds, label, [
    { name: 'project', url: (c) => `${ctx.stack.baseUrl}/v1/chats/${c}/messages` },
    { name: 'raw', url: (c) => `${ctx.stack.raw.baseUrl}/v1/chats/${c}/messages` },
  ]);
  return { project: r.project!, raw: r.raw! };
}

export const highestHeld = (steps: StepResult[]) => Math.max(0, ...steps.filter((s) => s.held).map((s) => s.rate));

/** The step at `rate` (or the nearest lower one that ran). */
export function at(steps: StepResult[], rate: number): StepResult | undefined {
  return steps.filter((s) => s.rate <= rate).at(-1);
}

/** Rows for the 1:1 table: highest rate held, latencies at `refRate`, CPU per message at `refRate`. */
export function sendRows(r: Stepped, refRate: number): { rows: Row[]; notes: string[] } {
  const hp = highestHeld(r.project);
  const hr = highestHeld(r.raw);
  // Latencies and CPU at the same rate for both: refRate, or the highest rate the project ran below it.
  const p = at(r.project, refRate);
  const q = p ? r.raw.find((s) => s.rate === p.rate) : at(r.raw, refRate);
  // latency ratios: project / raw (lower is better, so ratio > 1 means slower)
  const lat = (a?: number, b?: number) => (a !== undefined && b !== undefined ? ratio(a, b) : '—');
  const ms = (v?: number) => fmt(v, 'ms');
  const per = (s: StepResult | undefined, names: readonly string[]) => (s ? (cpuOf(s.cpu, names) * 1000) / Math.max(1, s.acked) : NaN);
  const rows: Row[] = [
    { label: 'highest rate held (all acked and delivered, p99 < 1 s)', project: `${hp}/s`, raw: `${hr}/s`, ratio: ratio(hp, hr) },
    { label: `at ${p?.rate ?? refRate}/s: ack p50 / p99`, project: `${ms(p?.ack.p50)} / ${ms(p?.ack.p99)}`, raw: `${ms(q?.ack.p50)} / ${ms(q?.ack.p99)}`, ratio: `${lat(p?.ack.p50, q?.ack.p50)} / ${lat(p?.ack.p99, q?.ack.p99)}` },
    {
      label: `at ${p?.rate ?? refRate}/s: send→deliver p50 / p99`,
      project: `${ms(p?.deliver.p50)} / ${ms(p?.deliver.p99)}`,
      raw: `${ms(q?.deliver.p50)} / ${ms(q?.deliver.p99)}`,
      ratio: `${lat(p?.deliver.p50, q?.deliver.p50)} / ${lat(p?.deliver.p99, q?.deliver.p99)}`,
    },
    { label: `server CPU per message at ${p?.rate ?? refRate}/s (all processes)`, project: fmt(per(p, PROJECT), 'ms'), raw: fmt(per(q, RAW), 'ms'), ratio: ratio(per(p, PROJECT), per(q, RAW)) },
    { label: 'PostgreSQL CPU per message', project: fmt(per(p, ['postgres']), 'ms'), raw: fmt(per(q, ['postgres-raw']), 'ms'), ratio: ratio(per(p, ['postgres']), per(q, ['postgres-raw'])) },
  ];
  const fmtCpu = (s?: StepResult) =>
    s
      ? Object.entries(s.cpu)
          .filter(([, v]) => v > 0.005)
          .map(([k, v]) => `${k} ${v.toFixed(2)}`)
          .join(', ')
      : '—';
  const notes = [
    `CPU seconds per process over the ${p?.rate ?? refRate}/s step (${p?.seconds ?? '?'} s + drain): project: ${fmtCpu(p)}; raw: ${fmtCpu(q)} ("bench" is the load generator itself; postgres = that database's backends only).`,
    `steps: project ${r.project.map((s) => `${s.rate}/s${s.held ? '' : ` ✗ (acked ${s.acked}/${s.scheduled}, ack p99 ${fmt(s.ack.p99)} ms)`}`).join(', ')}; raw ${r.raw.map((s) => `${s.rate}/s${s.held ? '' : ` ✗ (acked ${s.acked}/${s.scheduled}, ack p99 ${fmt(s.ack.p99)} ms)`}`).join(', ')}.`,
    'latency ratios are project / raw (lower is better); rate ratios project / raw (higher is better).',
  ];
  return { rows, notes };
}
