// Statistics and the printed tables: percentiles of latency samples, ratios,
// and one markdown table per measurement (project | raw | ratio).

/** The p-th percentile (0–100) of `values` by nearest rank; NaN for none. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!;
}

export interface Summary {
  count: number;
  p50: number;
  p99: number;
  max: number;
}

export function summarise(values: readonly number[]): Summary {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (p: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]! : NaN);
  return { count: sorted.length, p50: at(50), p99: at(99), max: sorted.length ? sorted[sorted.length - 1]! : NaN };
}

/** project / raw for "more is better" figures, formatted "0.42x"; "—" when either is missing. */
export function ratio(project: number, raw: number): string {
  if (!Number.isFinite(project) || !Number.isFinite(raw) || raw === 0) return '—';
  const r = project / raw;
  return `${r >= 10 ? r.toFixed(0) : r >= 1 ? r.toFixed(1) : r.toFixed(2)}x`;
}

/** A number with sensible precision (ms, /s, µs, KiB); "—" for NaN/undefined. */
export function fmt(v: number | undefined, unit = ''): string {
  if (v === undefined || !Number.isFinite(v)) return '—';
  const a = Math.abs(v);
  const s = a >= 100 ? v.toFixed(0) : a >= 10 ? v.toFixed(1) : a >= 1 ? v.toFixed(2) : v.toFixed(3);
  return unit ? `${s} ${unit}` : s;
}

export interface Row {
  label: string;
  project: string;
  raw: string;
  ratio: string;
  /** A further raw column (e.g. raw broadcast in the fan-out table). */
  extra?: string;
}

export interface Table {
  name: string;
  title: string;
  /** Header of the raw column(s). */
  rawHeader?: string;
  extraHeader?: string;
  rows: Row[];
  notes: string[];
}

/** The table as markdown (what the terminal prints and docs/performance.md holds). */
export function renderTable(t: Table): string {
  const extra = t.extraHeader !== undefined;
  const head = ['', 'project', t.rawHeader ?? 'raw', ...(extra ? [t.extraHeader!] : []), 'ratio'];
  const lines = [`### ${t.title}`, '', `| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`];
  for (const r of t.rows) lines.push(`| ${[r.label, r.project, r.raw, ...(extra ? [r.extra ?? '—'] : []), r.ratio].join(' | ')} |`);
  if (t.notes.length) lines.push('', ...t.notes.map((n) => `- ${n}`));
  return lines.join('\n');
}
