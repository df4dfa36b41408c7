// One bil process per profile at a time. Two clients on one key store would
// both spend the same single-use refresh token (the server then ends the
// session) and overwrite each other's counters and replay state, so a second
// process waits for the first, then gives up with exit code 8.
import { mkdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { CliError, ExitCode } from './errors.js';

interface Holder {
  pid: number;
  command: string;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function readHolder(path: string): Holder | null {
  try {
    const h = JSON.parse(readFileSync(path, 'utf8')) as Partial<Holder>;
    return typeof h.pid === 'number' ? { pid: h.pid, command: String(h.command ?? '') } : null;
  } catch {
    return null;
  }
}

/**
 * Takes the profile's lock file, waiting up to `waitMs` for another process
 * to let go; a lock left by a process that no longer runs is taken over.
 * Returns the release function (also run on exit).
 */
export async function lockProfile(path: string, profile: string, command: string, waitMs: number): Promise<() => void> {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const start = Date.now();
  const deadline = start + waitMs;
  for (;;) {
    try {
      writeFileSync(path, JSON.stringify({ pid: process.pid, command }), { flag: 'wx', mode: 0o600 });
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const holder = readHolder(path);
    if (!holder || !alive(holder.pid)) {
      // The holder is gone; an unreadable file may be one being written this
      // instant, so it counts as stale only once it stays unreadable.
      if (holder || Date.now() - start > 500) {
        try {
          unlinkSync(path);
        } catch {
          // someone else cleaned it up
        }
      }
      await new Promise((r) => setTimeout(r, 50));
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
    await new Promise((r) => setTimeout(r, 100));
  }
  let released = false;
  const release = () => {
    if (released) return;
    released = true;
    process.off('exit', release);
    try {
      if (readHolder(path)?.pid === process.pid) unlinkSync(path);
    } catch {
      // already gone
    }
  };
  process.on('exit', release);
  return release;
}
