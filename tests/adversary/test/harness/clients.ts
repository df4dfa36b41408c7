// The victims: real SDK clients (`@bil/sdk/node`, in memory) and the real
// CLI (`node apps/cli/dist/main.js`, one process per command), both pointed
// at the malicious gateway. Plus the little bits tests share: path patterns
// of the routes attacks rewrite, the chat service's device directory, and the
// crypto a colluding insider (a member's stolen keys) would use.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { inject } from 'vitest';
import { importDevicePrivateKeys, type LocalDevice } from '@bil/crypto';
import { BilClient, BilError, MemoryKeyStore, type HistoryMessage, type LiveClient, type LiveClientEvents, type LocalAccount } from '@bil/sdk/node';
import { bilMain, run, waitUntil, type Run } from '@bil/testkit';
import type { Json } from './proxy.js';

export const PASSWORD = 'correct horse battery staple';

export interface Person {
  readonly name: string;
  readonly client: BilClient;
  readonly store: MemoryKeyStore;
  readonly account: LocalAccount;
  readonly userId: string;
  readonly deviceId: string;
  /** This device's private keys, as the crypto package takes them (what a thief of the device holds). */
  local(): Promise<LocalDevice>;
}

const unique = (prefix: string) => `${prefix}_${randomBytes(4).toString('hex')}`;

function person(name: string, client: BilClient, store: MemoryKeyStore, account: LocalAccount): Person {
  return {
    name,
    client,
    store,
    account,
    userId: account.userId,
    deviceId: account.deviceId,
    local: async () => {
      const profile = (await store.load())!;
      return { userId: profile.userId, deviceId: profile.deviceId, keys: await importDevicePrivateKeys(profile.deviceKeys) };
    },
  };
}

/** Registers a new account and its first device through `baseUrl` (the proxy). */
export async function register(baseUrl: string, name: string): Promise<Person> {
  const store = new MemoryKeyStore();
  const client = new BilClient({ baseUrl, keyStore: store });
  const account = await client.register({ username: unique(name), password: PASSWORD, deviceName: `${name}-laptop` });
  return person(name, client, store, account);
}

/** Registers several people at once and waits until the chat service knows their devices. */
export async function registerAll<N extends string[]>(baseUrl: string, ...names: N): Promise<{ [K in keyof N]: Person }> {
  const people = await Promise.all(names.map((n) => register(baseUrl, n)));
  await chatKnowsDevices(inject('databaseUrl'), people.map((p) => p.deviceId));
  return people as { [K in keyof N]: Person };
}

/** A second device of `first`'s account (linked, sharing the identity key as the SDK does by default). */
export async function link(baseUrl: string, first: Person, deviceName: string): Promise<Person> {
  const store = new MemoryKeyStore();
  const client = new BilClient({ baseUrl, keyStore: store });
  const request = await client.devices.linkRequest({ deviceName });
  const approval = await first.client.devices.approveLink(request);
  const account = await client.devices.completeLink({ approval, password: PASSWORD });
  return person(`${first.name}-${deviceName}`, client, store, account);
}

/** The same device (its key store) in a fresh client: what an app restart gives. */
export function restart(p: Person, baseUrl: string): Person {
  return person(p.name, new BilClient({ baseUrl, keyStore: p.store }), p.store, p.account);
}

/** Waits until the chat service's device directory (fed by identity's events) lists every device with `status`. */
export async function chatKnowsDevices(databaseUrl: string, deviceIds: string[], status: 'active' | 'revoked' = 'active'): Promise<void> {
  const db = new pg.Client({ connectionString: databaseUrl });
  await db.connect();
  try {
    await waitUntil(`the chat service to see ${deviceIds.length} devices ${status}`, async () => {
      const { rows } = await db.query<{ n: string }>('SELECT count(*) AS n FROM chat.directory_devices WHERE device_id = ANY($1::uuid[]) AND status = $2', [deviceIds, status]);
      return Number(rows[0]!.n) === deviceIds.length;
    });
  } finally {
    await db.end();
  }
}

