// Web Push for offline devices through the real stack (identity, chat,
// delivery, gateway as built processes): a test push service (HTTPS, its
// certificate trusted by delivery through NODE_EXTRA_CA_CERTS) receives what
// delivery sends and the test decrypts it with the subscription's private key
// (RFC 8291): nothing but {"type":"bil.push.v1","chats":N}. Also: a connected
// device gets no push, messages within the interval collapse into one push,
// 410 and revocation remove the subscription, a push service host that is not
// allowed is refused, a subscription made just after delivery found none is
// used for the next message (identity's hint), not a minute later.
import { createPublicKey, verify as verifySignature } from 'node:crypto';
import pg from 'pg';
import webpush from 'web-push';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestPushService, type TestPushSubscription } from '@bil/testkit';
import { BilApiError } from '../src/index.js';
import { deliveryStackBuilt, startStack, type Stack } from './stack.js';
import { people, type Device } from './people.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const INTERVAL_MS = 6000;

async function until<T>(what: string, check: () => T | undefined | false | Promise<T | undefined | false>, ms = 20_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

describe.skipIf(!deliveryStackBuilt)('Web Push to offline devices (e2e)', () => {
  let stack: Stack;
  let pushService: TestPushService;
  let db: pg.Client;
  const vapid = webpush.generateVAPIDKeys();
  const { register } = people(() => stack.baseUrl);
  let alice: Device;
  let bob: Device;
  let carol: Device;
  let bobSub: TestPushSubscription;

  const subscriptionRows = async (deviceId: string) =>
    Number((await db.query(`SELECT count(*) AS n FROM identity.push_subscriptions WHERE device_id = $1`, [deviceId])).rows[0].n);

  beforeAll(async () => {
    pushService = await TestPushService.start();
    stack = await startStack(
      { PUSH_ENDPOINT_HOSTS: 'localhost' },
      {
        delivery: true,
        deliveryEnv: {
          NODE_EXTRA_CA_CERTS: pushService.caFile,
          PUSH_VAPID_PUBLIC_KEY: vapid.publicKey,
          PUSH_VAPID_PRIVATE_KEY: vapid.privateKey,
          PUSH_VAPID_SUBJECT: 'mailto:ops@bil.example',
          PUSH_MIN_INTERVAL_MS: String(INTERVAL_MS),
          PUSH_RETRY_DELAY_MS: '100',
        },
        gatewayEnv: { PUSH_VAPID_PUBLIC_KEY: vapid.publicKey },
      },
    );
    db = new pg.Client({ connectionString: stack.env.databaseUrl });
    await db.connect();
    [alice, bob, carol] = (await Promise.all(['alice', 'bob', 'carol'].map(register))) as [Device, Device, Device];
  }, 90_000);

  afterAll(async () => {
    await db?.end();
    await stack?.stop();
    await pushService?.stop();
  });

  it('serves the VAPID public key and stores only a subscription on an allowed host, for the caller\'s own device', async () => {
    expect(await bob.client.push.vapidKey()).toBe(vapid.publicKey);
    bobSub = pushService.subscribe();
    const evil = { ...bobSub.json, endpoint: 'https://push.evil.example/push/1' };
    const refused = await bob.client.push.register(evil).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(BilApiError);
    expect(refused).toMatchObject({ status: 400, code: 'push_endpoint_not_allowed' });
    const badKeys = await bob.client.push.register({ ...bobSub.json, keys: { ...bobSub.json.keys, p256dh: 'AAAA' } }).catch((e: unknown) => e);
    expect(badKeys).toMatchObject({ status: 400, code: 'invalid_push_keys' });
    await bob.client.push.register(bobSub.json);
    expect(await subscriptionRows(bob.account.deviceId)).toBe(1);

    // Alice's token cannot set Bob's device's subscription.
    const token = (await alice.store.load())!.tokens!.accessToken;
    const res = await fetch(`${stack.baseUrl}/v1/devices/${bob.account.deviceId}/push-subscription`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify(pushService.subscribe().json),
    });
    expect(res.status).toBe(403);
  });

  it('pushes to an offline device only {"type":"bil.push.v1","chats":1}, encrypted to it, and collapses what follows into one push', async () => {
    const chatA = (await alice.client.chats.createPersonal(bob.account.userId)).chatId;
    const chatC = (await carol.client.chats.createPersonal(bob.account.userId)).chatId;
    await alice.client.messages.send(chatA, 'the launch moved to Thursday');
    const first = await until('the first push', () => bobSub.received()[0]);
    const sentFirstAt = Date.now();
    expect(bobSub.decrypt(first.body).toString('utf8')).toBe('{"type":"bil.push.v1","chats":1}');
    expect(first.headers['content-encoding']).toBe('aes128gcm');
    expect(first.headers['topic']).toBe('bil-new-messages');
    expect(Number(first.headers['ttl'])).toBeGreaterThan(0);
    // VAPID (RFC 8292): an ES256 JWT for the push service's origin, signed by the key the gateway publishes.
    const auth = String(first.headers['authorization']);
    const [, jwt, k] = /^vapid t=([^,]+), k=(.+)$/.exec(auth) ?? [];
    expect(k).toBe(vapid.publicKey);
    const [h, p, s] = jwt!.split('.') as [string, string, string];
    expect(JSON.parse(Buffer.from(p, 'base64url').toString())).toMatchObject({ aud: `https://localhost:${pushService.port}`, sub: 'mailto:ops@bil.example' });
    const pub = Buffer.from(vapid.publicKey, 'base64url');
    const key = createPublicKey({ key: { kty: 'EC', crv: 'P-256', x: pub.subarray(1, 33).toString('base64url'), y: pub.subarray(33).toString('base64url') }, format: 'jwk' });
    expect(verifySignature('sha256', Buffer.from(`${h}.${p}`), { key, dsaEncoding: 'ieee-p1363' }, Buffer.from(s, 'base64url'))).toBe(true);

    // Within the interval: two more in chat A and one in chat C → no push now, one push with 2 chats later.
    await alice.client.messages.send(chatA, 'and the ads budget is 5000');
    await alice.client.messages.send(chatA, 'ok?');
    await carol.client.messages.send(chatC, 'lunch?');
    // Still well inside the interval (the gate was taken a little before the push arrived).
    expect(Date.now() - sentFirstAt, 'the three sends took too long for this test').toBeLessThan(INTERVAL_MS - 1000);
    expect(bobSub.received()).toHaveLength(1);
    const second = await until('the collapsed push', () => bobSub.received()[1], INTERVAL_MS + 15_000);
    expect(bobSub.decrypt(second.body).toString('utf8')).toBe('{"type":"bil.push.v1","chats":2}');
    await sleep(1500);
    expect(bobSub.received()).toHaveLength(2);
  });

  it('sends no push to a device connected live', async () => {
    const dave = await register('dave');
    const daveSub = pushService.subscribe();
    await dave.client.push.register(daveSub.json);
    const live = dave.client.live({ initialBackoffMs: 100, maxBackoffMs: 1000 });
    const got: string[] = [];
    live.on('message', (m) => {
      if (m.ok) got.push(m.text);
    });
    let synced = false;
    live.on('synced', () => void (synced = true));
    try {
      await until('synced', () => synced);
      const chat = (await alice.client.chats.createPersonal(dave.account.userId)).chatId;
      await alice.client.messages.send(chat, 'are you there?');
      await until('the live message', () => got.length > 0);
      await sleep(1500);
      expect(daveSub.received()).toHaveLength(0);
    } finally {
      live.close();
    }
  });

  it('uses a subscription made just after a message found none for the very next message', async () => {
    const grace = await register('grace');
    const chat = (await alice.client.chats.createPersonal(grace.account.userId)).chatId;
    await alice.client.messages.send(chat, 'before you turned notifications on');
    // Delivery has asked identity about Grace and remembers "no subscription" (PUSH_NO_SUBSCRIPTION_CACHE_MS, 60 s).
    await sleep(1000);
    const graceSub = pushService.subscribe();
    await grace.client.push.register(graceSub.json);
    await alice.client.messages.send(chat, 'and after');
    const push = await until('the push for the message after subscribing', () => graceSub.received()[0], 5000);
    expect(graceSub.decrypt(push.body).toString('utf8')).toBe('{"type":"bil.push.v1","chats":1}');
  });

  it('removes a subscription the push service answers 410 for', async () => {
    const erin = await register('erin');
    const erinSub = pushService.subscribe();
    erinSub.answer(410);
    await erin.client.push.register(erinSub.json);
    expect(await subscriptionRows(erin.account.deviceId)).toBe(1);
    const chat = (await alice.client.chats.createPersonal(erin.account.userId)).chatId;
    await alice.client.messages.send(chat, 'hi Erin');
    await until('the push', () => erinSub.received().length > 0);
    await until('the subscription removed', async () => (await subscriptionRows(erin.account.deviceId)) === 0);
    expect(erinSub.received()).toHaveLength(1);
  });

  it('drops the subscription of a revoked device, and unregister removes it', async () => {
    const frank = await register('frank');
    await frank.client.push.register(pushService.subscribe().json);
    await frank.client.push.unregister();
    expect(await subscriptionRows(frank.account.deviceId)).toBe(0);
    await frank.client.push.register(pushService.subscribe().json);
    expect(await subscriptionRows(frank.account.deviceId)).toBe(1);
    await frank.client.devices.revoke(frank.account.deviceId);
    expect(await subscriptionRows(frank.account.deviceId)).toBe(0);
  });
});
