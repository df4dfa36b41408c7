// The library in a real browser: the built package (dist/, ESM) bundled by
// esbuild for the browser platform (no Node polyfills), served from a local
// node:http server and run in Debian's headless Chromium through
// playwright-core. The page runs device keys, certificates, direct messages in
// both suites, a group message, a sealed payload and a tamper rejection on its
// own WebCrypto; Node then opens a message the browser sent (wire compatibility).
//
// Chromium: /usr/bin/chromium (or CHROMIUM_PATH), installed by
// scripts/ci-browser.sh. Missing under CI=true is a failure; elsewhere the test
// is skipped with the reason.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { chromium, type BrowserContext } from 'playwright-core';
import { afterAll, describe, expect, it } from 'vitest';
import { verifyDevice, type DeviceRecord } from './certificate.js';
import { decryptDirectMessage } from './direct.js';
import type { DirectMessage } from './envelope.js';
import { fromUtf8, toBase64Url } from './encoding.js';
import { importDevicePrivateKeys } from './keys.js';
import { seed } from './testing/fixtures.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const IN_CI = process.env.CI === 'true' || process.env.CI === '1';
// The flags that work on these machines (no network: background services off).
const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

// What test/browser/page.ts takes and returns (kept here: that file imports
// dist/, which typecheck can't rely on).
interface RoundTripInput {
  readonly bobPkcs8: string;
  readonly bobSeed: string;
  readonly servicePkcs8: string;
}
interface RoundTripResult {
  readonly env: { hasProcess: boolean; hasBuffer: boolean; hasRequire: boolean; subtle: string; secureContext: boolean; userAgent: string };
  readonly generatedModulusBits: number;
  readonly direct: Record<string, string>;
  readonly group: Record<string, string>;
  readonly sealed: string;
  readonly tamper: { rejected: boolean; name: string; code: string; message: string };
  readonly forNode: { aliceRecord: DeviceRecord; message: DirectMessage };
  readonly ms: number;
}

const pkgDir = fileURLToPath(new URL('..', import.meta.url));
const srcDir = join(pkgDir, 'src');
const distDir = join(pkgDir, 'dist');

/** Builds dist/ (the package's own `build`) if it is missing or older than any shipped source file. */
function ensureBuilt(): void {
  const shipped = readdirSync(srcDir).filter((f) => f.endsWith('.ts') && !f.endsWith('.spec.ts'));
  const stale = shipped.some((f) => {
    const out = join(distDir, f.replace(/\.ts$/, '.js'));
    return !existsSync(out) || statSync(out).mtimeMs < statSync(join(srcDir, f)).mtimeMs;
  });
  if (stale) execFileSync(process.execPath, [join(pkgDir, '../../node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json'], { cwd: pkgDir, stdio: 'inherit' });
}

async function bundlePage(): Promise<string> {
  const result = await build({
    entryPoints: [join(pkgDir, 'test/browser/page.ts')],
    bundle: true,
    platform: 'browser',
    format: 'iife',
    target: 'es2022',
    write: false,
    logLevel: 'silent',
  });
  return result.outputFiles[0]!.text;
}

function serve(script: string): Promise<Server> {
  const html = '<!doctype html><meta charset="utf-8"><title>bil crypto</title><script src="/page.js"></script>';
  const server = createServer((req, res) => {
    if (req.url === '/') res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(html);
    else if (req.url === '/page.js') res.writeHead(200, { 'content-type': 'text/javascript; charset=utf-8' }).end(script);
    else res.writeHead(404).end();
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

const cleanup: (() => Promise<unknown> | void)[] = [];
afterAll(async () => {
  for (const fn of cleanup.reverse()) await fn();
});

describe('@bil/crypto in headless Chromium', () => {
  it('round trip on the browser WebCrypto against dist/, and Node opens what the browser sent', async (ctx) => {
    if (!existsSync(CHROMIUM)) {
      const reason = `chromium not found at ${CHROMIUM}: run scripts/ci-browser.sh (apt-get install chromium)`;
      if (IN_CI) throw new Error(reason);
      ctx.skip(reason);
    }
    ensureBuilt();
    const script = await bundlePage();
    expect(script).not.toMatch(/\bfrom\s*["']node:|require\(["'](crypto|buffer|fs)["']\)/);
    const server = await serve(script);
    cleanup.push(() => new Promise((r) => server.close(r)));
    const profile = mkdtempSync(join(tmpdir(), 'bil-chromium-'));
    cleanup.push(() => rmSync(profile, { recursive: true, force: true }));
    const context: BrowserContext = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_FLAGS,
      timeout: 30_000,
    });
    cleanup.push(() => context.close());

    const page = context.pages()[0] ?? (await context.newPage());
    const pageErrors: string[] = [];
    page.on('pageerror', (e) => pageErrors.push(e.message));
    const { port } = server.address() as AddressInfo;
    await page.goto(`http://127.0.0.1:${port}/`);
    await page.waitForFunction(() => typeof (globalThis as Record<string, unknown>).bilRoundTrip === 'function');

    const fixture = JSON.parse(readFileSync(join(pkgDir, 'test/fixtures/device-keys.json'), 'utf8')) as { rsa_pkcs8: string[] };
    const input: RoundTripInput = { bobPkcs8: fixture.rsa_pkcs8[1]!, bobSeed: toBase64Url(seed('browser-bob')), servicePkcs8: fixture.rsa_pkcs8[10]! };
    const result = await page.evaluate(
      (arg) => (globalThis as unknown as { bilRoundTrip: (i: RoundTripInput) => Promise<RoundTripResult> }).bilRoundTrip(arg),
      input,
    );

    expect(pageErrors).toEqual([]);
    expect(result.env).toMatchObject({ hasProcess: false, hasBuffer: false, hasRequire: false, subtle: '[object SubtleCrypto]', secureContext: true });
    expect(result.env.userAgent).toMatch(/Chrome\/\d+/);
    expect(result.generatedModulusBits).toBe(3072);
    expect(result.direct).toEqual({ 'aes-256-gcm': 'direct aes-256-gcm 🔐', 'chacha20-poly1305': 'direct chacha20-poly1305 🔐' });
    expect(result.group).toEqual({ 'aes-256-gcm': 'group aes-256-gcm', 'chacha20-poly1305': 'group chacha20-poly1305' });
    expect(result.sealed).toBe('sealed transcript');
    expect(result.tamper).toEqual({ rejected: true, name: 'CannotDecryptError', code: 'cannot_decrypt', message: 'cannot decrypt' });

    // Node, with the library's sources, opens the envelope the browser sealed to Bob.
    const bobKeys = await importDevicePrivateKeys({ version: 1, encryption_key_pkcs8: input.bobPkcs8, signing_key_seed: input.bobSeed });
    const { aliceRecord, message } = result.forNode;
    const opened = await decryptDirectMessage({
      envelope: message.envelope,
      wrappedKey: message.wrapped_keys[0]!,
      recipient: { userId: '00000000-0000-4000-8000-000000000002', deviceId: '00000000-0000-4000-8000-000000000015', keys: bobKeys },
      chatId: message.envelope.header.chat_id,
      sender: await verifyDevice(aliceRecord, aliceRecord.identity_key),
    });
    expect(fromUtf8(opened.plaintext)).toBe('direct aes-256-gcm 🔐');
  }, 60_000);
});
