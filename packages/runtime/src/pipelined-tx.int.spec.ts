// Pipelined transactions on real PostgreSQL: BEGIN with the first statement,
// COMMIT with the last, each statement prepared once per connection,
// parameters bound as values that round-trip exactly, a failure rolled back
// (also one that came before or after a statement's first Parse),
// connections back to the pool; a commit tail read after the COMMIT in the
// same round trip (seeing the commit, before the afterCommit hooks; a tail
// that fails does not undo the commit); and named prepared statements
// (Database.prepared).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Migration } from '@mikro-orm/migrations';
import { createTestEnv, type TestEnv } from '@bil/testkit';
import { Database } from './db.js';
import { statementOf, textValue } from './pipelined-tx.js';

class Init extends Migration {
  override async up(): Promise<void> {
    this.addSql(`CREATE TABLE pt.notes (id integer PRIMARY KEY, body text NOT NULL, doc jsonb)`);
  }
}

let env: TestEnv;
let db: Database;

beforeAll(async () => {
  env = await createTestEnv('pipelined');
  db = await Database.connect({ url: env.databaseUrl, schema: 'pt', migrations: [{ name: 'Init', class: Init }], poolMax: 2 });
  await db.migrate();
});

afterAll(async () => {
  await db?.close();
  await env?.cleanup();
});

const body = async (id: number) => (await db.query<{ body: string }>(`SELECT body FROM pt.notes WHERE id = ?`, [id]))[0]?.body;

describe('Database.pipelined', () => {
  it('sends BEGIN with the first statement and COMMIT with the last; rows come back from each', async () => {
    const hooks: string[] = [];
    const result = await db.pipelined(async (tx) => {
      const [n] = await tx.query<{ n: number }>(`SELECT count(*)::int AS n FROM pt.notes WHERE id = ?`, [1]);
      tx.afterCommit(() => hooks.push('committed'));
      const [row] = await tx.queryAndCommit<{ id: number }>(`INSERT INTO pt.notes (id, body) VALUES (?, ?) RETURNING id`, [1, 'one']);
      return { before: n!.n, id: row!.id };
    });
    expect(result).toEqual({ before: 0, id: 1 });
    expect(hooks).toEqual(['committed']);
    expect(await body(1)).toBe('one');
  });

  it('parameters round-trip exactly: quotes, backslashes, unicode, JSON, arrays, numbers, null', async () => {
    const nasty = `it's a \\ "test" ; COMMIT; DROP TABLE pt.notes; -- \u00e9\u{1f600} $$ ? '' \\' \n\t`;
    const doc = { text: nasty, n: [1, 2.5, -3], nested: { q: "'" } };
    await db.pipelined(async (tx) => {
      await tx.query(`SELECT 1 WHERE ?::uuid[] IS NOT NULL`, ['{00000000-0000-0000-0000-000000000001}']);
      await tx.queryAndCommit(`INSERT INTO pt.notes (id, body, doc) VALUES (?, ?, ?::jsonb)`, [2, nasty, JSON.stringify(doc)]);
    });
    const [row] = await db.query<{ body: string; doc: unknown }>(`SELECT body, doc FROM pt.notes WHERE id = 2`);
    expect(row).toEqual({ body: nasty, doc });
    const [t] = await db.pipelined((tx) => tx.query<{ a: number; b: null; c: boolean }>(`SELECT ?::int AS a, ?::text AS b, ?::boolean AS c`, [7, null, true]));
    expect(t).toEqual({ a: 7, b: null, c: true });
  });

  it('a failing statement rolls the whole transaction back, and the connection serves the next one', async () => {
    for (let i = 0; i < 5; i++) {
      const err = await db
        .pipelined(async (tx) => {
          await tx.query(`INSERT INTO pt.notes (id, body) VALUES (?, ?)`, [100 + i, 'kept?']);
          await tx.queryAndCommit(`INSERT INTO pt.notes (id, body) VALUES (?, ?)`, [1, 'secret-body']);
        })
        .catch((e: unknown) => e);
      expect((err as { code?: string }).code).toBe('23505');
      // pg's own error: no statement text, no parameters, in the message.
      expect(String((err as Error).message)).not.toContain('secret-body');
      expect(await body(100 + i)).toBeUndefined();
    }
    // A throw in between also rolls back; a transaction without queryAndCommit commits at the end.
    await expect(
      db.pipelined(async (tx) => {
        await tx.query(`INSERT INTO pt.notes (id, body) VALUES (?, ?)`, [200, 'x']);
        throw new Error('refused');
      }),
    ).rejects.toThrow('refused');
    expect(await body(200)).toBeUndefined();
    await db.pipelined((tx) => tx.query(`INSERT INTO pt.notes (id, body) VALUES (?, ?)`, [201, 'y']));
    expect(await body(201)).toBe('y');
    // Nothing after the commit.
    await expect(
      db.pipelined(async (tx) => {
        await tx.queryAndCommit(`INSERT INTO pt.notes (id, body) VALUES (?, ?)`, [202, 'z']);
        await tx.query(`SELECT 1`);
      }),
    ).rejects.toThrow('already committed');
    expect(await body(202)).toBe('z');
  });
});

