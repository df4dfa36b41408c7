// PostgreSQL through MikroORM: connection pool, migrations (explicit list, so
// they run the same from tsc output, tsx and vitest) and a small transaction
// wrapper that hands out raw SQL on the transaction's connection. Hot paths
// use set-based SQL, never a unit of work per row.
import { MikroORM, type EntityManager } from '@mikro-orm/postgresql';
import { Migrator, type Migration } from '@mikro-orm/migrations';
import type { EntitySchema, Constructor } from '@mikro-orm/core';
import type { Logger } from './logger.js';
import { runPipelined, type CommitTail, type ConnectionPool, type PipelinedTx } from './pipelined-tx.js';

export interface MigrationEntry {
  name: string;
  class: Constructor<Migration>;
}

export interface DatabaseOptions {
  url: string;
  /** The service's own schema; its tables and its migration table live there. */
  schema: string;
  migrations: MigrationEntry[];
  entities?: EntitySchema[];
  poolMax?: number;
  logger?: Logger;
}

export interface Sql {
  /** Runs one statement with `?` placeholders and returns the rows. */
  query<T = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<T[]>;
}

export interface Tx extends Sql {
  readonly em: EntityManager;
  /** Runs after the transaction commits (not on rollback). */
  afterCommit(fn: () => void): void;
}

/**
 * A connection of its own, outside the pool, for state that must outlive
 * transactions (the outbox relay's session advisory lock). Statements take
 * `$1…` placeholders (pg's own); `close()` ends the connection, which also
 * releases whatever the session held.
 */
export interface Session {
  query<T = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<T[]>;
  /** As Database.prepared, on this session's connection: parsed once, then only bound and executed. */
  prepared<T = Record<string, unknown>>(name: string, text: string, params?: readonly unknown[]): Promise<T[]>;
  close(): Promise<void>;
}

export class Database implements Sql {
  private constructor(
    readonly orm: MikroORM,
    readonly schema: string,
  ) {}

  static async connect(opts: DatabaseOptions): Promise<Database> {
    const orm = await MikroORM.init({
      clientUrl: opts.url,
      schema: opts.schema,
      entities: opts.entities ?? [],
      discovery: { warnWhenNoEntities: false },
      extensions: [Migrator],
      pool: { min: 0, max: opts.poolMax ?? 10 },
      migrations: {
        migrationsList: opts.migrations,
        tableName: `${opts.schema}.mikro_orm_migrations`,
        transactional: true,
        allOrNothing: true,
        snapshot: false,
        silent: true,
      },
      allowGlobalContext: false,
      debug: false,
      ensureDatabase: false,
      logger: (msg) => opts.logger?.debug({ orm: msg }, 'mikro-orm'),
      // knex's own messages ("Connection Error: Connection ended unexpectedly", one per pooled
      // connection PostgreSQL dropped) would go to the console, once per connection, during an
      // outage that the retry loops already report once: they go to the service's log at debug.
      driverOptions: { log: knexLog(opts.logger) },
    });
    return new Database(orm, opts.schema);
  }

  /** A fresh entity manager for a read. */
  em(): EntityManager {
    return this.orm.em.fork();
  }

  async query<T = Record<string, unknown>>(sql: string, params: readonly unknown[] = []): Promise<T[]> {
    return rowsOf<T>(await this.knex().raw(sql, params as unknown[]));
  }

  /**
   * Runs `fn` in one transaction on MikroORM's connection pool. Statements go
   * through the knex transaction directly: an ORM unit of work would cost
   * about twice as much per transaction on the hot paths
   * (packages/runtime/bench). `tx.em` gives an EntityManager bound to the
   * same transaction when a read wants the ORM.
   */
  async tx<T>(fn: (tx: Tx) => Promise<T>): Promise<T> {
    const hooks: Array<() => void> = [];
    const result = await this.knex().transaction(async (trx: KnexLike) => {
      let em: EntityManager | undefined;
      const tx: Tx = {
        get em() {
          return (em ??= forkBoundTo(trx));
        },
        query: async <R>(sql: string, params: readonly unknown[] = []) => rowsOf<R>(await trx.raw(sql, params as unknown[])),
        afterCommit: (hook) => hooks.push(hook),
      };
      const forkBoundTo = (t: KnexLike) => {
        const fork = this.orm.em.fork();
        fork.setTransactionContext(t as never);
        return fork;
      };
      return fn(tx);
    });
    for (const hook of hooks) hook();
    return result;
  }

  /**
   * Runs `fn` in one transaction whose BEGIN goes with its first statement
   * and whose COMMIT goes with `tx.queryAndCommit` (pipelined-tx.ts: for hot
   * paths of a fixed shape; every statement prepared once per connection).
   */
  pipelined<T>(fn: (tx: PipelinedTx) => Promise<T>): Promise<T> {
    return runPipelined((this.knex() as unknown as { client: ConnectionPool }).client, fn, this.commitTail);
  }

