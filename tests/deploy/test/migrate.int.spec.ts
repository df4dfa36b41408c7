// The migration Job (and `docker run … migrate`) as the chart runs it: each
// service's `migrate` command in production mode with nothing but
// DATABASE_URL (no signing or digest keys, no Redis, no NATS) applies its
// schema to an empty database, exits 0, and a second run finds nothing to do.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestEnv, type TestEnv } from '@bil/testkit';
import { repo } from './support.js';

const SERVICES = ['identity', 'chat', 'digest'] as const;
let env: TestEnv;

function migrate(service: string): { status: number | null; output: string } {
  const r = spawnSync(process.execPath, [join(repo, 'services', service, 'dist', 'main.js'), 'migrate'], {
    env: { PATH: process.env.PATH ?? '', NODE_ENV: 'production', DATABASE_URL: env.databaseUrl, LOG_LEVEL: 'info' },
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
