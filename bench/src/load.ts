// The open-loop generator: sends are scheduled by the clock (rate × seconds,
// spread evenly), never by acknowledgements, and latency counts from the
// scheduled time, so a server that falls behind shows it instead of slowing
// the generator down (no coordinated omission).
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { nextBody, post, type Target } from './clients.js';
import { cpuDelta, sampleCpu, type Processes } from './proc.js';
import { summarise, type Summary } from './stats.js';

export interface Tracker {
  /** message id → scheduled send time (ms, performance.now()). */
  sent: Map<string, number>;
  /** deliveries expected per message id (devices that must see it). */
  expected: number;
  ack: number[];
  /** send → delivery of each message to each receiving device. */
  deliver: number[];
  /** send → last delivery of each message. */
  lastDeliver: number[];
  seen: Map<string, number>;
  /** message id → ack latency (only when tracing). */
  acks?: Map<string, number>;
  /** message id → first delivery latency (only when tracing). */
  firsts?: Map<string, number>;
}

const TRACE_DIR = process.env.BENCH_TRACE_DIR;

export function tracker(expected = 1): Tracker {
  return { sent: new Map(), expected, ack: [], deliver: [], lastDeliver: [], seen: new Map(), ...(TRACE_DIR ? { acks: new Map(), firsts: new Map() } : {}) };
}

/** Called by the receivers for every message id that arrives. */
export function delivered(t: Tracker, messageId: string): void {
  const at = t.sent.get(messageId);
  if (at === undefined) return;
  const now = performance.now();
  t.deliver.push(now - at);
  const n = (t.seen.get(messageId) ?? 0) + 1;
  t.seen.set(messageId, n);
  if (n === 1) t.firsts?.set(messageId, now - at);
  if (n === t.expected) t.lastDeliver.push(now - at);
}

export interface StepResult {
  rate: number;
  seconds: number;
  scheduled: number;
  acked: number;
  failed: number;
  ack: Summary;
  deliver: Summary;
  lastDeliver: Summary;
  /** Messages whose every expected delivery arrived. */
  complete: number;
  /** CPU seconds per process group over the step and its drain. */
  cpu: Record<string, number>;
  /** all acked, all delivered, ack and delivery p99 < 1 s. */
  held: boolean;
}

export interface StepOptions {
  rate: number;
  seconds: number;
  targets: Target[];
  /** http://host:port of the system (…/v1/chats/:id/messages is appended), or a full URL maker. */
  url: (chatId: string) => string;
  t: Tracker;
  processes: Processes;
  /** How long to wait for the last acks and deliveries after the last send. */
  drainMs?: number;
  /** With BENCH_TRACE_DIR set: the step's per-send timings are written to <dir>/<trace>.json (tail analysis). */
  trace?: string;
}

export async function runStep(o: StepOptions): Promise<StepResult> {
  const { rate, seconds, targets, t } = o;
  const total = Math.round(rate * seconds);
  const before = await sampleCpu(o.processes);
  const start = performance.now() + 20;
  let i = 0;
  let acked = 0;
  let failed = 0;
  let answered = 0;
  await new Promise<void>((resolve) => {
    const tick = () => {
      const now = performance.now();
      while (i < total && start + (i * 1000) / rate <= now) {
        const scheduled = start + (i * 1000) / rate;
        const target = targets[i % targets.length]!;
        i++;
        const { messageId, body } = nextBody(target);
        t.sent.set(messageId, scheduled);
        void post(o.url(target.chatId), target.sender.token, body).then((status) => {
          answered++;
          if (status >= 200 && status < 300) {
            acked++;
            t.ack.push(performance.now() - scheduled);
            t.acks?.set(messageId, performance.now() - scheduled);
          } else failed++;
        });
      }
      if (i < total) setTimeout(tick, 1);
      else resolve();
    };
    tick();
  });
  const drainUntil = performance.now() + (o.drainMs ?? 5000);
  const deliveredAll = () => [...t.sent.keys()].every((id) => (t.seen.get(id) ?? 0) >= t.expected);
  while (performance.now() < drainUntil && (answered < total || !deliveredAll())) await new Promise((r) => setTimeout(r, 20));
  const after = await sampleCpu(o.processes);
  if (TRACE_DIR && o.trace) {
    // [ms after the step's start the send was scheduled, ack latency, first delivery latency] per send, in send order.
    const rows = [...t.sent].map(([id, at]) => [Math.round(at - start), t.acks?.get(id) ?? null, t.firsts?.get(id) ?? null]);
    mkdirSync(TRACE_DIR, { recursive: true });
    writeFileSync(join(TRACE_DIR, `${o.trace}.json`), JSON.stringify(rows));
  }
  const complete = [...t.sent.keys()].filter((id) => (t.seen.get(id) ?? 0) >= t.expected).length;
  const ack = summarise(t.ack);
  const deliver = summarise(t.deliver);
  const lastDeliver = summarise(t.lastDeliver);
  return {
    rate,
    seconds,
    scheduled: total,
    acked,
    failed,
    ack,
    deliver,
    lastDeliver,
    complete,
    cpu: cpuDelta(before, after),
    held: acked === total && complete === total && ack.p99 < 1000 && lastDeliver.p99 < 1000,
  };
}
