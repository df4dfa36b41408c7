// The one retry policy of the SDK, and the typed reading of the server
// answers it retries on. Two kinds of failure are retried:
// - the server says the client's view is stale (new devices, a newer epoch)
//   and the client can bring it up to date from verified data (withRetry);
//   never on a claim it can't check;
// - an outage: no answer, or 502/503/504 (retryTransient), for calls that are
//   idempotent as sent (a message send carries its message id: a resend
//   returns the first result). The same jittered, capped backoff paces these
//   retries and the live connection's reconnects (backoffDelay).
import { BilApiError, BilNetworkError } from '../errors.js';
import { ErrorReason, parseMismatchedDevicesDetails } from '@bil/proto/errors';

/** Attempts at one operation before the last error is passed on. */
export const MAX_ATTEMPTS = 5;
/** Pause before retry n: base × 2^(n-1) ms (the chat service learns of new devices from identity's events a moment later). */
const BASE_DELAY_MS = 150;

/** What to do after a failed attempt: try again (after the engine refreshed what the answer said was stale), or give up. */
export type Recovery = 'retry' | 'fail';

/**
 * Runs `attempt` until it succeeds, `recover` says `fail`, or MAX_ATTEMPTS
 * attempts were made; waits with exponential backoff between attempts.
 * `recover` brings the client's view up to date before saying `retry`.
 */
export async function withRetry<T>(attempt: (n: number) => Promise<T>, recover: (err: unknown, n: number) => Promise<Recovery>): Promise<T> {
  for (let n = 1; ; n++) {
    try {
      return await attempt(n);
    } catch (err) {
      if (n >= MAX_ATTEMPTS || (await recover(err, n)) === 'fail') throw err;
      await new Promise<void>((resolve) => setTimeout(resolve, BASE_DELAY_MS * 2 ** (n - 1)));
    }
  }
}

/** Exponential backoff bounds: the first delay and the cap, both in ms. */
export interface Backoff {
  readonly initialMs: number;
  readonly maxMs: number;
}

/**
 * Pause after `failures` failed attempts in a row (0: after the first):
 * initial × 2^failures, capped, with "equal jitter" (half fixed, half random)
 * so clients that failed together don't come back together.
 * @example backoffDelay(0, { initialMs: 500, maxMs: 3000 }) // 250..500
 */
export function backoffDelay(failures: number, backoff: Backoff, random: () => number = Math.random): number {
  const base = Math.min(backoff.maxMs, backoff.initialMs * 2 ** Math.min(Math.max(0, failures), 30));
  return Math.round(base / 2 + (random() * base) / 2);
}

/** Reconnects of the live connection and retries through an outage: 250–500 ms first, at most 3 s apart. */
export const OUTAGE_BACKOFF: Backoff = { initialMs: 500, maxMs: 3000 };

/** How long a send keeps retrying through an outage before the error is passed on (ms). */
export const OUTAGE_RETRY_BUDGET_MS = 30_000;

/** A failure that a later identical call may not have: no answer at all, or the server's 502/503/504. */
export function isTransient(err: unknown): boolean {
  if (err instanceof BilNetworkError) return true;
  return err instanceof BilApiError && (err.status === 502 || err.status === 503 || err.status === 504);
}

/** The wait the server asked for (Retry-After, or `details.retry_after_seconds`) in ms, if any. */
export function retryAfterMs(err: unknown): number | undefined {
  if (!(err instanceof BilApiError)) return undefined;
  if (err.retryAfterMs !== undefined) return err.retryAfterMs;
  const s = Number(err.details.retry_after_seconds);
  return Number.isFinite(s) && s > 0 ? s * 1000 : undefined;
}

export interface TransientRetryOptions {
  /** Give up once this long has passed since the first attempt (default OUTAGE_RETRY_BUDGET_MS; 0: no retry). */
  budgetMs?: number;
  backoff?: Backoff;
  random?: () => number;
  /** Before each pause: the failure and how long the pause is. */
  onRetry?: (info: { attempt: number; delayMs: number; error: unknown }) => void;
}

/**
 * Runs `call` until it succeeds, fails with something other than an outage,
 * or the budget is spent; between attempts waits the backoff, or the server's
 * Retry-After when that is longer. Only for calls that are idempotent as sent.
 */
export async function retryTransient<T>(call: () => Promise<T>, options: TransientRetryOptions = {}): Promise<T> {
  const budget = options.budgetMs ?? OUTAGE_RETRY_BUDGET_MS;
  const started = Date.now();
  for (let failures = 0; ; failures++) {
    try {
      return await call();
    } catch (err) {
      if (!isTransient(err)) throw err;
      const delayMs = Math.max(backoffDelay(failures, options.backoff ?? OUTAGE_BACKOFF, options.random), retryAfterMs(err) ?? 0);
      if (Date.now() + delayMs - started > budget) throw err;
      options.onRetry?.({ attempt: failures + 1, delayMs, error: err });
      await new Promise<void>((resolve) => setTimeout(resolve, delayMs));
    }
  }
}

/** The API's error code, if `err` is an API error. */
export function apiCode(err: unknown): string | undefined {
  return err instanceof BilApiError ? err.code : undefined;
}

/** The devices a `mismatched_devices` answer names (docs/api.md "mismatched_devices"). */
export interface MismatchedDevices {
  readonly missing: readonly { userId: string; deviceId: string }[];
  readonly extra: readonly { userId: string; deviceId: string }[];
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** The typed details of a `mismatched_devices` answer, or undefined for any other error. */
export function mismatchedDevices(err: unknown): MismatchedDevices | undefined {
  if (!(err instanceof BilApiError) || err.code !== ErrorReason.MISMATCHED_DEVICES) return undefined;
  // Only well-formed user ids: anything else would become a request path.
  const d = parseMismatchedDevicesDetails(err.details, (ref) => UUID.test(ref.userId));
  return { missing: d.missingDevices, extra: d.extraDevices };
}

/** The users a `mismatched_devices` answer names (their device lists are stale). */
export function mismatchedUsers(m: MismatchedDevices): string[] {
  return [...new Set([...m.missing, ...m.extra].map((d) => d.userId))];
}

/** Another device published an epoch first: sync and build on it. */
export const isEpochRace = (err: unknown): boolean => apiCode(err) === 'unexpected_epoch' || apiCode(err) === 'epoch_prev_hash_mismatch';
