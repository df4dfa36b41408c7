// Pipelined transactions on real PostgreSQL: BEGIN with the first statement,
// COMMIT with the last, parameters inlined as escaped literals that round-trip
// exactly, a failure rolled back, connections back to the pool.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Migration } from '@mikro-orm/migrations';
import { createTestEnv, type TestEnv } from '@bil/testkit';
import { Database } from './db.js';
import { inlineParams } from './pipelined-tx.js';

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
  const esc = (s: string) => `'${s.replace(/'/g, "''")}'`;
  it('refuses a placeholder count that does not match, and values it cannot write as a literal', () => {
    expect(() => inlineParams(`SELECT ?, ?`, [1], esc)).toThrow('2 placeholders, 1 parameters');
    expect(() => inlineParams(`SELECT ?`, [Number.NaN], esc)).toThrow('finite');
    expect(() => inlineParams(`SELECT ?`, [{}], esc)).toThrow('unsupported');
    expect(() => inlineParams(`SELECT ?`, [[1]], esc)).toThrow('unsupported');
    expect(inlineParams(`SELECT ?::text, ?, ?`, ["a'b", 3, null], esc)).toBe(`SELECT 'a''b'::text, 3, NULL`);
  });
});
