// The error codes a service can answer, read from its source: every
// `invalidArgument('code', …)`-style helper call and `new AppError('kind',
// 'code', …)` gives a code with its kind (hence its HTTP status, through
// @bil/runtime's own mapping); the gateway's fixed answers give a code with a
// status. Codes built at run time (`invalid_${field}`) become patterns. Spec
// files are skipped: only what the service itself can send counts.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AppError, type ErrorKind } from '@bil/runtime';
import { repoRoot } from './markdown.js';

const HELPERS: Record<string, ErrorKind> = {
  invalidArgument: 'invalid_argument',
  notFound: 'not_found',
  alreadyExists: 'already_exists',
  permissionDenied: 'permission_denied',
  unauthenticated: 'unauthenticated',
  failedPrecondition: 'failed_precondition',
};

export interface SourceCodes {
  /** Literal codes → the HTTP statuses they are answered with. */
  statuses: Map<string, Set<number>>;
  /** Codes built at run time, as patterns (`invalid_${field}` → /^invalid_[a-z0-9_]+$/). */
  patterns: RegExp[];
  /** Every string literal of the sources that looks like a code (codes passed through a variable). */
  literals: Set<string>;
}

function files(dir: string): string[] {
  if (!statSync(dir).isDirectory()) return [dir];
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...files(path));
    else if (name.endsWith('.ts') && !name.endsWith('.d.ts') && !/\.spec\.ts$/.test(name) && !path.includes('/testing/')) out.push(path);
  }
  return out;
}

const status = (kind: string) => new AppError(kind as ErrorKind, 'internal', '').httpStatus;

/** What the given source directories or files (from the repo root) can answer. */
export function sourceCodes(...dirs: string[]): SourceCodes {
  const out: SourceCodes = { statuses: new Map(), patterns: [], literals: new Set() };
  const add = (code: string, http: number) => {
    if (code.includes('${')) {
      out.patterns.push(new RegExp(`^${code.replace(/\$\{[^}]*\}/g, '[a-z0-9_]+')}$`));
      return;
    }
    let set = out.statuses.get(code);
    if (!set) out.statuses.set(code, (set = new Set()));
    set.add(http);
  };
  for (const dir of dirs) {
    for (const file of files(fileURLToPath(new URL(dir, repoRoot)))) {
      const text = readFileSync(file, 'utf8');
      for (const m of text.matchAll(/\b(invalidArgument|notFound|alreadyExists|permissionDenied|unauthenticated|failedPrecondition)\(\s*(['`])([a-z${}_.A-Z]+)\2/g)) {
        add(m[3]!, status(HELPERS[m[1]!]!));
      }
      for (const m of text.matchAll(/\bAppError\(\s*'([a-z_]+)',\s*(['`])([a-z${}_.A-Z]+)\2/g)) {
        if (m[1] !== 'internal') add(m[3]!, status(m[1]!));
      }
      // The default code of a kind (a backend's bare UNAVAILABLE or DEADLINE_EXCEEDED): `if (kind === 'x') return 'code'`.
      for (const m of text.matchAll(/if \(kind === '([a-z_]+)'\) return '([a-z_]+)'/g)) add(m[2]!, status(m[1]!));
      // The gateway's own answers: its generic code per status, and fixed replies.
      for (const m of text.matchAll(/^\s*(\d{3}): \['([a-z_]+)'/gm)) add(m[2]!, Number(m[1]));
      for (const m of text.matchAll(/status: (\d{3}), body: errorBody\('([a-z_]+)'/g)) add(m[2]!, Number(m[1]));
      for (const m of text.matchAll(/reply\.code\((\d{3})\)\.send\(errorBody\('([a-z_]+)'/g)) add(m[2]!, Number(m[1]));
      // The WebSocket upgrade's answers (delivery's ws-server, the gateway's ws-proxy): refuse(socket, 400, 'code', …).
      for (const m of text.matchAll(/\b(?:refuse|plain)\(\w+, (\d{3}), '([a-z_]+)'/g)) add(m[2]!, Number(m[1]));
      // Raw-socket answers before a request exists (runtime's http-edge): rawErrorResponse(408, 'Request Timeout', 'code', …).
      for (const m of text.matchAll(/\brawErrorResponse\((\d{3}), '[^']*', '([a-z_]+)'/g)) add(m[2]!, Number(m[1]));
      for (const m of text.matchAll(/'([a-z][a-z0-9]*(?:_[a-z0-9]+)+)'/g)) out.literals.add(m[1]!);
    }
  }
  return out;
}

/** Merges what several services can answer. */
export function merge(...all: SourceCodes[]): SourceCodes {
  const out: SourceCodes = { statuses: new Map(), patterns: [], literals: new Set() };
  for (const s of all) {
    for (const [code, set] of s.statuses) out.statuses.set(code, new Set([...(out.statuses.get(code) ?? []), ...set]));
    out.patterns.push(...s.patterns);
    for (const l of s.literals) out.literals.add(l);
  }
  return out;
}

/**
 * Whether `code` can be answered with `http`: a literal code must have that
 * status among its kinds; a code only built at run time or passed through a
 * variable must at least match a pattern or appear as a literal (status unknown).
 */
export function answers(src: SourceCodes, code: string, http: number): { ok: boolean; why: string } {
  const known = src.statuses.get(code);
  if (known) return { ok: known.has(http), why: `answered with ${[...known].join('/')}` };
  if (src.patterns.some((p) => p.test(code)) || src.literals.has(code)) return { ok: true, why: 'built at run time' };
  return { ok: false, why: 'not in the code' };
}
