// A transaction whose BEGIN and COMMIT travel with its first and last
// statements, every statement a prepared one: for hot paths with a fixed
// shape, e.g. chat's send (lock-and-read, then write-and-commit: two round
// trips per batch instead of four, and no statement planned per batch).
//
// How: PostgreSQL's extended query protocol. Each round trip is one write of
// Bind/Describe/Execute messages (BEGIN, then the statement; or the statement,
// then COMMIT) closed by one Sync, and PostgreSQL answers them in order with
// one ReadyForQuery at the end; after an error it skips to the Sync. Each
// statement (BEGIN and COMMIT too) is a named prepared statement of the
// connection, parsed the first time that connection runs it (its Parse goes
// in the same write). The transaction plans its statements generically
// (`SET LOCAL plan_cache_mode = force_generic_plan`, sent with BEGIN), so a
// plan is made once per connection and statement, not once per batch: the
// send path's read and write took ~0.5 ms of planning each, about as long as
// running them (issue #18), and PostgreSQL keeps re-planning a statement
// whose array parameters make a custom plan look cheaper. Statements run
// here must therefore be index-bound without knowing their values (chat's
// plan test checks the generic plans of its send path). Parameters are bound as
// text values, never spliced into the SQL; `?` in the caller's SQL (its own
// constant, never input) is the placeholder and becomes `$n`. Values may be
// strings, finite numbers, booleans or null; anything else is refused.
//
// A request that failed may have failed before or after one of its Parse
// messages, so its statements count as unknown on that connection: the next
// request that uses one sends Close (a no-op for a statement that does not
// exist) and Parse again. Errors are pg's own: nothing of the statement or its
// values is added to the message.
//
// The connection comes from the database's pool and goes back to it; a
// statement that fails leaves the transaction to a ROLLBACK.
//
// A commit tail (Database.setCommitTail: the outbox relay's batch read) is
// one more statement sent after COMMIT in the same write: it runs in its own
// implicit transaction, so it sees what just committed, and its rows reach
// the tail before the transaction's afterCommit hooks. An error in it cannot
// undo the commit: the transaction counts as committed and the tail gets no
// rows (its reader reads for itself, as it would without a tail).

import { createHash } from 'node:crypto';
import type { Tx } from './db.js';

/**
 * What the pool lends: pg's Client (its query() takes a submittable; its connection writes protocol
 * messages; its type parsers are the pool's, e.g. MikroORM's timestamps as text).
 */
export interface PgConnection {
  query(q: Submittable | string): unknown;
  connection: PgWire;
  getTypeParser(oid: number, format: 'text'): (v: string) => unknown;
}

interface PgWire {
  stream: { cork(): void; uncork(): void };
  parse(q: { name: string; text: string; types: number[] }): void;
  bind(c: { portal: string; statement: string; values: Array<string | null>; binary: boolean }): void;
  describe(m: { type: 'P' | 'S'; name: string }): void;
  execute(c: { portal: string; rows: number }): void;
  close(m: { type: 'P' | 'S'; name: string }): void;
  sync(): void;
}

/** The message shapes pg's Client hands an active submittable. */
interface RowDescription {
  fields: Array<{ name: string; dataTypeID: number }>;
}
interface DataRow {
  fields: Array<string | null>;
}

/** pg's contract for custom queries (as pg-cursor uses it): submit, then one handler per backend message. */
interface Submittable {
  submit(connection: PgWire): Error | null;
  handleRowDescription(msg: RowDescription): void;
  handleDataRow(msg: DataRow): void;
  handleCommandComplete(): void;
  handleEmptyQuery(): void;
  handlePortalSuspended(): void;
  handleCopyInResponse(): void;
  handleCopyData(): void;
  handleError(err: Error): void;
  handleReadyForQuery(): void;
}

export interface ConnectionPool {
  acquireConnection(): Promise<PgConnection>;
  releaseConnection(conn: PgConnection): Promise<void>;
}

