// Pipelined transactions on real PostgreSQL: BEGIN with the first statement,
// COMMIT with the last, parameters inlined as escaped literals that round-trip
// exactly, a failure rolled back, connections back to the pool; and named
// prepared statements (Database.prepared).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Migration } from '@mikro-orm/migrations';
import { createTestEnv, type TestEnv } from '@bil/testkit';
import { Database } from './db.js';
import { escapeLiteral } from 'pg';
import { inlineParams, quoteLiteral } from './pipelined-tx.js';

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

  it('inlined literals round-trip exactly: quotes, backslashes, unicode, JSON, arrays, numbers, null', async () => {
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

describe('inlineParams', () => {
  it('refuses a placeholder count that does not match, and values it cannot write as a literal', () => {
    expect(() => inlineParams(`SELECT ?, ?`, [1])).toThrow('2 placeholders, 1 parameters');
    expect(() => inlineParams(`SELECT ?`, [Number.NaN])).toThrow('finite');
    expect(() => inlineParams(`SELECT ?`, [{}])).toThrow('unsupported');
    expect(() => inlineParams(`SELECT ?`, [[1]])).toThrow('unsupported');
    expect(inlineParams(`SELECT ?::text, ?, ?`, ["a'b", 3, null])).toBe(`SELECT 'a''b'::text, 3, NULL`);
  });

  it("quotes every string exactly as pg's escapeLiteral does", () => {
    const samples = ['', 'plain', "it's", "''", '\\', "a\\'b\\\\c", '{"text":"x\\ny \\"q\\""}', 'é漢😀', "'\\", 'x'.repeat(5000) + "'"];
    for (const s of samples) expect(quoteLiteral(s), s).toBe(escapeLiteral(s));
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
