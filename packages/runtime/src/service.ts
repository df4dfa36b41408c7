// Process lifecycle: start a service, print config errors as one line each,
// and on SIGINT/SIGTERM close everything in reverse start order.
import { ConfigError } from './config.js';
import type { Database } from './db.js';
import type { EventStore } from './event-store.js';
import type { Logger } from './logger.js';

export interface Lifecycle {
  /** Registers a closer; closers run in reverse order on shutdown. */
  onShutdown(name: string, fn: () => Promise<void> | void): void;
}

export async function runService(
  name: string,
  main: (life: Lifecycle) => Promise<Logger>,
  opts: { shutdownTimeoutMs?: number } = {},
): Promise<void> {
  const closers: Array<{ name: string; fn: () => Promise<void> | void }> = [];
  const life: Lifecycle = { onShutdown: (n, fn) => closers.push({ name: n, fn }) };
  let logger: Logger | undefined;
  let stopping = false;

  const stop = async (signal: string, code: number) => {
    if (stopping) return;
    stopping = true;
    logger?.info({ signal }, `${name} shutting down`);
    const timer = setTimeout(() => {
      logger?.error(`${name} did not stop in time; exiting`);
      process.exit(1);
    }, opts.shutdownTimeoutMs ?? 15_000);
    timer.unref();
    for (const c of closers.reverse()) {
      try {
        await c.fn();
      } catch (err) {
        logger?.error({ err, closer: c.name }, 'error while shutting down');
      }
    }
    logger?.info(`${name} stopped`);
    process.exit(code);
  };
  process.once('SIGINT', () => void stop('SIGINT', 0));
  process.once('SIGTERM', () => void stop('SIGTERM', 0));

  try {
    logger = await main(life);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${name}: ${err.message}\n`);
    } else {
      process.stderr.write(`${name}: failed to start: ${(err as Error)?.stack ?? String(err)}\n`);
    }
    await stop('startup-failure', 1);
  }
}

/** Applies pending migrations and logs what it did. */
export async function applyMigrations(db: Database, logger: Logger): Promise<string[]> {
  const applied = await db.migrate();
  logger.info({ applied }, applied.length ? 'migrations applied' : 'database schema up to date');
  return applied;
}

/**
 * The commands an event-sourced service answers besides `serve`: `migrate`
 * (apply pending migrations) and `rebuild-projections` (read models from the
 * events). Migrates first as well when `migrateOnStart`. True when a command
 * ran and the process should exit; throws on an unknown command.
 */
export async function runStoreCommand(command: string, o: { db: Database; store: EventStore; logger: Logger; migrateOnStart: boolean }): Promise<boolean> {
  if (!['serve', 'migrate', 'rebuild-projections'].includes(command)) {
    throw new Error(`unknown command "${command}" (serve, migrate, rebuild-projections)`);
  }
  if (command === 'migrate' || o.migrateOnStart) await applyMigrations(o.db, o.logger);
  if (command === 'rebuild-projections') {
    const n = await o.store.rebuildProjections();
    o.logger.info({ events: n }, 'projections rebuilt');
  }
  return command !== 'serve';
}