describe('pipelined statements are prepared', () => {
  /** The statements prepared on the connections of the pool (pg_prepared_statements is per session). */
  const preparedNames = async (): Promise<string[]> => {
    const names = await Promise.all(
      [0, 1].map(() => db.pipelined(async (tx) => tx.query<{ name: string }>(`SELECT name FROM pg_prepared_statements WHERE name LIKE ? ORDER BY name`, ['bil_%']))),
    );
    return names.flat().map((r) => r.name);
  };

  it('once per connection: the same text runs again without a new Parse, on any pooled connection', async () => {
    const text = `SELECT count(*)::int AS n FROM pt.notes WHERE id > ?`;
    for (let i = 0; i < 8; i++) {
      const runs = await Promise.all([1, 2, 3].map(() => db.pipelined((tx) => tx.query<{ n: number }>(text, [-1]))));
      for (const [row] of runs) expect(row!.n).toBeGreaterThanOrEqual(0);
    }
    const names = await preparedNames();
    const name = statementOf(text).name;
    // Each connection holds it once (two connections, two rows at most), whatever the number of runs.
    expect(names.filter((n) => n === name).length).toBeGreaterThanOrEqual(1);
    expect(names.filter((n) => n === name).length).toBeLessThanOrEqual(2);
    expect(names).toContain(statementOf('BEGIN').name);
  });

  it('a request that failed at its first Parse, or after it, leaves the connection able to run the statement', async () => {
    // Fails at Parse: the table does not exist yet.
    const text = `INSERT INTO pt.later (id) VALUES (?) RETURNING id`;
    for (let i = 0; i < 3; i++) {
      await expect(db.pipelined((tx) => tx.queryAndCommit(text, [i]))).rejects.toThrow('does not exist');
    }
    await db.query(`CREATE TABLE pt.later (id integer PRIMARY KEY)`);
    for (let i = 0; i < 3; i++) expect(await db.pipelined((tx) => tx.queryAndCommit<{ id: number }>(text, [i]))).toEqual([{ id: i }]);
    // Fails after its Parse (a duplicate key): the statement exists, and runs again.
    const dup = `INSERT INTO pt.later (id) VALUES (?) RETURNING id /* dup */`;
    for (let i = 0; i < 3; i++) {
      await expect(db.pipelined((tx) => tx.queryAndCommit(dup, [0]))).rejects.toMatchObject({ code: '23505' });
      expect(await db.pipelined((tx) => tx.queryAndCommit<{ id: number }>(dup, [10 + i]))).toEqual([{ id: 10 + i }]);
    }
  });

  it("parses rows with the pool's own type parsers, as every other query of the pool does", async () => {
    const sql = `SELECT ?::timestamptz AS at, ?::bigint AS big, ?::jsonb AS doc, ?::int[] AS ints, ?::uuid AS id`;
    const params = ['2026-12-06 22:45:03.123456+00', '9007199254740993', '{"a":[1,"x"]}', '{1,2}', '00000000-0000-0000-0000-000000000001'];
    const [viaPool] = await db.query(sql, params);
    const [pipelined] = await db.pipelined((tx) => tx.query(sql, params));
    expect(pipelined).toEqual(viaPool);
    // MikroORM's parsers: timestamps stay text (microseconds kept), bigints stay strings.
    expect(typeof (pipelined as { at: unknown }).at).toBe('string');
    expect((pipelined as { big: unknown }).big).toBe('9007199254740993');
  });

  it('refuses a placeholder count that does not match, and values it cannot bind as text', async () => {
    await expect(db.pipelined((tx) => tx.query(`SELECT ?::int, ?::int`, [1]))).rejects.toThrow('2 placeholders, 1 parameters');
    expect(() => textValue(Number.NaN)).toThrow('finite');
    expect(() => textValue({})).toThrow('unsupported');
    expect(() => textValue([1])).toThrow('unsupported');
    expect([textValue("a'b"), textValue(3), textValue(null), textValue(false)]).toEqual(["a'b", '3', null, 'false']);
    expect(statementOf(`SELECT ?::text, ?`).text).toBe(`SELECT $1::text, $2`);
  });
});