/** A read sent right after a pipelined transaction's COMMIT, in the same round trip. */
export interface CommitTail {
  /** `?` placeholders, as the transaction's own statements; index-bound without knowing its values. */
  sql: string;
  params: readonly unknown[];
  /**
   * Called once for every tail a transaction took: with its rows once the
   * transaction committed (before its afterCommit hooks), or with undefined
   * when the read failed or the transaction did.
   */
  deliver(rows: Record<string, unknown>[] | undefined): void;
}

export interface PipelinedTx extends Pick<Tx, 'query' | 'afterCommit'> {
  /** The transaction's last statement, sent with its COMMIT; the transaction ends with it. */
  queryAndCommit<T = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<T[]>;
}

interface Statement {
  name: string;
  text: string;
  params: number;
}

interface Step {
  statement: Statement;
  values: Array<string | null>;
  /** Rows wanted back (a Describe is sent); false for BEGIN, the plan setting and COMMIT. */
  rows: boolean;
}

const statements = new Map<string, Statement>();

/** The prepared statement for `sql` (`?` placeholders): a name from its text's hash, `$n` placeholders. */
export function statementOf(sql: string): Statement {
  let s = statements.get(sql);
  if (!s) {
    const parts = sql.split('?');
    let text = parts[0]!;
    for (let i = 1; i < parts.length; i++) text += `$${i}${parts[i]}`;
    s = { name: `bil_${createHash('sha256').update(sql).digest('hex').slice(0, 24)}`, text, params: parts.length - 1 };
    statements.set(sql, s);
  }
  return s;
}

const BEGIN = statementOf('BEGIN');
const GENERIC_PLANS = statementOf('SET LOCAL plan_cache_mode = force_generic_plan');
const COMMIT = statementOf('COMMIT');
const opening: Step[] = [
  { statement: BEGIN, values: [], rows: false },
  { statement: GENERIC_PLANS, values: [], rows: false },
];
const closing: Step[] = [{ statement: COMMIT, values: [], rows: false }];

/** A parameter as a text value for Bind. */
export function textValue(v: unknown): string | null {
  if (v === null || v === undefined) return null;
  if (typeof v === 'string') return v;
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw new Error('pipelined statement: a parameter is not a finite number');
    return String(v);
  }
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  throw new Error(`pipelined statement: unsupported parameter type ${typeof v}`);
}

/** Statements known to be prepared on each connection (pg's Client). */
const prepared = new WeakMap<PgConnection, Set<string>>();

/**
 * One round trip: the steps' messages in one write, one Sync; resolves with
 * each step's rows once PostgreSQL is ready again, or rejects with its error.
 * An error at step `tolerateFrom` or later (after the COMMIT) resolves
 * instead, with no rows (undefined) for that step and the ones after it.
 */
