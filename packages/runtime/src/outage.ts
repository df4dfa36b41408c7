// Outage bookkeeping shared by every retry loop: one log line when a
// dependency starts failing and one when it works again (with how long it was
// out and how many attempts failed), never one per retry; the test of
// whether an error means "a dependency is unreachable" (Redis, NATS,
// PostgreSQL connection errors), which callers answer as service_unavailable
// rather than internal; and that answer (503 + Retry-After at the edge).
import { AppError } from './errors.js';
import type { Logger } from './logger.js';

/** Seconds a client is asked to wait (Retry-After) after a 503 caused by an outage. */
export const OUTAGE_RETRY_AFTER_SECONDS = 2;

export class OutageLog {
  private since = 0;
  private failures = 0;

  /** `what` names the dependency or loop in the two lines, e.g. "redis", "outbox relay". */
  constructor(
    private readonly logger: Pick<Logger, 'warn' | 'info'>,
    private readonly what: string,
    private readonly now: () => number = Date.now,
  ) {}

  get failing(): boolean {
    return this.since !== 0;
  }

  /** Counts a failure; logs only the first of a run (warn, with the error's message). */
  failed(err: unknown, fields: Record<string, unknown> = {}): void {
    this.failures++;
    if (this.since !== 0) return;
    this.since = this.now();
    this.logger.warn({ ...fields, err: errMessage(err) }, `${this.what} unavailable; retrying quietly until it recovers`);
  }

  /** Marks success; logs once if it ends a run of failures. */
  ok(fields: Record<string, unknown> = {}): void {
    if (this.since === 0) return;
    this.logger.info({ ...fields, downMs: this.now() - this.since, failures: this.failures }, `${this.what} recovered`);
    this.since = 0;
    this.failures = 0;
  }
}

function errMessage(err: unknown): string {
  return (err as { message?: string })?.message ?? String(err);
}

const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ECONNABORTED', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'EHOSTDOWN', 'ENOTFOUND', 'EAI_AGAIN', 'ENETUNREACH', 'ENETDOWN']);
const NATS_ERRORS = new Set(['ConnectionError', 'ClosedConnectionError', 'DrainingConnectionError', 'TimeoutError', 'NoRespondersError', 'RequestError']);
/** MikroORM's wrapper of a lost connection, knex's "no connection to hand out". */
const DRIVER_ERRORS = new Set(['ConnectionException', 'KnexTimeoutError']);

/**
 * True when `err` says a dependency could not be reached (as opposed to a
 * bug or a refused request): ioredis' offline and retry-exhausted errors,
 * socket errors, NATS connection/timeout/no-responders errors, and
 * PostgreSQL's connection, resource and shutdown errors (SQLSTATE classes 08
 * and 53, 57P01-57P03), also when MikroORM or knex wrapped them.
 */
export function isDependencyUnavailable(err: unknown, depth = 0): boolean {
  const e = err as { name?: string; code?: unknown; message?: string; cause?: unknown } | undefined;
  if (!e || typeof e !== 'object' || depth > 5) return false;
  if (e instanceof AppError) return e.kind === 'unavailable';
  if (e.name === 'MaxRetriesPerRequestError') return true;
  if (NATS_ERRORS.has(e.name ?? '') || DRIVER_ERRORS.has(e.name ?? '')) return true;
  if (typeof e.code === 'string') {
    if (NETWORK_CODES.has(e.code)) return true;
    if (/^(08|53)[0-9A-Z]{3}$/.test(e.code) || /^57P0[1-3]$/.test(e.code)) return true;
  }
  const m = e.message ?? '';
  if (
    /^Connection is closed\.?$|Stream isn't writeable|Reached the max retries per request limit|Connection terminated|Connection ended unexpectedly|is not queryable|connection timeout|timeout exceeded when trying to connect|^Knex: Timeout acquiring a connection/i.test(m)
  ) {
    return true;
  }
  return e.cause !== undefined && e.cause !== err ? isDependencyUnavailable(e.cause, depth + 1) : false;
}

/** The AppError a handler answers with when a dependency of the service is down. */
export function outageError(): AppError {
  return new AppError('unavailable', 'service_unavailable', 'a backend service is unavailable, try again', {
    retry_after_seconds: OUTAGE_RETRY_AFTER_SECONDS,
  });
}
