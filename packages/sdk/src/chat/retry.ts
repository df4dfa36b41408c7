// The one retry policy of the messaging engine, and the typed reading of the
// server answers it retries on. A call is retried only when the server says
// the client's view is stale (new devices, a newer epoch) and the client can
// bring it up to date from verified data; never on a claim it can't check.
import { BilApiError } from '../errors.js';

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

function deviceList(raw: unknown): { userId: string; deviceId: string }[] {
  if (!Array.isArray(raw)) return [];
  const out: { userId: string; deviceId: string }[] = [];
  for (const d of raw as unknown[]) {
    const r = d as { user_id?: unknown; device_id?: unknown } | null;
    // Only well-formed ids: anything else would become a request path.
    if (typeof r?.user_id === 'string' && UUID.test(r.user_id)) out.push({ userId: r.user_id, deviceId: typeof r.device_id === 'string' ? r.device_id : '' });
  }
  return out;
}

/** The typed details of a `mismatched_devices` answer, or undefined for any other error. */
export function mismatchedDevices(err: unknown): MismatchedDevices | undefined {
  if (!(err instanceof BilApiError) || err.code !== 'mismatched_devices') return undefined;
  return { missing: deviceList(err.details.missing_devices), extra: deviceList(err.details.extra_devices) };
}

/** The users a `mismatched_devices` answer names (their device lists are stale). */
export function mismatchedUsers(m: MismatchedDevices): string[] {
  return [...new Set([...m.missing, ...m.extra].map((d) => d.userId))];
}

/** Another device published an epoch first: sync and build on it. */
export const isEpochRace = (err: unknown): boolean => apiCode(err) === 'unexpected_epoch' || apiCode(err) === 'epoch_prev_hash_mismatch';