describe('a commit tail (Database.setCommitTail)', () => {
  afterAll(() => db.setCommitTail(undefined));

  it('reads after the COMMIT in the same round trip: it sees the commit, and its rows come before the afterCommit hooks', async () => {
    const seen: string[] = [];
    let asked = 0;
    db.setCommitTail(() => {
      asked++;
      return { sql: `SELECT body FROM pt.notes WHERE id >= ? ORDER BY id`, params: [400], deliver: (rows) => seen.push(`tail ${rows?.map((r) => r.body).join(',')}`) };
    });
    await db.pipelined(async (tx) => {
      await tx.query(`INSERT INTO pt.notes (id, body) VALUES (?, ?)`, [400, 'a']); // no tail: the transaction goes on
      tx.afterCommit(() => seen.push('hook'));
      await tx.queryAndCommit(`INSERT INTO pt.notes (id, body) VALUES (?, ?)`, [401, 'b']);
    });
    expect(seen).toEqual(['tail a,b', 'hook']);
    expect(asked).toBe(1);
    // A transaction committed by a plain COMMIT (no queryAndCommit) carries none.
    await db.pipelined((tx) => tx.query(`INSERT INTO pt.notes (id, body) VALUES (?, ?)`, [402, 'c']));
    expect(seen).toHaveLength(2);
    expect(await body(402)).toBe('c');
  });

  it('a tail that fails does not undo the commit: the transaction returns, the tail hears it got nothing, the connection runs it next time', async () => {
    const got: unknown[] = [];
    let divisor = 0;
    db.setCommitTail(() => ({ sql: `SELECT 1 / ?::int AS x`, params: [divisor], deliver: (rows) => got.push(rows) }));
    const hooks: string[] = [];
    const id = await db.pipelined(async (tx) => {
      tx.afterCommit(() => hooks.push('hook'));
      const [row] = await tx.queryAndCommit<{ id: number }>(`INSERT INTO pt.notes (id, body) VALUES (?, ?) RETURNING id`, [410, 'kept']);
      return row!.id;
    });
    expect(id).toBe(410);
    expect(await body(410)).toBe('kept');
    expect(hooks).toEqual(['hook']);
    expect(got).toEqual([undefined]);
    divisor = 1;
    // Every pooled connection (poolMax 2) runs the tail and the statements before it again.
    await Promise.all([411, 412, 413].map((n) => db.pipelined((tx) => tx.queryAndCommit(`INSERT INTO pt.notes (id, body) VALUES (?, ?) RETURNING id`, [n, 'more']))));
    expect(got).toEqual([undefined, [{ x: 1 }], [{ x: 1 }], [{ x: 1 }]]);
    expect(await body(413)).toBe('more');
  });

  it('a transaction that fails before its COMMIT runs no tail: the tail hears it got nothing', async () => {
    const got: unknown[] = [];
    db.setCommitTail(() => ({ sql: `SELECT 1 AS x`, params: [], deliver: (rows) => got.push(rows) }));
    await expect(db.pipelined((tx) => tx.queryAndCommit(`INSERT INTO pt.notes (id, body) VALUES (?, ?)`, [413, 'duplicate key']))).rejects.toThrow(/duplicate key/);
    expect(got).toEqual([undefined]);
  });
});

describe('Database.prepared', () => {
  it('runs a named statement with $n parameters (arrays as PostgreSQL arrays), again on every pooled connection', async () => {
    await db.query(`INSERT INTO pt.notes (id, body) VALUES (301, 'p1'), (302, 'p2'), (303, 'p3')`);
    const text = `SELECT id, body FROM pt.notes WHERE id = ANY($1::int[]) AND body <> $2 ORDER BY id`;
    // More runs at once than the pool has connections: each connection prepares it once, then reuses it.
    const runs = await Promise.all(Array.from({ length: 6 }, () => db.prepared<{ id: number; body: string }>('pt_notes_by_ids', text, [[301, 302, 303], 'p2'])));
    for (const rows of runs) expect(rows).toEqual([{ id: 301, body: 'p1' }, { id: 303, body: 'p3' }]);
  });

  it('passes a failing statement’s error through and gives the connection back', async () => {
    await expect(db.prepared('pt_bad', `SELECT 1 / $1::int AS x`, [0])).rejects.toThrow('division by zero');
    for (let i = 0; i < 3; i++) expect(await db.prepared<{ x: number }>('pt_bad', `SELECT 1 / $1::int AS x`, [1])).toEqual([{ x: 1 }]);
  });
});
