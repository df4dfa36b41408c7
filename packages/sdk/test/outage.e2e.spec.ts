// Outages through the real stack, as an app using the SDK sees them, on a
// PostgreSQL of this test's own (started and stopped here; never the shared
// one) and services the test stops and starts again:
// - PostgreSQL down: every route answers 503 service_unavailable with
//   Retry-After; a send made meanwhile is retried by the SDK with the same
//   message id and lands once, when PostgreSQL is back; the app is told
//   (`connection` event).
// - identity down: the gateway stays ready (degraded) and messaging works;
//   sign-in is back within ~1 s of identity's return (gRPC reconnect).
// - delivery restarted: live clients are back within ~3 s of its return.
// Prints the measured recovery times (docs/operations.md "Failure modes").
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { onPrivateServers, startPostgresServer, type ManagedServer } from '@bil/testkit';
import { BilClient, MemoryKeyStore, type ConnectionEvent, type LiveClient, type LocalAccount } from '../src/index.js';
import { deliveryStackBuilt, startStack, type Stack } from './stack.js';

const PASSWORD = 'correct horse battery staple';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(what: string, cond: () => boolean | Promise<boolean>, ms = 20_000, every = 25): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(every);
  }
}

function report(what: string, ms: number): void {
  // eslint-disable-next-line no-console -- the measured recovery, for docs/operations.md "Failure modes"
  console.log(`[outage] ${what}: ${ms} ms`);
}

