// One bil process per profile at a time. Two clients on one key store would
// both spend the same single-use refresh token (the server then ends the
// session) and overwrite each other's counters and replay state, so a second
// process waits for the first, then gives up with exit code 8.
//
// The lock file names its holder: pid, a random nonce, the boot id and the
// process start time (Linux), so a lock left behind is recognised as stale even
// when its pid is in use again (after a reboot, or in a container where every
// run is pid 1 or 7). Taking over a stale lock happens under a short-lived
// second lock (`lock.takeover`) and only if the lock file still holds exactly
// what was judged stale, so two waiters can't both take it.
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { CliError, ExitCode } from './errors.js';

export interface Holder {
  pid: number;
  command: string;
  /** Random per lock: tells our lock from one a previous process with the same pid left. */
  nonce?: string;
  /** /proc/sys/kernel/random/boot_id when the lock was taken. */
  boot?: string;
  /** The holder's start time (clock ticks since boot, /proc/<pid>/stat field 22). */
  start?: string;
}

/** Exit codes after a signal: 128 + its number, as shells report them. */
export const SIGNAL_EXIT: Readonly<Record<'SIGINT' | 'SIGTERM' | 'SIGHUP', number>> = { SIGINT: 130, SIGTERM: 143, SIGHUP: 129 };

/** A takeover lock older than this was left by a process that died while taking over (which takes milliseconds). */
const TAKEOVER_STALE_MS = 10_000;
const UNREADABLE_GRACE_MS = 500;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function readText(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

/** This boot's id (Linux), to tell locks written before a reboot. */
export function bootId(): string | undefined {
  return readText('/proc/sys/kernel/random/boot_id')?.trim() || undefined;
}

/** When a process started (Linux: clock ticks since boot), to tell a reused pid. */
export function startTime(pid: number | 'self'): string | undefined {
  const stat = readText(`/proc/${pid}/stat`);
  if (!stat) return undefined;
  // "pid (comm) state ppid …": comm may hold spaces and parentheses; field 22 is the 20th after it.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return fields[19] || undefined;
}

export function parseHolder(text: string): Holder | null {
  try {
    const h = JSON.parse(text) as Partial<Holder> | null;
    if (!h || typeof h.pid !== 'number') return null;
    const str = (v: unknown) => (typeof v === 'string' && v ? v : undefined);
    const holder: Holder = { pid: h.pid, command: String(h.command ?? '') };
    const nonce = str(h.nonce);
    const boot = str(h.boot);
    const start = str(h.start);
    if (nonce) holder.nonce = nonce;
    if (boot) holder.boot = boot;
    if (start) holder.start = start;
    return holder;
  } catch {
    return null;
  }
}

/** Whether a lock's holder is gone. Called before we hold the lock, so a holder with our own pid is a previous run. */
export function isStale(h: Holder, self: { pid: number; boot: string | undefined } = { pid: process.pid, boot: bootId() }): boolean {
  if (h.pid === self.pid) return true;
  if (h.boot && self.boot && h.boot !== self.boot) return true;
  if (!alive(h.pid)) return true;
  if (h.start) {
    const now = startTime(h.pid);
    if (now !== undefined && now !== h.start) return true;
  }
  return false;
}

/** Creates the lock file if there is none; recreates the profile directory if it went away meanwhile. */
function create(path: string, content: string): boolean {
  for (let i = 0; ; i++) {
    try {
      writeFileSync(path, content, { flag: 'wx', mode: 0o600 });
      return true;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EEXIST') return false;
      // A failed register or link removes its empty profile directory, lock included.
      if (code !== 'ENOENT' || i >= 5) throw err;
      mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    }
  }
}

/**
 * Replaces the stale lock whose content was `staleText` by ours, atomically
 * with respect to other waiters: under the takeover lock, and only if the
 * file still holds `staleText` (another waiter may have taken it over
 * already: its lock is live and stays).
 */
function takeOver(path: string, staleText: string, content: string): boolean {
  const guard = `${path}.takeover`;
  try {
    writeFileSync(guard, content, { flag: 'wx', mode: 0o600 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
      const g = readText(guard);
      const holder = g === undefined ? null : parseHolder(g);
      let old = false;
      try {
        old = Date.now() - statSync(guard).mtimeMs > TAKEOVER_STALE_MS;
      } catch {
        // gone already
      }
      if ((holder && isStale(holder)) || old) {
        try {
          if (readText(guard) === g) unlinkSync(guard);
        } catch {
          // someone else cleaned it up
        }
      }
    }
    return false;
  }
  try {
    if (readText(path) !== staleText) return false;
    unlinkSync(path);
    return create(path, content);
  } catch {
    return false;
  } finally {
    try {
      unlinkSync(guard);
    } catch {
      // already gone
    }
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface LockOptions {
  /** Runs after the lock is released on SIGINT, SIGTERM or SIGHUP, just before the process exits (synchronous). */
  onSignal?: () => void;
}

/**
 * Takes the profile's lock file, waiting up to `waitMs` for another process
 * to let go; a lock left by a process that no longer runs is taken over.
 * Returns the release function, also run on exit and on SIGINT, SIGTERM and
 * SIGHUP (then the process exits 130, 143 or 129), unless another handler
 * of that signal is installed (`listen` stops cleanly on Ctrl-C): the lock
 * then goes on exit.
 */
export async function lockProfile(path: string, profile: string, command: string, waitMs: number, options: LockOptions = {}): Promise<() => void> {
  const me: Holder = { pid: process.pid, command, nonce: randomBytes(12).toString('hex') };
  const boot = bootId();
  const start = startTime('self');
  if (boot) me.boot = boot;
  if (start) me.start = start;
  const content = JSON.stringify(me);
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const began = Date.now();
  const deadline = began + waitMs;
  for (;;) {
    if (create(path, content)) break;
    const text = readText(path);
    if (text === undefined) {
      await sleep(5); // released this instant: try again
      continue;
    }
    const holder = parseHolder(text);
    // An unreadable file may be one being written this instant, so it counts
    // as stale only once it stays unreadable.
    if (!holder || isStale(holder)) {
      if ((holder || Date.now() - began > UNREADABLE_GRACE_MS) && takeOver(path, text, content)) break;
      await sleep(20 + Math.random() * 40);
      continue;
    }
    if (Date.now() >= deadline) {
      throw new CliError(
        'profile_busy',
        `profile "${profile}" is in use by another bil process (pid ${holder.pid}${holder.command ? `, bil ${holder.command}` : ''})`,
        ExitCode.busy,
        'one bil process per profile at a time: wait for it, or use another profile (bil device link adds this account on a second profile)',
      );
    }
    await sleep(100);
  }

  let released = false;
  const handlers: [NodeJS.Signals, () => void][] = [];
  const release = () => {
    if (released) return;
    released = true;
    process.off('exit', release);
    for (const [signal, handler] of handlers) process.off(signal, handler);
    try {
      if (readText(path) === content) unlinkSync(path);
    } catch {
      // already gone
    }
  };
  for (const [signal, code] of Object.entries(SIGNAL_EXIT) as [NodeJS.Signals, number][]) {
    const handler = () => {
      // Someone else handles this signal (e.g. listen's Ctrl-C): it ends the process, and the lock goes on exit.
      if (process.listenerCount(signal) > 1) return;
      release();
      try {
        options.onSignal?.();
      } finally {
        process.exit(code);
      }
    };
    handlers.push([signal, handler]);
    // First in line, so that it still sees the other handlers (a `once` one removes itself before it runs).
    process.prependListener(signal, handler);
  }
  process.on('exit', release);
  return release;
}
