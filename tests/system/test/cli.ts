// Running the built `bil` as a user would: a separate process per command,
// with its own config directory, passphrase and password from the
// environment, stdout and stderr kept apart.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bilMain, run, type Run } from '@bil/testkit';

export interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface Cli {
  readonly configDir: string;
  /** Runs `bil args…` to the end (standard input: `input`, or empty). */
  (args: string[], options?: { env?: Record<string, string | undefined>; input?: string }): Promise<Result>;
  /** Starts `bil args…` and leaves it running (standard input stays open). */
  spawn(args: string[], options?: { env?: Record<string, string | undefined> }): Run;
  cleanup(): void;
}

export function cli(url: string, env: Record<string, string> = {}): Cli {
  const configDir = mkdtempSync(join(tmpdir(), 'bil-cli-'));
  const base = { BIL_URL: url, BIL_CONFIG_DIR: configDir, BIL_PASSPHRASE: 'a passphrase for my keys', BIL_PASSWORD: 'correct horse battery', NO_COLOR: undefined, BIL_PROFILE: undefined, ...env };
  const fn = async (args: string[], options: { env?: Record<string, string | undefined>; input?: string } = {}): Promise<Result> => {
    const r = run([bilMain, ...args], { ...base, ...options.env }, { input: options.input ?? '' });
    const code = await r.exited;
    return { code, stdout: r.stdout(), stderr: r.stderr() };
  };
  return Object.assign(fn, {
    configDir,
    spawn: (args: string[], options: { env?: Record<string, string | undefined> } = {}) => run([bilMain, ...args], { ...base, ...options.env }),
    cleanup: () => rmSync(configDir, { recursive: true, force: true }),
  });
}

/** `bil --profile <profile> args…`: the command line of one person's `bil` (profiles share the config directory). */
export const as = (profile: string, ...args: string[]): string[] => ['--profile', profile, ...args];

/** The JSON objects a `--json` listen wrote so far, one per line. */
export function events(r: Run): Record<string, unknown>[] {
  return r
    .stdout()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** No ANSI colour and no stack trace: what a script or a log sees. */
export const clean = (text: string): boolean => !text.includes('\u001b[') && !/\n\s+at .+:\d+:\d+/.test(text);