function roundTrip(conn: PgConnection, steps: Step[], tolerateFrom = steps.length): Promise<Array<Record<string, unknown>[] | undefined>> {
  const known = prepared.get(conn) ?? new Set<string>();
  prepared.set(conn, known);
  const parsing = steps.filter((s) => !known.has(s.statement.name)).map((s) => s.statement.name);
  return new Promise((resolve, reject) => {
    const results: Array<Record<string, unknown>[] | undefined> = steps.map(() => []);
    let at = 0;
    let names: string[] = [];
    let parsers: Array<(v: string) => unknown> = [];
    let settled = false;
    const fail = (err: Error) => {
      if (settled) return;
      settled = true;
      for (const name of parsing) known.delete(name);
      reject(err);
    };
    const unexpected = () => fail(new Error('pipelined statement: unexpected answer from PostgreSQL'));
    const q: Submittable = {
      submit(wire) {
        wire.stream.cork();
        try {
          const sent = new Set<string>();
          for (const { statement, values, rows } of steps) {
            if (!known.has(statement.name) && !sent.has(statement.name)) {
              wire.close({ type: 'S', name: statement.name });
              wire.parse({ name: statement.name, text: statement.text, types: [] });
              sent.add(statement.name);
            }
            wire.bind({ portal: '', statement: statement.name, values, binary: false });
            if (rows) wire.describe({ type: 'P', name: '' });
            wire.execute({ portal: '', rows: 0 });
          }
          wire.sync();
        } finally {
          wire.stream.uncork();
        }
        return null;
      },
      handleRowDescription(msg) {
        names = msg.fields.map((f) => f.name);
        parsers = msg.fields.map((f) => conn.getTypeParser(f.dataTypeID, 'text'));
      },
      handleDataRow(msg) {
        const row: Record<string, unknown> = {};
        for (let i = 0; i < msg.fields.length; i++) {
          const raw = msg.fields[i];
          row[names[i]!] = raw === null || raw === undefined ? null : parsers[i]!(raw);
        }
        results[at]?.push(row);
      },
      handleCommandComplete() {
        at++;
      },
      handleEmptyQuery: unexpected,
      handlePortalSuspended: unexpected,
      handleCopyInResponse: unexpected,
      handleCopyData: unexpected,
      handleError(err) {
        if (at < tolerateFrom) return fail(err);
        // Past the COMMIT: what ran stands. PostgreSQL skips the rest up to the Sync, and pg's
        // Client (which drops its active query at an error) sends nothing more until it is ready.
        if (settled) return;
        settled = true;
        // The steps before the failed one ran, so their Parse did; from it on, nothing is known.
        const ran = new Set(steps.slice(0, at).map((x) => x.statement.name));
        for (const name of parsing) if (ran.has(name)) known.add(name);
        for (let i = at; i < results.length; i++) results[i] = undefined;
        resolve(results);
      },
      handleReadyForQuery() {
        if (settled) return;
        settled = true;
        for (const name of parsing) known.add(name);
        resolve(results);
      },
    };
    conn.query(q);
  });
}

function stepOf(sql: string, params: readonly unknown[]): Step {
  const statement = statementOf(sql);
  if (statement.params !== params.length) throw new Error(`pipelined statement: ${statement.params} placeholders, ${params.length} parameters`);
  return { statement, values: params.map(textValue), rows: true };
}

/**
 * Runs `fn` in one transaction on a pooled connection; commits after it if
 * queryAndCommit did not. `tail`, asked when the COMMIT is sent with the last
 * statement, may add a read after it (CommitTail).
 */
export async function runPipelined<T>(pool: ConnectionPool, fn: (tx: PipelinedTx) => Promise<T>, tail?: () => CommitTail | undefined): Promise<T> {
  const conn = await pool.acquireConnection();
  const hooks: Array<() => void> = [];
  let began = false;
  let ended = false;
  /** The tail this transaction took, and its rows once they are in. */
  let taken: CommitTail | undefined;
  let tailRows: Record<string, unknown>[] | undefined;
  const handOver = () => {
    const t = taken;
    taken = undefined;
    try {
      t?.deliver(tailRows);
    } catch (err) {
      // Its reader's bug must not fail a committed transaction (its caller would retry it).
      process.emitWarning(err instanceof Error ? err : String(err), 'CommitTailError');
    }
  };
  const send = async <R>(sql: string, params: readonly unknown[], commit: boolean): Promise<R[]> => {
    if (ended) throw new Error('pipelined transaction: already committed');
    const step = stepOf(sql, params);
    const steps = [...(began ? [] : opening), step, ...(commit ? closing : [])];
    const committedAt = steps.length;
    if (commit && tail) {
      taken = tail();
      if (taken) steps.push(stepOf(taken.sql, taken.params));
    }
    began = true;
    const results = await roundTrip(conn, steps, committedAt);
    if (commit) ended = true;
    if (taken) tailRows = results[committedAt];
    return results[steps.indexOf(step)] as R[];
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
    handOver();
    for (const hook of hooks) hook();
    return result;
  } catch (err) {
    handOver(); // with no rows unless they came
    // A failed statement (or COMMIT sent with it) leaves an aborted or no transaction: ROLLBACK ends either.
    if (began && !ended) await Promise.resolve(conn.query('ROLLBACK')).catch(() => undefined);
    throw err;
  } finally {
    await pool.releaseConnection(conn);
  }
}
