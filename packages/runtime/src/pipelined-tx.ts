// A transaction whose BEGIN and COMMIT travel with its first and last
// statements: one round trip each instead of three (BEGIN, the statement,
// COMMIT as their own). For hot paths with a fixed shape, e.g. chat's send
// (lock-and-read, then write-and-commit: two round trips per batch instead
// of four).
//
// How: PostgreSQL's simple query protocol runs several statements sent as
// one text, and stops at the first error. Statements therefore go with their
// parameters inlined as literals: every value is a string quoted exactly as
// pg's own escapeLiteral quotes it (also JSON and array literals, which the
// statement casts), or a finite number, boolean or null; anything else is
// refused, and the number of `?` placeholders must match. The quoting is
// quoteLiteral here, the same output by two replaceAll calls instead of a
// loop per character (a 3 KB envelope: ~0.3 µs instead of ~20). The SQL text itself must be
// the caller's own constant (never input) and may use `?` only as a
// placeholder. Errors are pg's own: no statement text is prefixed to their
// message (knex prefixes the statement, with placeholders), and above all no
// inlined literal.
//
// The connection comes from the database's pool and goes back to it; a
// statement that fails leaves the transaction to a ROLLBACK.

import type { Tx } from './db.js';

export interface PgConnection {
  query(text: string): Promise<PgResult | PgResult[]>;
}

interface PgResult {
  rows: unknown[];
}

export interface ConnectionPool {
  acquireConnection(): Promise<PgConnection>;
  releaseConnection(conn: PgConnection): Promise<void>;
}

export interface PipelinedTx extends Pick<Tx, 'query' | 'afterCommit'> {
  /** The transaction's last statement, sent with its COMMIT; the transaction ends with it. */
  queryAndCommit<T = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<T[]>;
}

/**
 * A string as a PostgreSQL literal, exactly as pg's escapeLiteral writes it:
 * quotes doubled; with a backslash, backslashes doubled and an E'' literal
 * (so it reads the same whatever standard_conforming_strings says).
 */
export function quoteLiteral(s: string): string {
  const quoted = `'${s.includes("'") ? s.replaceAll("'", "''") : s}'`;
  return s.includes('\\') ? ` E${quoted.replaceAll('\\', '\\\\')}` : quoted;
}

/** `sql` with each `?` replaced by its parameter as a literal. */
export function inlineParams(sql: string, params: readonly unknown[]): string {
  const parts = sql.split('?');
  if (parts.length - 1 !== params.length) throw new Error(`pipelined statement: ${parts.length - 1} placeholders, ${params.length} parameters`);
  let out = parts[0]!;
  for (let i = 0; i < params.length; i++) out += literal(params[i]) + parts[i + 1]!;
  return out;
}

function literal(v: unknown): string {
  if (v === null || v === undefined) return 'NULL';
  if (typeof v === 'string') return quoteLiteral(v);
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw new Error('pipelined statement: a parameter is not a finite number');
    return String(v);
  }
  if (typeof v === 'boolean') return v ? 'TRUE' : 'FALSE';
  throw new Error(`pipelined statement: unsupported parameter type ${typeof v}`);
}

function resultAt(res: PgResult | PgResult[], i: number): PgResult {
  return Array.isArray(res) ? res[i]! : res;
}

/** Runs `fn` in one transaction on a pooled connection; commits after it if queryAndCommit did not. */
export async function runPipelined<T>(pool: ConnectionPool, fn: (tx: PipelinedTx) => Promise<T>): Promise<T> {
  const conn = await pool.acquireConnection();
  const hooks: Array<() => void> = [];
  let began = false;
  let ended = false;
  const send = async <R>(sql: string, params: readonly unknown[], commit: boolean): Promise<R[]> => {
    if (ended) throw new Error('pipelined transaction: already committed');
    const head = began ? '' : 'BEGIN;';
    const text = head + inlineParams(sql, params) + (commit ? ';COMMIT' : '');
    began = true;
    const res = await conn.query(text);
    if (commit) ended = true;
    return resultAt(res, head ? 1 : 0).rows as R[];
  };
  const tx: PipelinedTx = {
    query: (sql, params = []) => send(sql, params, false),
    queryAndCommit: (sql, params = []) => send(sql, params, true),
    afterCommit: (hook) => hooks.push(hook),
  };
  try {
    const result = await fn(tx);
    if (began && !ended) {
      await conn.query('COMMIT');
      ended = true;
    }
    for (const hook of hooks) hook();
    return result;
  } catch (err) {
    // A failed statement (or COMMIT sent with it) leaves an aborted or no transaction: ROLLBACK ends either.
    if (began && !ended) await conn.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    await pool.releaseConnection(conn);
  }
}
