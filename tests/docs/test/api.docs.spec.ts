// docs/api.md's error tables against the code: every documented code is one
// the gateway or a service really answers, with the documented HTTP status;
// and every code the chat and digest services answer is documented.
import { describe, expect, it } from 'vitest';
import { ErrorReason } from '@bil/runtime';
import { codeSpans, readDoc, repoRoot, tableOf } from './markdown.js';
import { readdirSync } from 'node:fs';
import { answers, merge, sourceCodes, type SourceCodes } from './source-codes.js';

const doc = readDoc('api.md');

const gateway = sourceCodes('services/gateway/src/', 'packages/runtime/src/');
const identity = sourceCodes('services/identity/src/');
const chat = sourceCodes('services/chat/src/');
const digest = sourceCodes('services/digest/src/');

/** The code spans of a cell outside parentheses (inside them are details fields and values). */
function codesOf(cell: string): string[] {
  let depth = 0;
  let outside = '';
  for (const c of cell) {
    if (c === '(') depth++;
    else if (c === ')') depth = Math.max(0, depth - 1);
    else if (depth === 0) outside += c;
  }
  return codeSpans(outside);
}

/** (status, code) pairs of a table with a `status` column and a `code` or `codes` column. */
function documented(title: string): { status: number; code: string }[] {
  const t = tableOf(doc, title);
  const column = t.header.includes('codes') ? 'codes' : 'code';
  return t.rows.flatMap((r) => {
    const statuses = r.status!.split(',').map((s) => Number(s.trim()));
    const codes = codesOf(r[column]!);
    if (codes.length > 0 && statuses.length !== 1) throw new Error(`${title}: a row with codes needs one status: ${r.status}`);
    return codes.map((code) => ({ status: statuses[0]!, code }));
  });
}

function expectAnswered(src: SourceCodes, rows: { status: number; code: string }[], where: string): void {
  const wrong = rows.map((r) => ({ ...r, ...answers(src, r.code, r.status) })).filter((r) => !r.ok);
  expect(wrong.map((r) => `${where}: ${r.status} ${r.code} (${r.why})`)).toEqual([]);
}

/** Codes a service answers only to other services, never through a REST route (with why). */
const NOT_ON_REST: Record<string, string> = {
  missing_actor: 'the gateway always sends the actor from the verified token',
  invalid_chat_ids: 'GetDigestPolicy takes a list; the REST route sends one chat id from the path',
  invalid_type: "chat's check of the ChatType enum; the gateway's schema admits only personal and group",
  invalid_max_envelopes_per_chat: "chat's bound on GetUnread; the gateway's schema bounds the query (0 to 50) first",
  invalid_argument: "chat's check of a 64-bit integer field of the gRPC request; the gateway sends numbers it validated",
  invalid_jwt_key: "identity's check of its own signing key at start, not an answer to a request",
  user_exists: 'identity picks the new user id itself (a random UUID); a collision is not a client error',
  invalid_chat_id: "digest's check of a chat id; the gateway's schemas check every id's UUID shape first (invalid_request)",
};

function expectDocumented(src: SourceCodes, rows: { status: number; code: string }[], where: string): void {
  const missing: string[] = [];
  for (const [code, statuses] of src.statuses) {
    if (NOT_ON_REST[code]) continue;
    for (const s of statuses) if (!rows.some((r) => r.code === code && r.status === s)) missing.push(`${s} ${code}`);
  }
  expect(missing.map((m) => `${where} answers ${m}, undocumented`)).toEqual([]);
}

