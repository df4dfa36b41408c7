// Just enough markdown to read the docs' tables: sections by heading, GFM
// pipe tables (header, delimiter row, body rows) and the `code` spans in a
// cell. Pipes inside code spans or escaped as \| don't split cells.
import { readFileSync } from 'node:fs';

export const repoRoot = new URL('../../../', import.meta.url);

export function readDoc(name: string): string {
  return readFileSync(new URL(`docs/${name}`, repoRoot), 'utf8');
}

export interface Section {
  level: number;
  title: string;
  /** The section's own lines up to the next heading of any level. */
  body: string;
}

/** Every heading with the text under it (up to the next heading), fenced code blocks skipped. */
export function sections(markdown: string): Section[] {
  const out: Section[] = [];
  let current: Section = { level: 0, title: '', body: '' };
  let fenced = false;
  for (const line of markdown.split('\n')) {
    if (/^\s*```/.test(line)) fenced = !fenced;
    const h = fenced ? null : /^(#{1,6})\s+(.*?)\s*#*\s*$/.exec(line);
    if (h) {
      out.push(current);
      current = { level: h[1]!.length, title: h[2]!, body: '' };
    } else current.body += `${line}\n`;
  }
  out.push(current);
  return out;
}

export function section(markdown: string, title: string): Section {
  const found = sections(markdown).filter((s) => s.title === title);
  if (found.length !== 1) throw new Error(`expected one section "${title}", found ${found.length}`);
  return found[0]!;
}

function splitRow(line: string): string[] {
  const cells: string[] = [];
  let cell = '';
  let inCode = false;
  const text = line.trim().replace(/^\|/, '').replace(/\|$/, '');
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === '\\' && text[i + 1] === '|') {
      cell += '|';
      i++;
    } else if (c === '`') {
      inCode = !inCode;
      cell += c;
    } else if (c === '|' && !inCode) {
      cells.push(cell.trim());
      cell = '';
    } else cell += c;
  }
  cells.push(cell.trim());
  return cells;
}

export interface Table {
  header: string[];
  rows: Record<string, string>[];
}

/** Every pipe table in `text`, rows keyed by the (lower-cased) header cells. */
export function tables(text: string): Table[] {
  const lines = text.split('\n');
  const out: Table[] = [];
  for (let i = 0; i + 1 < lines.length; i++) {
    if (!lines[i]!.trim().startsWith('|') || !/^\s*\|?\s*:?-{3,}/.test(lines[i + 1]!)) continue;
    const header = splitRow(lines[i]!).map((h) => h.toLowerCase());
    const rows: Record<string, string>[] = [];
    let j = i + 2;
    for (; j < lines.length && lines[j]!.trim().startsWith('|'); j++) {
      const cells = splitRow(lines[j]!);
      if (cells.length !== header.length) throw new Error(`table row has ${cells.length} cells, header ${header.length}: ${lines[j]}`);
      rows.push(Object.fromEntries(header.map((h, k) => [h, cells[k]!])));
    }
    out.push({ header, rows });
    i = j;
  }
  return out;
}

/** The one table in a section. */
export function tableOf(markdown: string, title: string): Table {
  const t = tables(section(markdown, title).body);
  if (t.length !== 1) throw new Error(`expected one table in "${title}", found ${t.length}`);
  return t[0]!;
}

/** The contents of every `code` span in a cell, in order. */
export function codeSpans(cell: string): string[] {
  return [...cell.matchAll(/`([^`]+)`/g)].map((m) => m[1]!);
}

/** The first code span of a cell (a table's key column). */
export function key(cell: string): string {
  const spans = codeSpans(cell);
  if (spans.length === 0) throw new Error(`no code span in cell "${cell}"`);
  return spans[0]!;
}