/** A live connection (client.live()) and everything it emitted, in order. */
export class Watch {
  readonly events: { type: keyof LiveClientEvents; e: unknown }[] = [];
  constructor(readonly live: LiveClient) {
    const types = ['message', 'undecryptable', 'gap', 'synced', 'epoch', 'membership', 'safety-number-changed', 'disconnected', 'error'] as const;
    for (const type of types) live.on(type, (e: unknown) => this.events.push({ type, e }));
  }
  of<K extends keyof LiveClientEvents>(type: K): LiveClientEvents[K][] {
    return this.events.filter((x) => x.type === type).map((x) => x.e as LiveClientEvents[K]);
  }
  until(what: string, cond: () => boolean, timeoutMs = 20_000): Promise<true> {
    return waitUntil(`${what} (live events so far: ${this.events.map((x) => x.type).join(', ') || 'none'})`, () => cond() || undefined, timeoutMs, 20);
  }
}

/** Opens a person's live connection and waits for the catch-up to finish. */
export async function goLive(p: Person): Promise<Watch> {
  const w = new Watch(p.client.live({ initialBackoffMs: 100, maxBackoffMs: 1000, ackDelayMs: 20 }));
  await w.until('synced', () => w.of('synced').length > 0);
  return w;
}

/** How a call ended: the error's `code` (BilError), its class name, or 'ok'. */
export async function outcome(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (e) {
    return e instanceof BilError ? e.code : e instanceof Error ? e.name : String(e);
  }
}

/** The error a call failed with (fails the test if it didn't: the client did what the server wanted). */
export async function failure(p: Promise<unknown>): Promise<Error & { code?: string; details?: Record<string, unknown> }> {
  let result: unknown;
  try {
    result = await p;
  } catch (e) {
    return e as Error;
  }
  throw new Error(`expected the client to refuse, but the call went through (result: ${JSON.stringify(result)?.slice(0, 300)})`);
}

/** Reads a field the SDK may not have yet on this branch (step 8 additions), without a type error. */
export const loose = (v: unknown): Json => v as Json;

/** Texts of a history page; failures as `<error>`. */
export const texts = (messages: readonly HistoryMessage[]) => messages.map((m) => (m.ok ? m.text : `<${m.error}>`));

const uuid = '[0-9a-f-]{36}';
/** Path patterns of the routes the attacks touch (docs/api.md). */
export const paths = {
  chat: (chatId = uuid) => new RegExp(`^/v1/chats/${chatId}$`),
  chats: /^\/v1\/chats$/,
  keys: (chatId = uuid) => new RegExp(`^/v1/chats/${chatId}/keys$`),
  messages: (chatId = uuid) => new RegExp(`^/v1/chats/${chatId}/messages$`),
  members: (chatId = uuid) => new RegExp(`^/v1/chats/${chatId}/members(/${uuid})?$`),
  devices: (userId = uuid) => new RegExp(`^/v1/users/${userId}/devices$`),
  me: /^\/v1\/me$/,
};

// ---- the CLI --------------------------------------------------------------------

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface Cli {
  readonly configDir: string;
  /** Runs `bil args…` to the end. */
  (...args: string[]): Promise<CliResult>;
  /** `bil --json args…`, stdout parsed. */
  json(...args: string[]): Promise<CliResult & { json: unknown }>;
  /** Starts `bil args…` and leaves it running. */
  spawn(...args: string[]): Run;
  cleanup(): void;
}

/** A `bil` profile directory of its own, talking to `url` (the proxy). */
export function cli(url: string): Cli {
  const configDir = mkdtempSync(join(tmpdir(), 'bil-adversary-'));
  const env = { BIL_URL: url, BIL_CONFIG_DIR: configDir, BIL_PASSPHRASE: 'a passphrase for my keys', BIL_PASSWORD: PASSWORD, BIL_PROFILE: undefined, NO_COLOR: '1' };
  const exec = async (args: string[]): Promise<CliResult> => {
    const r = run([bilMain, ...args], env, { input: '' });
    const code = await r.exited;
    return { code, stdout: r.stdout(), stderr: r.stderr() };
  };
  return Object.assign((...args: string[]) => exec(args), {
    configDir,
    json: async (...args: string[]) => {
      const r = await exec(['--json', ...args]);
      let json: unknown;
      try {
        json = JSON.parse(r.stdout);
      } catch {
        json = undefined;
      }
      return { ...r, json };
    },
    spawn: (...args: string[]) => run([bilMain, ...args], env),
    cleanup: () => rmSync(configDir, { recursive: true, force: true }),
  });
}

export { unique };
