import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { buildProgram, run, type Invocation } from './program.js';
import { ExitCode } from './errors.js';

let out = '';
let err = '';

beforeEach(() => {
  out = '';
  err = '';
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => ((out += String(chunk)), true));
  vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => ((err += String(chunk)), true));
});

afterEach(() => {
  vi.restoreAllMocks();
});

/** Parses a command line with the real command tree and records what would run. */
async function parse(...argv: string[]): Promise<{ code: number; inv: Invocation | undefined }> {
  let inv: Invocation | undefined;
  const code = await run(argv, async (i) => {
    inv = i;
  });
  return { code, inv };
}

describe('argument parsing', () => {
  it('reads global options before and after the command', async () => {
    const a = await parse('--profile', 'alice', '--json', 'send', '@bob', 'hello', 'there');
    expect(a.code).toBe(0);
    expect(a.inv).toMatchObject({ name: 'send', args: ['@bob', ['hello', 'there']], globals: { profile: 'alice', json: true, color: true } });
    const b = await parse('send', 'Weekend', 'hi', '-p', 'bob', '--url', 'http://h:1', '--no-color');
    expect(b.inv).toMatchObject({ name: 'send', args: ['Weekend', ['hi']], globals: { profile: 'bob', url: 'http://h:1', color: false } });
  });

  it('passes no text when send reads standard input', async () => {
    expect((await parse('send', '@bob')).inv?.args).toEqual(['@bob', []]);
    expect((await parse('send', '@bob', '-')).inv?.args).toEqual(['@bob', ['-']]);
    expect((await parse('send', '@bob', '--lines')).inv?.options).toEqual({ lines: true });
  });

  it('parses each command group', async () => {
    expect((await parse('chat', 'create', '--group', 'Trip', '--members', 'bob,carol', 'dave')).inv).toMatchObject({
      name: 'chat create',
      options: { group: 'Trip', members: ['bob,carol', 'dave'] },
    });
    expect((await parse('chat', 'create', '--personal', 'bob')).inv?.options).toEqual({ personal: 'bob' });
    expect((await parse('chat', 'remove', 'Trip', 'carol')).inv).toMatchObject({ name: 'chat remove', args: ['Trip', 'carol'] });
    expect((await parse('chat', 'add', 'Trip', 'dave', 'erin', '--admin')).inv).toMatchObject({ args: ['Trip', ['dave', 'erin']], options: { admin: true } });
    expect((await parse('history', 'Trip', '-n', '5', '--no-mark-read')).inv?.options).toEqual({ limit: '5', markRead: false });
    expect((await parse('listen', '--count', '2', '--timeout', '30', '--no-receipts')).inv?.options).toEqual({ count: '2', timeout: '30', receipts: false });
    expect((await parse('digest', 'Trip', '@bob')).inv).toMatchObject({ name: 'digest', args: [['Trip', '@bob']] });
    expect((await parse('chat', 'digests', 'Trip', 'off')).inv).toMatchObject({ name: 'chat digests', args: ['Trip', 'off'] });
    expect((await parse('device', 'add', '-', '--no-share-identity-key')).inv).toMatchObject({ name: 'device add', args: ['-'], options: { shareIdentityKey: false } });
    expect((await parse('device', 'revoke', 'abcd1234', '--yes')).inv).toMatchObject({ args: ['abcd1234'], options: { yes: true } });
    expect((await parse('contacts', 'verify', 'bob', '--digits', '12345 67890')).inv).toMatchObject({ args: ['bob'], options: { digits: '12345 67890' } });
    expect((await parse('register', 'alice', '--display-name', 'Alice A.')).inv).toMatchObject({ args: ['alice'], options: { displayName: 'Alice A.' } });
  });

  it('parses replies, reactions, edits and delete --for-me', async () => {
    expect((await parse('send', '@bob', 'yes', '--reply', '12')).inv).toMatchObject({ name: 'send', args: ['@bob', ['yes']], options: { reply: '12' } });
    expect((await parse('react', 'Trip', '12', '👍', '--remove')).inv).toMatchObject({ name: 'react', args: ['Trip', '12', '👍'], options: { remove: true } });
    expect((await parse('edit', 'Trip', '12', 'lunch', 'at', 'one?')).inv).toMatchObject({ name: 'edit', args: ['Trip', '12', ['lunch', 'at', 'one?']] });
    expect((await parse('delete', 'Trip', '12', '--for-me')).inv).toMatchObject({ name: 'delete', args: ['Trip', '12'], options: { forMe: true } });
    expect((await parse('delete', 'Trip', '12')).inv).toMatchObject({ name: 'delete', options: {} });
  });

  it('parses the digest command, its modes and its subcommands', async () => {
    expect((await parse('digest')).inv).toMatchObject({ name: 'digest', args: [[]], options: {} });
    expect((await parse('digest', 'Trip', '--on-device', '--min-unread', '5')).inv).toMatchObject({ name: 'digest', args: [['Trip']], options: { onDevice: true, minUnread: '5' } });
    expect((await parse('digest', '--model', 'llama3', '--model-url', 'http://127.0.0.1:11434/v1', '--yes')).inv?.options).toEqual({ model: 'llama3', modelUrl: 'http://127.0.0.1:11434/v1', yes: true });
    expect((await parse('digest', '--resume', 'abc', '--timeout', '30')).inv?.options).toEqual({ resume: 'abc', timeout: '30' });
    expect((await parse('--json', 'digest', '--digest-key', 'K')).inv).toMatchObject({ options: { digestKey: 'K' }, globals: { json: true } });
    expect((await parse('digest', 'key')).inv).toMatchObject({ name: 'digest key show', args: [] });
    expect((await parse('digest', 'key', 'show')).inv).toMatchObject({ name: 'digest key show' });
    expect((await parse('digest', 'key', 'show', '--digest-key', 'K')).inv).toMatchObject({ name: 'digest key show', options: { digestKey: 'K' } });
    expect((await parse('digest', 'key', 'set', 'abc')).inv).toMatchObject({ name: 'digest key set', args: ['abc'] });
    expect((await parse('digest', 'consent', 'Trip', 'exclude')).inv).toMatchObject({ name: 'digest consent', args: ['Trip', 'exclude'] });
    for (const argv of [['digest', 'consent', 'Trip', 'maybe'], ['chat', 'digests', 'Trip'], ['chat', 'digests', 'Trip', 'yes'], ['digest', 'key', 'set']]) {
      const r = await parse(...argv);
      expect(r.code, argv.join(' ')).toBe(ExitCode.usage);
      expect(r.inv).toBeUndefined();
    }
    // The model API key is never a flag.
    expect((await parse('digest', '--model', 'm', '--model-api-key', 'sk-x')).code).toBe(ExitCode.usage);
  });

  it('answers usage errors with exit code 2 and a hint, nothing run', async () => {
    for (const argv of [['send'], ['bogus'], ['chat', 'list', '--type', 'channel'], ['history', 'x', '--frobnicate'], ['register']]) {
      const r = await parse(...argv);
      expect(r.code, argv.join(' ')).toBe(ExitCode.usage);
      expect(r.inv).toBeUndefined();
    }
    expect(err).toContain("bil: missing required argument 'chat'");
    expect(err).toContain('(add --help for usage)');
    expect(err).not.toMatch(/\n\s+at /);
  });

  it('has --help on every command, exit code 0', async () => {
    const program = buildProgram({ code: 0, app: undefined });
    const paths: string[][] = [[]];
    for (const c of program.commands) {
      paths.push([c.name()]);
      for (const sub of c.commands) paths.push([c.name(), sub.name()]);
    }
    expect(paths.length).toBeGreaterThan(20);
    for (const p of paths) {
      out = '';
      expect(await parse(...p, '--help'), p.join(' ')).toMatchObject({ code: 0, inv: undefined });
      expect(out, p.join(' ')).toContain(`Usage: bil${p.length ? ` ${p.join(' ')}` : ''}`);
    }
  });

  it('lists the exit codes and environment in the main help', async () => {
    await parse('--help');
    expect(out).toContain('Exit codes:');
    expect(out).toContain('BIL_PASSPHRASE');
    expect(out).toContain('6  server unreachable');
  });

  it('reports a bad --url or profile name as a usage error, without a stack trace', async () => {
    const saved = process.env.BIL_CONFIG_DIR;
    process.env.BIL_CONFIG_DIR = '/nonexistent/bil-test';
    try {
      expect(await run(['--url', 'ftp://x', 'whoami'])).toBe(ExitCode.usage);
      expect(err).toContain('bil: invalid server URL "ftp://x": expected http:// or https:// [usage]');
      expect(await run(['--profile', '../x', 'whoami'])).toBe(ExitCode.usage);
      expect(err).toContain('invalid profile name "../x"');
      expect(err).not.toMatch(/\n\s+at /);
    } finally {
      if (saved === undefined) delete process.env.BIL_CONFIG_DIR;
      else process.env.BIL_CONFIG_DIR = saved;
    }
  });

  it('prints the version', async () => {
    expect((await parse('--version')).code).toBe(0);
    expect(out.trim()).toMatch(/^\d+\.\d+\.\d+$/);
  });
});