describe.skipIf(!deliveryStackBuilt)('outages as the SDK sees them (e2e, private PostgreSQL)', () => {
  let pg: ManagedServer;
  let stack: Stack;
  let alice: { client: BilClient; account: LocalAccount };
  let bob: { client: BilClient; account: LocalAccount };
  let chatId: string;
  let bobLive: LiveClient;
  const bobTexts: string[] = [];
  const bobStates: string[] = [];
  const aliceConnection: ConnectionEvent[] = [];

  const http = async (method: string, path: string, opts: { token?: string; body?: unknown } = {}) => {
    const res = await fetch(`${stack.baseUrl}${path}`, {
      method,
      headers: { ...(opts.token ? { authorization: `Bearer ${opts.token}` } : {}), ...(opts.body ? { 'content-type': 'application/json' } : {}) },
      ...(opts.body ? { body: JSON.stringify(opts.body) } : {}),
    });
    const text = await res.text();
    return { status: res.status, retryAfter: res.headers.get('retry-after'), body: text ? (JSON.parse(text) as { error?: { code: string; details: Record<string, unknown> } } & Record<string, unknown>) : undefined };
  };
  const login = () => http('POST', '/v1/auth/login', { body: { username: alice.account.username, password: PASSWORD, device_id: alice.account.deviceId } });
  const accessToken = async () => (await login()).body!.tokens as { access_token: string };

  beforeAll(async () => {
    pg = await startPostgresServer();
    // A signing key that survives identity's restart, as in production (tokens issued before stay valid).
    const jwtKey = generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    stack = await startStack({ IDENTITY_JWT_PRIVATE_KEY: jwtKey }, { delivery: true, env: (env) => onPrivateServers(env, { postgres: pg }) });
    const make = async (prefix: string) => {
      const client = new BilClient({ baseUrl: stack.baseUrl, keyStore: new MemoryKeyStore() });
      const account = await client.register({ username: `${prefix}_${randomBytes(4).toString('hex')}`, password: PASSWORD, deviceName: 'laptop' });
      return { client, account };
    };
    [alice, bob] = await Promise.all([make('alice'), make('bob')]);
    chatId = (await alice.client.chats.createPersonal(bob.account.userId)).chatId;
    alice.client.on('connection', (e) => aliceConnection.push(e));
    bobLive = bob.client.live({ ackDelayMs: 20 });
    bobLive.on('message', (m) => m.ok && bobTexts.push(m.text));
    bobLive.on('state', (s) => bobStates.push(s.state));
    await until('bob live', () => bobStates.includes('live'));
  }, 180_000);

  afterAll(async () => {
    bobLive?.close();
    await stack?.stop();
    await pg?.cleanup();
  });

  it('PostgreSQL down: 503 service_unavailable with Retry-After everywhere; a send made meanwhile lands once when it is back', async () => {
    const { access_token: token } = await accessToken();
    await pg.stop();
    for (const res of [await http('GET', '/v1/chats', { token }), await http('GET', `/v1/chats/${chatId}/messages`, { token }), await http('GET', '/v1/me', { token }), await login()]) {
      expect(res.status, JSON.stringify(res.body)).toBe(503);
      expect(res.retryAfter).toBe('2');
      expect(res.body!.error).toMatchObject({ code: 'service_unavailable', details: { retry_after_seconds: 2 } });
    }
    // The app sends during the outage: the SDK keeps the request and retries it.
    const sending = alice.client.messages.send(chatId, 'sent during the database outage');
    await until('the app is told', () => aliceConnection.some((e) => e.state === 'unavailable'));
    expect(aliceConnection.find((e) => e.state === 'unavailable')).toEqual({ state: 'unavailable', retryAfterMs: 2000 });
    await sleep(3000);
    await pg.start();
    const back = Date.now();
    const firstOk = (async () => {
      await until('GET /v1/chats answers 200', async () => (await http('GET', '/v1/chats', { token })).status === 200, 20_000, 50);
      return Date.now() - back;
    })();
    const sent = await sending;
    const sentMs = Date.now() - back;
    report('PostgreSQL back → first 200', await firstOk);
    report('PostgreSQL back → SDK send retried through the outage lands', sentMs);
    expect(sentMs).toBeLessThan(5000);
    expect(alice.client.connectionState).toBe('online');
    expect(aliceConnection.at(-1)).toEqual({ state: 'online' });
    // Stored once: history holds it at its seq, and Bob sees it once.
    await until('bob receives it', () => bobTexts.includes('sent during the database outage'));
    const page = await alice.client.messages.history(chatId, { after: sent.seq - 1, limit: 5 });
    expect(page.messages.filter((m) => m.messageId === sent.messageId)).toHaveLength(1);
    expect(bobTexts.filter((t) => t === 'sent during the database outage')).toHaveLength(1);
  }, 120_000);

  it('identity down: the gateway stays ready and messaging works; sign-in is back within ~1 s of its return', async () => {
    const identity = stack.services.identity!;
    await alice.client.messages.send(chatId, 'before identity stops'); // Bob's devices are known (the SDK caches checked device lists)
    await identity.stop();
    const ready = await http('GET', '/readyz');
    expect(ready.status).toBe(200);
    expect(ready.body).toMatchObject({ status: 'degraded', checks: { identity: 'down', chat: 'ok', redis: 'ok', token_keys: 'ok' } });
    const refused = await login();
    expect(refused.status).toBe(503);
    expect(refused.retryAfter).toBe('2');
    await alice.client.messages.send(chatId, 'sent while identity is down');
    await until('bob receives it', () => bobTexts.includes('sent while identity is down'));
    // Long enough for grpc-js' own backoff to have grown past 5 s; the gateway keeps asking (readiness probes).
    for (let end = Date.now() + 12_000; Date.now() < end; ) {
      await http('GET', '/readyz');
      await sleep(1000);
    }
    await identity.start();
    const back = Date.now();
    await until('sign-in works', async () => (await login()).status === 200, 20_000, 50);
    const ms = Date.now() - back;
    report('identity back → sign-in through the gateway', ms);
    expect(ms).toBeLessThan(2000);
    expect((await http('GET', '/readyz')).body).toMatchObject({ checks: { identity: 'ok' } });
  }, 120_000);

  it('delivery restarted: the live client is back within ~3 s of its return and gets what was sent meanwhile', async () => {
    const delivery = stack.services.delivery!;
    await delivery.stop();
    await until('bob waits to reconnect', () => bobStates.at(-1) === 'waiting');
    await alice.client.messages.send(chatId, 'sent while delivery is down');
    await sleep(12_000); // the old policy's delay would be 8-30 s by now
    bobStates.length = 0;
    await delivery.start();
    const back = Date.now();
    await until('bob is live again', () => bobStates.includes('live'), 20_000, 10).catch((err: Error) => {
      throw new Error(`${err.message}; states ${bobStates.join(',')}; delivery: ${delivery.output().slice(-1500)}`);
    });
    const ms = Date.now() - back;
    report('delivery back → live client synced', ms);
    expect(ms).toBeLessThan(4000);
    await until('bob caught up', () => bobTexts.includes('sent while delivery is down'));
  }, 120_000);
});
