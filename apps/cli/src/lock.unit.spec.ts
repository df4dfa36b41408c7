import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { ExitCode } from './errors.js';
import { bootId, isStale, lockProfile, parseHolder, startTime } from './lock.js';

const here = dirname(fileURLToPath(import.meta.url));

/** Runs lock.ts in a separate node process (through tsx), as separate bil processes would. */
function child(script: string, env: Record<string, string>) {
  const code = `const { lockProfile } = await import(${JSON.stringify(join(here, 'lock.ts'))});\n${script}`;
  const proc = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { cwd: here, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout.on('data', (c: Buffer) => (out += c));
  proc.stderr.on('data', (c: Buffer) => (out += c));
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code, signal) => resolve(code ?? (signal ? -1 : null))));
  return { proc, exited, output: () => out };
}

async function until(check: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const deadPid = () => Number(spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']).stdout.toString());

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

describe('stale locks', () => {
  it('a lock naming our own pid is stale: we do not hold it yet (containers reuse pids every run)', async () => {
    const path = tmp();
    await lockProfile(path, 'alice', 'send', 0).then((r) => r());
    writeFileSync(path, JSON.stringify({ pid: process.pid, command: 'listen', nonce: 'an earlier run' }));
    const release = await lockProfile(path, 'alice', 'send', 0);
    expect(parseHolder(readFileSync(path, 'utf8'))).toMatchObject({ pid: process.pid, command: 'send' });
    expect(parseHolder(readFileSync(path, 'utf8'))!.nonce).not.toBe('an earlier run');
    release();
    expect(existsSync(path)).toBe(false);
  });

  it('records a nonce, the boot id and the start time; only our own lock is released', async () => {
    const path = tmp();
    const release = await lockProfile(path, 'alice', 'send', 0);
    const h = parseHolder(readFileSync(path, 'utf8'))!;
    expect(h.nonce).toMatch(/^[0-9a-f]{24}$/);
    expect(h.boot).toBe(bootId());
    expect(h.start).toBe(startTime('self'));
    // Someone else's lock now (taken over while we were stopped, say): release leaves it.
    writeFileSync(path, JSON.stringify({ ...h, nonce: 'someone else' }));
    release();
    expect(existsSync(path)).toBe(true);
  });

  it.runIf(bootId() !== undefined)('a lock written before a reboot is stale even if its pid runs again', () => {
    expect(isStale({ pid: process.ppid, command: 'listen', boot: 'another-boot' })).toBe(true);
    expect(isStale({ pid: process.ppid, command: 'listen', boot: bootId()! })).toBe(false);
  });

  it.runIf(startTime('self') !== undefined)('a lock whose pid now belongs to a process started later is stale', () => {
    const real = startTime(process.ppid)!;
    expect(isStale({ pid: process.ppid, command: 'listen', start: String(Number(real) + 1) })).toBe(true);
    expect(isStale({ pid: process.ppid, command: 'listen', start: real })).toBe(false);
  });

  it('a waiter whose profile directory was removed (a failed register) recreates it and takes the lock', async () => {
    const path = tmp();
    await lockProfile(path, 'alice', 'register', 0).then((r) => r());
    writeFileSync(path, JSON.stringify({ pid: process.ppid, command: 'register' }));
    const waiting = lockProfile(path, 'alice', 'send', 5000);
    await new Promise((r) => setTimeout(r, 250));
    rmSync(dirname(path), { recursive: true, force: true });
    const release = await waiting;
    expect(parseHolder(readFileSync(path, 'utf8'))).toMatchObject({ pid: process.pid, command: 'send' });
    release();
  });

  it('two (four) processes taking over the same stale lock at once: exactly one wins', async () => {
    for (let round = 0; round < 2; round++) {
      const path = tmp();
      await lockProfile(path, 'alice', 'send', 0).then((r) => r());
      writeFileSync(path, JSON.stringify({ pid: deadPid(), command: 'listen' }));
      const startAt = String(Date.now() + 4000);
      const script = `
        const t = Number(process.env.START_AT);
        while (Date.now() < t) {}
        try {
          const release = await lockProfile(process.env.LOCK_PATH, 'alice', 'send', 300);
          process.stdout.write('won\\n');
          await new Promise((r) => setTimeout(r, 2000));
          release();
          process.exit(0);
        } catch (err) {
          process.stdout.write(String(err.code) + '\\n');
          process.exit(err.exitCode ?? 1);
        }`;
      const runs = Array.from({ length: 4 }, () => child(script, { LOCK_PATH: path, START_AT: startAt }));
      const codes = await Promise.all(runs.map((r) => r.exited));
      const outputs = runs.map((r) => r.output());
      expect(codes.filter((c) => c === 0), outputs.join('|')).toHaveLength(1);
      expect(codes.filter((c) => c === ExitCode.busy), outputs.join('|')).toHaveLength(3);
      expect(existsSync(path)).toBe(false);
      expect(existsSync(`${path}.takeover`)).toBe(false);
    }
  }, 60_000);
});

describe('signals release the lock', () => {
  const holdScript = `
    if (process.env.OWN_SIGINT) process.once('SIGINT', () => setTimeout(() => process.exit(0), 50));
    await lockProfile(process.env.LOCK_PATH, 'alice', 'listen', 0);
    process.stdout.write('locked\\n');
    setInterval(() => undefined, 1000);`;

  for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143], ['SIGHUP', 129]] as const) {
    it(`${signal}: lock removed, exit ${code}`, async () => {
      const path = tmp();
      const run = child(holdScript, { LOCK_PATH: path });
      await until(() => run.output().includes('locked'), 20_000, 'the child to take the lock');
      expect(existsSync(path)).toBe(true);
      run.proc.kill(signal);
      expect(await run.exited).toBe(code);
      expect(existsSync(path)).toBe(false);
    }, 30_000);
  }

  it('a command that handles Ctrl-C itself (listen) keeps its exit code; the lock goes on exit', async () => {
    const path = tmp();
    const run = child(holdScript, { LOCK_PATH: path, OWN_SIGINT: '1' });
    await until(() => run.output().includes('locked'), 20_000, 'the child to take the lock');
    run.proc.kill('SIGINT');
    expect(await run.exited).toBe(0);
    expect(existsSync(path)).toBe(false);
  }, 30_000);
});
