// What every measurement gets: the stacks, the mode (quick or full) and a
// logger; and what it gives back: tables for the terminal and the docs, and
// its raw figures for the JSON file.
import type { Stack } from './stack.js';
import type { Table } from './stats.js';

export interface Ctx {
  stack: Stack;
  quick: boolean;
  log: (s: string) => void;
}

export interface Outcome {
  tables: Table[];
  data: unknown;
}

export type Measurement = (ctx: Ctx) => Promise<Outcome>;

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Sum of CPU seconds over the named groups. */
export function cpuOf(cpu: Record<string, number>, names: readonly string[]): number {
  return names.reduce((s, n) => s + (cpu[n] ?? 0), 0);
}

/** The project's server processes (all of start.mjs's services, its nats-server, its PostgreSQL backends). */
export const PROJECT = ['gateway', 'chat', 'delivery', 'identity', 'digest', 'digest-worker', 'nats', 'postgres'];
export const RAW = ['raw', 'postgres-raw'];
