// `npm run demo` (the README's second step) against the running system: it
// must finish, and show each thing it claims beside the server's ciphertext.
import { spawn } from 'node:child_process';
import { describe, expect, inject, it } from 'vitest';
import { freePort, repoRoot } from '@bil/testkit';

const url = inject('bilUrl');
// The config directory where the system's start.mjs wrote the digest key, as npm start writes the user's.
const configDir = inject('bilConfigDir');

function npmRunDemo(env: Record<string, string>): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn('npm', ['run', 'demo'], { cwd: repoRoot, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c));
    child.stderr.on('data', (c: Buffer) => (out += c));
    child.once('exit', (code) => resolve({ code, out }));
  });
}

describe('npm run demo', () => {
  it('runs every step and prints what people see beside what the server stores', async () => {
    const { code, out } = await npmRunDemo({ BIL_URL: url, BIL_CONFIG_DIR: configDir });
    expect(code, out).toBe(0);
    // The digest key from configuration, not from the server.
    expect(out).toMatch(new RegExp(`Digest service key (?:[0-9a-f]{4} ){7}[0-9a-f]{4} \\(fingerprint\\), from ${configDir}/servers\\.json`));
    expect(out).toMatch(/demo: OK in [\d.]+ s/);
    for (const step of ['1. Three people register', '2. Alice and Bob compare safety numbers', '3. A personal chat, delivered live', '4. A group', '5. Carol is removed', '6. Bob is away', "7. The same digest on Bob's device, beside the digest service's"]) {
      expect(out).toContain(step);
    }
    expect(out).toContain('what the server stores (ciphertext only)');
    // The two columns, each read as running text (lines wrap at the terminal's width).
    const rows = out.split('\n').filter((l) => l.includes('│'));
    const people = rows.map((l) => l.slice(0, l.indexOf('│')).trim()).join(' ');
    const server = rows.map((l) => l.slice(l.indexOf('│') + 1).trim()).join(' ');
    expect(people).toMatch(/bob's client decrypts it, live after \d+ ms/);
    expect(people).toContain('asking for the history gets 404 chat_not_found');
    expect(people).toContain("carol's client, handed the ciphertext anyway: cannot decrypt");
    expect(people).toContain('(built-in summariser)');
    expect(people).toContain('Topic:');
    // Before the first server digest Bob is told what leaves his device.
    expect(people).toContain('before the first server digest of this chat: "A server digest decrypts the unread messages on this device');
    // The on-device digest beside the server digest, each with what left the device.
    const compared = out.split('\n').filter((l) => l.includes('┆'));
    const onDevice = compared.map((l) => l.slice(0, l.indexOf('┆')).trim()).join(' ');
    const byService = compared.map((l) => l.slice(l.indexOf('┆') + 1).trim()).join(' ');
    expect(onDevice).toContain("on bob's device (on: 'device', built-in summariser)");
    expect(onDevice).toMatch(/left the device: nothing \(bob's client only fetched the \d+ envelopes/);
    expect(onDevice).toContain('Topic:');
    expect(byService).toContain("by the digest service (on: 'server', built-in summariser)");
    expect(byService).toMatch(/left the device: the transcript \(messages, names, title\), sealed to key (?:[0-9a-f]{4} ){7}[0-9a-f]{4}: the digest service's operator and its model provider can read it/);
    expect(byService).toContain('Topic:');
    expect(server).toContain('content key wrapped to 2 devices');
    expect(server).toMatch(/not carol's/);
    // Plaintext appears on the people's side only: the server's column shows ciphertext.
    expect(server).not.toMatch(/Lunch on Friday|brings the tent|surprise party|campsite/);
    // On a pipe: no colour.
    expect(out).not.toContain('\u001b[');
  }, 300_000);

  it('says clearly when no system runs there, and exits 1', async () => {
    const dead = `http://127.0.0.1:${await freePort()}`;
    const { code, out } = await npmRunDemo({ BIL_URL: dead });
    expect(code).toBe(1);
    expect(out).toContain(`demo: no bil-message system answers at ${dead}: start one with \`npm start\``);
    expect(out).not.toMatch(/\n\s+at .+:\d+:\d+/);
  }, 60_000);
});
