// `bil send --file` and `bil download` against the system npm start runs
// (test/global-setup.ts): a file encrypted and streamed up by one person,
// downloaded, decrypted and checked by the other.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { as, clean, cli, type Cli } from './cli.js';

const url = inject('bilUrl');
const tag = randomBytes(3).toString('hex');
const alice = `alice_f${tag}`;
const bob = `bob_f${tag}`;
let bil: Cli;
let dir: string;


beforeAll(() => {
  bil = cli(url);
  dir = mkdtempSync(join(tmpdir(), 'bil-files-'));
});

afterAll(() => {
  bil?.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

describe('bil send --file, bil download', () => {
  it('a file goes from alice to bob encrypted, and comes out the same', async () => {
    for (const [profile, name] of [['alice', alice], ['bob', bob]] as const) {
      const r = await bil(as(profile, 'register', name));
      expect(r.code, r.stderr).toBe(0);
    }
    expect((await bil(as('alice', 'chat', 'create', '--personal', bob))).code).toBe(0);
    const content = randomBytes(300 * 1024 + 7);
    const path = join(dir, 'report.pdf');
    writeFileSync(path, content);

    const sent = await bil(as('alice', 'send', `@${bob}`, '--file', path, 'the report'));
    expect(sent.code, sent.stderr).toBe(0);
    expect(sent.stdout).toContain('Sent report.pdf (307207 bytes)');
    expect(clean(sent.stdout + sent.stderr)).toBe(true);

    const history = await bil(as('bob', '--json', 'history', `@${alice}`));
    expect(history.code, history.stderr).toBe(0);
    const [message] = JSON.parse(history.stdout).messages as Array<{ messageId: string; text: string; attachments: Array<{ name: string; mime: string; size: number }> }>;
    expect(message).toMatchObject({ text: 'the report', attachments: [{ name: 'report.pdf', mime: 'application/pdf', size: content.length }] });
    expect((await bil(as('bob', 'history', `@${alice}`))).stdout).toContain('[file report.pdf, 307207 bytes]');

    const out = join(dir, 'got.pdf');
    const got = await bil(as('bob', 'download', `@${alice}`, message!.messageId, '--out', out));
    expect(got.code, got.stderr).toBe(0);
    expect(got.stdout).toContain('digest checked');
    expect(readFileSync(out).equals(content)).toBe(true);
    expect(existsSync(`${out}.part`)).toBe(false);

    // A message without attachments, and an unknown message: usage errors, nothing written.
    const none = await bil(as('bob', 'download', `@${alice}`, '00000000-0000-7000-8000-000000000000'));
    expect(none.code).not.toBe(0);
    expect(none.stderr).toContain('no message');
  }, 180_000);
});
