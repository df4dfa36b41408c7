// The password-hashing queue of one identity process. scrypt costs ~32 MiB
// and 50-100 ms of a core per call, so an unbounded number at once lets a
// burst of logins starve everything (and grow memory). Here:
// - at most `concurrency` hashes run at once, at most `maxQueued` wait; a call
//   beyond that fails at once with 503 service_unavailable + retry_after_seconds
//   (the gateway sends Retry-After), instead of queueing into a timeout;
// - one account (the username or user id given as key) has at most
//   `perAccount` hashes queued or running: a flood aimed at one account cannot
//   fill the queue for everyone, and its surplus gets 429 rate_limited for about
//   a second; nothing is locked beyond the calls in flight;
// - a call whose caller has gone (the gRPC call was cancelled or its deadline
//   passed: the context's signal) is dropped from the queue unhashed, and work
//   that finished after the caller left is not used (see `ensureCallerWaiting`).
import { AppError, callSignal } from '@bil/runtime';

export interface HashQueueSettings {
  concurrency: number;
  maxQueued: number;
  perAccount: number;
}

export const DEFAULT_HASH_QUEUE: HashQueueSettings = { concurrency: 2, maxQueued: 32, perAccount: 2 };

interface Waiting {
  start: () => void;
  abandon: () => void;
}

export const callerGone = () => new AppError('deadline_exceeded', 'timeout', 'the caller gave up before the password check ran');

/** Throws when the current gRPC call was cancelled or passed its deadline: its result must not be saved. */
export function ensureCallerWaiting(): void {
  if (callSignal()?.aborted) throw callerGone();
}

export class HashQueue {
  private running = 0;
  private readonly waiting: Waiting[] = [];
  private readonly perKey = new Map<string, number>();

  constructor(private readonly settings: HashQueueSettings = DEFAULT_HASH_QUEUE) {}

  get stats(): { running: number; queued: number } {
    return { running: this.running, queued: this.waiting.length };
  }

  /** Runs `work` (one hash) in turn; `key` is the account it is for. */
  async run<T>(key: string, work: () => Promise<T>): Promise<T> {
    const signal = callSignal();
    if (signal?.aborted) throw callerGone();
    const held = this.perKey.get(key) ?? 0;
    if (held >= this.settings.perAccount) {
      throw new AppError('rate_limited', 'rate_limited', 'too many password checks for this account at once; retry shortly', { retry_after_seconds: 1 });
    }
    if (this.running >= this.settings.concurrency && this.waiting.length >= this.settings.maxQueued) {
      throw new AppError('unavailable', 'service_unavailable', 'password checks are at capacity; retry shortly', { retry_after_seconds: 1 });
    }
    this.perKey.set(key, held + 1);
    try {
      // A waiter is handed its slot by next() (running already counts it), so none is taken twice.
      if (this.running >= this.settings.concurrency) await this.wait(signal);
      else this.running++;
      try {
        return await work();
      } finally {
        this.running--;
        this.next();
      }
    } finally {
      const n = (this.perKey.get(key) ?? 1) - 1;
      if (n > 0) this.perKey.set(key, n);
      else this.perKey.delete(key);
    }
  }

  private wait(signal: AbortSignal | undefined): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const entry: Waiting = {
        start: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
        abandon: () => reject(callerGone()),
      };
      const onAbort = () => {
        const i = this.waiting.indexOf(entry);
        if (i >= 0) this.waiting.splice(i, 1);
        entry.abandon();
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiting.push(entry);
    });
  }

  private next(): void {
    if (this.running >= this.settings.concurrency) return;
    const w = this.waiting.shift();
    if (!w) return;
    this.running++;
    w.start();
  }
}