describe('docs/api.md error tables', () => {
  const generic = documented('Errors');
  const chatRows = documented('Chat errors');
  const digestRows = documented('Digest errors');

  it('the tables parse: each has rows, with HTTP statuses', () => {
    for (const rows of [generic, chatRows, digestRows]) {
      expect(rows.length).toBeGreaterThan(3);
      for (const r of rows) expect(r.status >= 400 && r.status < 600, `${r.status} ${r.code}`).toBe(true);
    }
  });

  it('every generic code is answered by the gateway or a service, with its documented status', () => {
    expectAnswered(merge(gateway, identity, chat, digest), generic, 'Errors');
  });

  it('every chat code is answered by chat (or the gateway in front of it), with its documented status', () => {
    expectAnswered(merge(chat, gateway), chatRows, 'Chat errors');
  });

  it('every digest code is answered by digest (or the gateway in front of it), with its documented status', () => {
    expectAnswered(merge(digest, gateway), digestRows, 'Digest errors');
  });

  it('every code chat answers is documented, with its status', () => {
    expectDocumented(chat, [...chatRows, ...generic], 'chat');
  });

  it('every code digest answers is documented, with its status', () => {
    expectDocumented(digest, [...digestRows, ...generic], 'digest');
  });

  it('every code identity answers is documented, with its status', () => {
    expectDocumented(identity, generic, 'identity');
  });

  it("every route's error list names codes answered with the status it is listed under", () => {
    // "Errors: 400 (`a`, `b` (details `x`)), 404 `c`, 409 (`d`)": a status, then one code or a parenthesised
    // list; inside the list, parentheses hold details fields and values, not codes.
    const all = merge(gateway, identity, chat, digest);
    const listed: { status: number; code: string }[] = [];
    for (const m of doc.matchAll(/\b([45]\d\d)\s+(\((?:[^()]|\((?:[^()]|\([^()]*\))*\))*\)|`[a-z][a-z0-9_]*`)/g)) {
      for (const code of m[2]!.startsWith('(') ? codesOf(m[2]!.slice(1, -1)) : codeSpans(m[2]!)) {
        if (/^[a-z][a-z0-9_]*$/.test(code)) listed.push({ status: Number(m[1]), code });
      }
    }
    expect(listed.length).toBeGreaterThan(50);
    expectAnswered(all, listed, 'route errors');
  });

  it('the authentication codes table lists what the token check answers', () => {
    const t = tableOf(doc, 'Authentication');
    for (const r of t.rows) for (const code of codesOf(r.code!)) expect(answers(gateway, code, 401), code).toMatchObject({ ok: true });
  });
});

/** Reasons of the enum no document names, with why (never sent to clients, or a bare gRPC status's fallback). */
const NOT_DOCUMENTED: Record<string, string> = {
  already_exists: "the fallback code of a bare ALREADY_EXISTS from a backend; every service sends its own code",
  conflict: "the fallback code of a bare ABORTED from a backend; every service sends its own code",
  failed_precondition: "the fallback code of a bare FAILED_PRECONDITION from a backend; every service sends its own code",
  permission_denied: "the gateway's generic 403 (Fastify) and the fallback of a bare PERMISSION_DENIED; services send their own codes",
  unauthenticated: "the gateway's generic 401 (Fastify) and the fallback of a bare UNAUTHENTICATED; the token check sends its own codes",
  deadline_exceeded: "the fallback of a bare DEADLINE_EXCEEDED is `timeout`; the kind's name is never sent",
  method_not_allowed: "Fastify's 405, for a method no route has",
  not_acceptable: "Fastify's 406",
  length_required: "Fastify's 411",
  concurrent_modification: 'retried inside the services (optimistic concurrency); never reaches a client',
  db_down: 'an internal error (500 `internal` at the edge)',
  hashing_busy: "identity's password-hash pool refusing work; the gateway answers it as 503 `service_unavailable`",
  ...NOT_ON_REST,
};

describe('ErrorReason (the enum in @bil/proto/errors)', () => {
  const docs = readdirSync(new URL('docs/', repoRoot)).filter((f) => f.endsWith('.md')).map((f) => readDoc(f).replace(/```[\s\S]*?```/g, '')).join('\n');
  const named = new Set(codeSpans(docs));

  it('every reason is documented, or listed here as never reaching a client', () => {
    const missing = Object.values(ErrorReason).filter((r) => !named.has(r) && !NOT_DOCUMENTED[r]);
    expect(missing).toEqual([]);
  });

  it('every code a service or the gateway answers is a reason of the enum (wire values unchanged)', () => {
    const all = merge(gateway, identity, chat, digest);
    const reasons = new Set<string>(Object.values(ErrorReason));
    expect([...all.statuses.keys()].filter((c) => !reasons.has(c))).toEqual([]);
  });
});
