import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ExitCode } from './errors.js';
import { lockProfile } from './lock.js';

const dirs: string[] = [];
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), 'bil-lock-'));
  dirs.push(d);
  return join(d, 'p', 'lock');
};
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('one process per profile', () => {
  it('takes and releases the lock', async () => {
    const path = tmp();
    const release = await lockProfile(path, 'alice', 'send', 0);
    expect(existsSync(path)).toBe(true);
    release();
    expect(existsSync(path)).toBe(false);
  });

  it('gives up on a lock held by a live process with exit code 8, naming it', async () => {
    const path = tmp();
    const release = await lockProfile(path, 'alice', 'listen', 0);
    // Now held by a live process (our parent): a second taker waits, then gives up.
    writeFileSync(path, JSON.stringify({ pid: process.ppid, command: 'listen' }));
    const started = Date.now();
    await expect(lockProfile(path, 'alice', 'send', 300)).rejects.toMatchObject({ code: 'profile_busy', exitCode: ExitCode.busy, message: expect.stringContaining('bil listen') });
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
    release();
  });

  it('takes over a lock whose process is gone', async () => {
    const path = tmp();
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']).stdout.toString();
    await lockProfile(path, 'alice', 'send', 0).then((r) => r());
    writeFileSync(path, JSON.stringify({ pid: Number(dead), command: 'send' }));
    const release = await lockProfile(path, 'alice', 'send', 2000);
    release();
  });
});
