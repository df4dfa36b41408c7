// The migration Job (and `docker run … migrate`) as the chart runs it: each
// service's `migrate` command in production mode with nothing but
// DATABASE_URL (no signing or digest keys, no Redis, no NATS) applies its
// schema to an empty database, exits 0, and a second run finds nothing to do.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestEnv, type TestEnv } from '@bil/testkit';
import { read, repo } from './support.js';

const SERVICES = ['identity', 'chat', 'digest'] as const;
let env: TestEnv;

function migrate(service: string, databaseUrl = env.databaseUrl): { status: number | null; output: string } {
  const r = spawnSync(process.execPath, [join(repo, 'services', service, 'dist', 'main.js'), 'migrate'], {
    env: { PATH: process.env.PATH ?? '', NODE_ENV: 'production', DATABASE_URL: databaseUrl, LOG_LEVEL: 'info' },
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

describe('migrate with only DATABASE_URL', () => {
  beforeAll(async () => {
    env = await createTestEnv('deploy-migrate');
  });
  afterAll(async () => {
    await env?.cleanup();
  });

  it.each(SERVICES)('%s: applies its migrations in production mode without keys, then has nothing left to apply', (service) => {
    const first = migrate(service);
    expect(first.status, first.output).toBe(0);
    expect(first.output).toContain('migrations applied');
    const again = migrate(service);
    expect(again.status, again.output).toBe(0);
    expect(again.output).toContain('database schema up to date');
  });

  it('left one schema per service, each with its migration table', async () => {
    const db = new pg.Client({ connectionString: env.databaseUrl });
    await db.connect();
    try {
      const { rows } = await db.query<{ table_schema: string }>(`SELECT table_schema FROM information_schema.tables WHERE table_name = 'mikro_orm_migrations' ORDER BY 1`);
      expect(rows.map((r) => r.table_schema)).toEqual([...SERVICES].sort());
    } finally {
      await db.end();
    }
  });
});

/** The ```sql block of docs/deploy.md that contains `marker`, for role `role`. */
function deploySql(marker: string, role: string): string {
  const blocks = [...read('docs/deploy.md').matchAll(/```sql\n([\s\S]*?)```/g)].map((m) => m[1]!);
  const block = blocks.find((b) => b.includes(marker));
  if (!block) throw new Error(`docs/deploy.md has no sql block with ${marker}`);
  return block.replaceAll('bil_digest', role).replaceAll("PASSWORD '…'", "PASSWORD 'pw'");
}

describe('the digest role of docs/deploy.md (a role limited to the digest schema)', () => {
  const role = `bil_digest_${randomBytes(4).toString('hex')}`;
  const envs: TestEnv[] = [];
  const asRole = (url: string) => {
    const u = new URL(url);
    u.username = role;
    u.password = 'pw';
    return u.toString();
  };
  async function sql(url: string, text: string): Promise<void> {
    const db = new pg.Client({ connectionString: url });
    await db.connect();
    try {
      await db.query(text);
    } finally {
      await db.end();
    }
  }
  afterAll(async () => {
    const admin = envs[0]?.databaseUrl;
    for (const e of envs) await e.cleanup();
    if (admin) {
      // The role outlives the test databases (roles are per server): drop it from the server's maintenance database.
      const u = new URL(admin);
      u.pathname = '/postgres';
      await sql(u.toString(), `DROP ROLE IF EXISTS ${role}`);
    }
  });

  it('a new install: the role migrates and uses the digest schema, and is refused the chat schema', async () => {
    const e = await createTestEnv('deploy-digestrole');
    envs.push(e);
    expect(migrate('chat', e.databaseUrl).status).toBe(0);
    await sql(e.databaseUrl, deploySql('CREATE SCHEMA digest AUTHORIZATION bil_digest', role));
    const r = migrate('digest', asRole(e.databaseUrl));
    expect(r.status, r.output).toBe(0);
    const db = new pg.Client({ connectionString: asRole(e.databaseUrl) });
    await db.connect();
    try {
      await db.query(`INSERT INTO digest.chat_members (chat_id, user_id) VALUES (gen_random_uuid(), gen_random_uuid())`);
      expect((await db.query(`SELECT count(*)::int AS n FROM digest.chat_members`)).rows[0].n).toBe(1);
      await expect(db.query(`SELECT 1 FROM chat.events LIMIT 1`)).rejects.toThrow(/permission denied/);
      await expect(db.query(`CREATE SCHEMA other`)).rejects.toThrow(/permission denied/);
    } finally {
      await db.end();
    }
  });

  it('an upgrade: the documented ownership change hands an existing digest schema to the role', async () => {
    const e = await createTestEnv('deploy-digestrole-up');
    envs.push(e);
    expect(migrate('digest', e.databaseUrl).status).toBe(0);
    await sql(e.databaseUrl, deploySql('ALTER SCHEMA digest OWNER TO bil_digest', role).replace(/CREATE ROLE [^;]+;/, ''));
    const r = migrate('digest', asRole(e.databaseUrl));
    expect(r.status, r.output).toBe(0);
    expect(r.output).toContain('database schema up to date');
    await sql(asRole(e.databaseUrl), `INSERT INTO digest.chat_members (chat_id, user_id) VALUES (gen_random_uuid(), gen_random_uuid()); DELETE FROM digest.chat_members`);
  });
});