  private commitTail?: () => CommitTail | undefined;

  /**
   * The one reader of what a pipelined transaction just committed (the
   * outbox relay while it holds its lock): its read goes after the COMMIT,
   * in the same round trip, instead of in a round trip of its own once the
   * commit is known (pipelined-tx.ts).
   */
  setCommitTail(tail: (() => CommitTail | undefined) | undefined): void {
    this.commitTail = tail;
  }

  /** Removes `tail` if it is still the one set (a relay that stops leaves another's alone). */
  removeCommitTail(tail: () => CommitTail | undefined): void {
    if (this.commitTail === tail) this.commitTail = undefined;
  }

  /**
   * Runs one named prepared statement on a pooled connection: parsed and
   * planned once per connection, then only bound and executed (for hot reads
   * of a fixed shape). `text` uses pg's `$1…` placeholders and must be the
   * caller's constant; `name` must be unique per distinct text in the process.
   * Parameters go as pg converts them (a JS array becomes a PostgreSQL array).
   */
  async prepared<T = Record<string, unknown>>(name: string, text: string, params: readonly unknown[] = []): Promise<T[]> {
    const pool = (this.knex() as unknown as { client: PreparedPool }).client;
    const conn = await pool.acquireConnection();
    try {
      return rowsOf<T>(await conn.query({ name, text, values: params as unknown[] }));
    } finally {
      await pool.releaseConnection(conn);
    }
  }

  /** Opens a Session: one new connection with the pool's settings, not taken from the pool. */
  async session(): Promise<Session> {
    const client = (this.knex() as unknown as { client: RawClient }).client;
    const conn = await client.acquireRawConnection();
    // A dropped connection is reported by the next statement; without a listener it would crash the process.
    conn.on('error', () => undefined);
    let closed = false;
    return {
      query: async <R>(sql: string, params: readonly unknown[] = []) => rowsOf<R>(await conn.query(sql, params as unknown[])),
      prepared: async <R>(name: string, text: string, params: readonly unknown[] = []) => rowsOf<R>(await conn.query({ name, text, values: params as unknown[] })),
      close: async () => {
        if (closed) return;
        closed = true;
        await client.destroyRawConnection(conn).catch(() => undefined);
      },
    };
  }

  private knex(): KnexLike {
    return (this.orm.em.getConnection() as unknown as { getKnex(): KnexLike }).getKnex();
  }

  /** Applies pending migrations; returns the names applied. */
  async migrate(): Promise<string[]> {
    // Only when missing: CREATE SCHEMA (even IF NOT EXISTS) needs CREATE on the database, which a role
    // limited to its own, pre-created schema (the digest role of docs/deploy.md) does not have.
    const em = this.orm.em.fork();
    const exists = await em.execute(`SELECT 1 FROM pg_namespace WHERE nspname = ?`, [this.schema]);
    if (exists.length === 0) await em.execute(`CREATE SCHEMA IF NOT EXISTS "${this.schema}"`);
    const applied = await this.orm.getMigrator().up();
    return applied.map((m) => m.name);
  }

  async ping(): Promise<void> {
    await this.orm.em.fork().execute('SELECT 1');
  }

  async close(): Promise<void> {
    await this.orm.close(true);
  }
}

/** knex's `log` option: every message to `logger` at debug, never to the console. */
export function knexLog(logger: Logger | undefined): Record<'warn' | 'error' | 'deprecate' | 'debug', (message: unknown) => void> {
  const log = (message: unknown) => logger?.debug({ knex: String(message) }, 'knex');
  return { warn: log, error: log, deprecate: log, debug: log };
}

interface RawConnection {
  query(sql: string | { name: string; text: string; values: unknown[] }, params?: unknown[]): Promise<unknown>;
  on(event: 'error', fn: (err: unknown) => void): void;
}

interface RawClient {
  acquireRawConnection(): Promise<RawConnection>;
  destroyRawConnection(conn: RawConnection): Promise<void>;
}

interface PreparedPool {
  acquireConnection(): Promise<{ query(config: { name: string; text: string; values: unknown[] }): Promise<unknown> }>;
  releaseConnection(conn: unknown): Promise<void>;
}

interface KnexLike {
  raw(sql: string, params: unknown[]): Promise<unknown>;
  transaction<T>(fn: (trx: KnexLike) => Promise<T>): Promise<T>;
}

/** pg returns `{ rows }`; knex passes it through for PostgreSQL. */
function rowsOf<T>(result: unknown): T[] {
  return ((result as { rows?: T[] }).rows ?? []) as T[];
}

/** True for a PostgreSQL unique violation, optionally on one constraint. */
export function isUniqueViolation(err: unknown, constraint?: string): boolean {
  const e = err as { code?: string; constraint?: string };
  return e?.code === '23505' && (constraint === undefined || e.constraint === constraint);
}
