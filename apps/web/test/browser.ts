// What the browser suites share: Debian's Chromium (installed by
// scripts/ci-browser.sh when missing) driven by playwright-core, one fresh
// user-data directory per person, the real system on free ports with a
// private database, Redis prefix and NATS prefix (as tests/system does),
// axe-core on a screen, screenshots, and the steps every story starts with
// (register, send).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { expect } from 'vitest';
import { createTestEnv, freePorts, repoRoot, startSystem, stopSystem, systemEnv, testSettings, type TestEnv } from '@bil/testkit';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const CHROMIUM_FLAGS = ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'];
// Every run saves the screenshots under .test-results/screenshots; with UPDATE_SCREENSHOTS=1 also into
// screenshots/ (committed, shown in the README), so a plain test run leaves the working tree clean.
const SHOT_DIRS = [fileURLToPath(new URL('../.test-results/screenshots', import.meta.url)), ...(process.env.UPDATE_SCREENSHOTS === '1' ? [fileURLToPath(new URL('../screenshots', import.meta.url))] : [])];
const AXE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

/** Chromium, installed by scripts/ci-browser.sh when missing; a reason to skip only when that fails. */
function ensureChromium(): string | null {
  if (existsSync(CHROMIUM)) return null;
  const r = spawnSync('bash', [join(repoRoot, 'scripts/ci-browser.sh')], { stdio: 'inherit' });
  if (existsSync(CHROMIUM)) return null;
  return `chromium is not at ${CHROMIUM} and scripts/ci-browser.sh could not install it (exit ${r.status}): the web client's browser tests did not run`;
}

/** Why the browser suites can't run here, or null. */
export const skipReason = ensureChromium();
/** Makes this run's usernames unique. */
export const run = Date.now().toString(36);

export interface Person {
  name: string;
  username: string;
  password: string;
  passphrase: string;
  /** The page's origin and path, e.g. http://127.0.0.1:1234/ (the gateway, or a proxy in front of it). */
  url: string;
  context: BrowserContext;
  page: Page;
  /** Console errors about the Content-Security-Policy, page errors. */
  problems: string[];
  /** Bodies of every request the page sent. */
  bodies: string[];
}

const cleanup: (() => Promise<unknown> | unknown)[] = [];

/** Runs `fn` when `closeAll` runs (newest first). */
export function onClose(fn: () => Promise<unknown> | unknown): void {
  cleanup.push(fn);
}

/** Closes every browser (and whatever else `onClose` was given), newest first. */
export async function closeAll(): Promise<void> {
  for (const fn of cleanup.splice(0).reverse()) await fn();
}

/** A person with a fresh browser (own user-data directory) that opens `url`. */
export async function person(name: string, url: string, o: { viewport?: { width: number; height: number }; args?: string[] } = {}): Promise<Person> {
  const dir = mkdtempSync(join(tmpdir(), `bil-web-${name}-`));
  const context = await chromium.launchPersistentContext(dir, { executablePath: CHROMIUM, headless: true, args: [...CHROMIUM_FLAGS, ...(o.args ?? [])], viewport: o.viewport ?? { width: 1200, height: 800 }, timeout: 60_000 });
  onClose(async () => {
    await context.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const page = context.pages()[0] ?? (await context.newPage());
  const p: Person = { name, username: `${name}-${run}`, password: `${name} correct horse battery`, passphrase: `${name}'s browser passphrase`, url, context, page, problems: [], bodies: [] };
  page.on('console', (m) => {
    if (m.type() === 'error' && /Content Security Policy|Refused to/i.test(m.text())) p.problems.push(`csp: ${m.text()}`);
  });
  page.on('pageerror', (e) => p.problems.push(`page error: ${e.message}`));
  page.on('request', (r) => {
    const body = r.postData();
    if (body) p.bodies.push(body);
  });
  return p;
}

/** axe-core in the page; fails on serious or critical violations. */
export async function axe(page: Page, screen: string): Promise<void> {
  // evaluate() goes through the DevTools protocol, not a <script> tag, so the page's CSP stays as served.
  await page.evaluate(`${AXE}\n;0`);
  const violations = (await page.evaluate(`axe.run(document, { resultTypes: ['violations'] }).then((r) => r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => n.target.join(' ')) })))`)) as {
    id: string;
    impact: string;
    help: string;
    nodes: string[];
  }[];
  const bad = violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  expect(bad, `axe on the ${screen} screen`).toEqual([]);
}

export async function shot(page: Page, name: string): Promise<void> {
  const png = await page.screenshot();
  for (const dir of SHOT_DIRS) {
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, `${name}.png`), png);
  }
}

