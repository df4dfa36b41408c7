// Process lifecycle: start a service, print config errors as one line each,
// and on SIGINT/SIGTERM close everything in reverse start order.
import { ConfigError } from './config.js';
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
