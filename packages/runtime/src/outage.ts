// Telling a dependency outage (PostgreSQL, Redis or a peer unreachable, a
// connection cut, a pool with no connection to hand out) from a bug. A
// handler that fails because of an outage answers `unavailable`
// (`service_unavailable`, HTTP 503 with Retry-After at the edge) instead of
// `internal`: the client can try again, and the operator sees an outage, not
// a stream of stack traces.
import { AppError } from './errors.js';

/** Seconds a client is asked to wait (Retry-After) after a 503 caused by an outage. */
export const OUTAGE_RETRY_AFTER_SECONDS = 2;

/** Socket-level failures: the peer is down, unreachable, or cut the connection. */
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'ENETUNREACH',
  'ENETDOWN',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EPIPE',
]);

/**
 * PostgreSQL SQLSTATEs of an unavailable server (Appendix A of the PostgreSQL
 * manual): class 08 connection exception, class 53 insufficient resources
 * (too many connections, out of memory, disk full), 57P01-57P03 (shutting
 * down, crashed, starting up).
 */
function isUnavailableSqlState(code: string): boolean {
  return /^(08|53)[0-9A-Z]{3}$/.test(code) || code === '57P01' || code === '57P02' || code === '57P03';
}

/** Messages of pg, knex and ioredis for a lost or missing connection (they carry no code). */
const OUTAGE_MESSAGES = [
  /^Connection terminated/i, // pg: server closed the connection
  /^Connection ended unexpectedly/i, // pg
  /is not queryable/i, // pg: a client that saw a connection error
  /timeout exceeded when trying to connect/i, // pg-pool
  /^Knex: Timeout acquiring a connection/i, // knex: no connection free or none can be opened
  /^Connection is closed\.?$/i, // ioredis
  /^Reached the max retries per request limit/i, // ioredis MaxRetriesPerRequestError
  /^Stream isn't writeable/i, // ioredis with the offline queue off
];

const OUTAGE_NAMES = new Set(['ConnectionException', 'MaxRetriesPerRequestError', 'KnexTimeoutError']);

/**
 * True when `err` (or an error in its `cause` chain) says a dependency is
 * unreachable or dropped the connection, rather than that the request or the
 * code is wrong.
 */
export function isOutageError(err: unknown): boolean {
  let e: unknown = err;
  for (let depth = 0; depth < 5 && typeof e === 'object' && e !== null; depth++) {
    if (e instanceof AppError) return e.kind === 'unavailable';
    const { code, name, message } = e as { code?: unknown; name?: unknown; message?: unknown };
    if (typeof code === 'string' && (NETWORK_CODES.has(code) || isUnavailableSqlState(code))) return true;
    if (typeof name === 'string' && OUTAGE_NAMES.has(name)) return true;
    if (typeof message === 'string' && OUTAGE_MESSAGES.some((re) => re.test(message))) return true;
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}

/** The AppError a handler answers with when a dependency of the service is down. */
export function outageError(): AppError {
  return new AppError('unavailable', 'service_unavailable', 'a backend service is unavailable, try again', {
    retry_after_seconds: OUTAGE_RETRY_AFTER_SECONDS,
  });
}

/**
 * Logs an outage once when it starts and once when it ends, not once per
 * failed call: `failed()` on every outage error, `succeeded()` on every
 * success (cheap when nothing is down).
 */
export class OutageLog {
  #down = false;
  #since = 0;
  #failures = 0;

  constructor(
    private readonly log: { warn(obj: object, msg: string): void; info(obj: object, msg: string): void },
    private readonly what: string,
  ) {}

  get down(): boolean {
    return this.#down;
  }

  failed(err: unknown, context: Record<string, unknown> = {}): void {
    this.#failures += 1;
    if (this.#down) return;
    this.#down = true;
    this.#since = Date.now();
    const e = err as { code?: unknown; name?: unknown };
    this.log.warn({ ...context, cause: typeof e?.code === 'string' ? e.code : typeof e?.name === 'string' ? e.name : 'unknown' }, `${this.what} unavailable: answering service_unavailable until it is back`);
  }

  succeeded(): void {
    if (!this.#down) return;
    this.log.info({ downMs: Date.now() - this.#since, failedCalls: this.#failures }, `${this.what} available again`);
    this.#down = false;
    this.#failures = 0;
  }
}