/** Fills the registration form (with the keyboard only, if asked) and waits for the live connection. */
export async function register(p: Person, { keyboard = false } = {}): Promise<void> {
  await p.page.goto(p.url);
  await p.page.getByRole('heading', { name: 'Create an account' }).waitFor();
  if (keyboard) {
    // Keyboard only: the username field has the focus; Tab moves through the form, Enter submits.
    await expect(p.page.evaluate('document.activeElement.id')).resolves.toBe('reg-username');
    for (const text of [p.username, p.password, p.passphrase, p.passphrase]) {
      await p.page.keyboard.type(text);
      await p.page.keyboard.press('Tab');
    }
    await expect(p.page.evaluate('document.activeElement.textContent')).resolves.toBe('Create account');
    await p.page.keyboard.press('Enter');
  } else {
    await p.page.getByLabel('Username').fill(p.username);
    await p.page.getByLabel('Password', { exact: true }).fill(p.password);
    await p.page.getByLabel('Passphrase for this browser').fill(p.passphrase);
    await p.page.getByLabel('Passphrase again').fill(p.passphrase);
    await p.page.getByRole('button', { name: 'Create account' }).click();
  }
  await p.page.getByRole('status').filter({ hasText: 'Connected' }).waitFor({ timeout: 60_000 });
}

/** Reloads the page and unlocks it with the person's passphrase. */
export async function reopen(p: Person): Promise<void> {
  await p.page.goto(p.url);
  await p.page.getByLabel('Passphrase').fill(p.passphrase);
  await p.page.getByRole('button', { name: 'Unlock' }).click();
  await p.page.getByRole('status').filter({ hasText: 'Connected' }).waitFor({ timeout: 60_000 });
}

export async function send(p: Person, text: string): Promise<void> {
  const box = p.page.getByLabel(/^Message to /);
  await box.fill(text);
  await box.press('Enter');
  await p.page.locator('.message.mine', { hasText: text }).waitFor();
}

export interface WebSystem {
  /** The gateway's base URL with a trailing slash (it serves the app at /). */
  readonly url: string;
  readonly env: TestEnv;
  /** The services' ports (metrics included). */
  readonly ports: Awaited<ReturnType<typeof freePorts>>;
  stop(): Promise<void>;
}

/** The real system (scripts/start.mjs) on free ports, its own database, Redis prefix and NATS prefix; `extra` adds settings. */
export async function startWebSystem(name: string, extra: (ports: Awaited<ReturnType<typeof freePorts>>) => Record<string, string> | Promise<Record<string, string>> = () => ({})): Promise<WebSystem> {
  const env = await createTestEnv(name);
  const ports = await freePorts();
  let system: Awaited<ReturnType<typeof startSystem>>;
  try {
    system = await startSystem({ ...systemEnv(env, ports), ...testSettings({ perIp: 1000, perUsername: 100 }), ...(await extra(ports)) });
  } catch (err) {
    await env.cleanup();
    throw err;
  }
  return {
    url: `http://127.0.0.1:${ports.BIL_GATEWAY_PORT}/`,
    env,
    ports,
    stop: async () => {
      const code = await stopSystem(system);
      if (code !== 0) process.stderr.write(`the system stopped with ${code}:\n${system.output().slice(-4000)}\n`);
      await env.cleanup();
    },
  };
}
