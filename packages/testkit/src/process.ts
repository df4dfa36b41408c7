// A built Node program (a service's dist/main.js) as a child process of a test:
// started with only PATH and the given environment, ready once it logs a line,
// stopped with SIGTERM (SIGKILL after 10 s).
import { spawn, type ChildProcess } from 'node:child_process';

export interface NodeProcess {
  child: ChildProcess;
  /** Everything it wrote to stdout and stderr so far. */
  output(): string;
  stop(): Promise<void>;
}

export async function spawnNode(
  name: string,
  main: string,
  opts: {
    env: Record<string, string>;
    ready: string;
    timeoutMs: number;
    args?: string[];
    /** Node's own flags, before `main`. */
    nodeArgs?: string[];
    /** SIGKILL this long after a stop's SIGTERM (default 10 s). */
    killAfterMs?: number;
  },
): Promise<NodeProcess> {
  const child: ChildProcess = spawn(process.execPath, [...(opts.nodeArgs ?? []), main, ...(opts.args ?? [])], {
    env: { PATH: process.env.PATH ?? '', ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${name} did not log "${opts.ready}" in ${opts.timeoutMs} ms:\n${out}`));
    }, opts.timeoutMs);
    const onExit = (code: number | null) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited with ${code} before it was ready:\n${out}`));
    };
    child.once('exit', onExit);
    const check = () => {
      if (!out.includes(opts.ready)) return;
      clearTimeout(timer);
      child.off('exit', onExit);
      child.stdout?.off('data', check);
      resolve();
    };
    child.stdout?.on('data', check);
  });
  return {
    child,
    output: () => out,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        const kill = setTimeout(() => child.kill('SIGKILL'), opts.killAfterMs ?? 10_000);
        child.once('exit', () => {
          clearTimeout(kill);
          resolve();
        });
        child.kill('SIGTERM');
      }),
  };
}
