// Process accounting from /proc: CPU seconds (utime + stime) and RSS of a
// pid, the children of a pid (start.mjs's services), and PostgreSQL backends
// of a database (pg_stat_activity), so each measurement reports CPU per process.
import { readFileSync } from 'node:fs';
import type pg from 'pg';

const TICKS = 100; // CLK_TCK on Linux

/** CPU seconds used so far by `pid` (0 if it is gone). */
export function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / TICKS; // fields 14 and 15 of the whole line
  } catch {
    return 0;
  }
}

/** Resident set size of `pid` in bytes (0 if it is gone). */
export function rssBytes(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

export function childPids(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

export function cmdline(pid: number): string[] {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
  } catch {
    return [];
  }
}

/** Named processes whose CPU a measurement reports; `postgres` is resolved per sample. */
export interface Processes {
  /** name → pid (services, nats, raw server). */
  pids: Record<string, number>;
  /** Name of the postgres group → database names whose backends count. */
  databases: Record<string, string[]>;
  admin: pg.Pool;
}

export type CpuSample = Map<string, Map<number, number>>;

async function backendPids(p: Processes): Promise<Record<string, number[]>> {
  const out: Record<string, number[]> = {};
  const r = await p.admin.query<{ pid: number; datname: string }>('SELECT pid, datname FROM pg_stat_activity WHERE datname IS NOT NULL');
  for (const [group, dbs] of Object.entries(p.databases)) out[group] = r.rows.filter((x) => dbs.includes(x.datname)).map((x) => x.pid);
  return out;
}

export async function sampleCpu(p: Processes): Promise<CpuSample> {
  const s: CpuSample = new Map();
  for (const [name, pid] of Object.entries(p.pids)) s.set(name, new Map([[pid, cpuSeconds(pid)]]));
  s.set('bench', new Map([[process.pid, process.cpuUsage().user / 1e6 + process.cpuUsage().system / 1e6]]));
  for (const [group, pids] of Object.entries(await backendPids(p))) s.set(group, new Map(pids.map((pid) => [pid, cpuSeconds(pid)])));
  return s;
}

/** CPU seconds per process group between two samples (backends that appeared count from 0). */
export function cpuDelta(a: CpuSample, b: CpuSample): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [name, pids] of b) {
    let sum = 0;
    for (const [pid, v] of pids) sum += Math.max(0, v - (a.get(name)?.get(pid) ?? (name.startsWith('postgres') ? 0 : v)));
    out[name] = sum;
  }
  return out;
}
