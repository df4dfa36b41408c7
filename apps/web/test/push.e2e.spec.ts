// Web Push in the web client (docs/push.md) in headless Chromium against the
// real system (scripts/start.mjs makes the VAPID pair). Headless Chromium has
// no push service to subscribe with (Debian's build has no FCM sender): the
// test checks that the switch then says so plainly, and then stands in for
// only that browser part, giving the page's PushManager a subscription of
// @bil/testkit's TestPushService (a real P-256 key and auth secret, an https
// endpoint on localhost). From there everything is real: the switch registers
// /sw.js, subscribes with the server's VAPID key, PUTs the subscription for
// this device; with the page closed, Bob's message makes delivery push to it,
// and the push decrypts to exactly {"type":"bil.push.v1","chats":1}; the
// service worker shows "New messages in 2 chats" for a push event dispatched
// to it; switching off DELETEs the subscription.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BilClient, MemoryKeyStore } from '@bil/sdk';
import { TestPushService } from '@bil/testkit';
import { axe, closeAll, onClose, person, register, reopen, run, skipReason, startWebSystem, type Person, type WebSystem } from './browser.js';

describe.skipIf(skipReason !== null)('Web Push in the web client', () => {
  let system: WebSystem;
  let alice: Person;
  let pushService: TestPushService;

  beforeAll(async () => {
    pushService = await TestPushService.start();
    onClose(() => pushService.stop());
    system = await startWebSystem('web-push', () => ({ PUSH_ENDPOINT_HOSTS: 'localhost', NODE_EXTRA_CA_CERTS: pushService.caFile, PUSH_MIN_INTERVAL_MS: '1000' }));
    alice = await person('alice', system.url);
    await alice.context.grantPermissions(['notifications'], { origin: new URL(system.url).origin });
    await register(alice);
  });

  afterAll(async () => {
    await closeAll();
    await system?.stop();
  });

  it('serves the service worker, subscribes with the VAPID key, registers the subscription and is pushed while closed', async () => {
    const page = alice.page;
    const sw = await fetch(new URL('/sw.js', system.url));
    expect(sw.status).toBe(200);
    expect(sw.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    const vapid = (await (await fetch(new URL('/v1/push/vapid-key', system.url))).json()) as { vapid_public_key: string };

    await page.getByRole('button', { name: alice.username }).click();
    await page.getByRole('heading', { name: 'Notifications' }).waitFor();
    const toggle = page.getByRole('switch', { name: /New message notifications/ });
    await expect.poll(() => toggle.isEnabled(), { timeout: 30_000 }).toBe(true);
    await axe(page, 'notifications');

    // Headless Chromium can't reach a push service: the switch says so and stays off.
    await toggle.click();
    const note = page.locator('section[aria-labelledby="notifications-title"] [role="status"]');
    await note.waitFor({ timeout: 60_000 });
    console.log(`headless Chromium's own subscribe: ${await note.textContent()}`);
    expect(await toggle.getAttribute('aria-checked')).toBe('false');

    // The browser's push service, stood in for: subscribe() and getSubscription() give the test push service's subscription.
    const sub = pushService.subscribe();
    const standIn = (subscribedWith: string | null) =>
      page.evaluate(
        ([json, subscribed]) => {
          const make = (key: BufferSource | string | null | undefined) => ({
            endpoint: json.endpoint,
            options: { userVisibleOnly: true, applicationServerKey: key instanceof Uint8Array ? (key as Uint8Array).slice().buffer : null },
            toJSON: () => json,
            unsubscribe: async () => {
              current = null;
              return true;
            },
          });
          const bytes = (k: string) => Uint8Array.from(atob(k.replace(/-/g, '+').replace(/_/g, '/')), (c) => c.charCodeAt(0));
          let current: unknown = subscribed ? make(bytes(subscribed)) : null;
          PushManager.prototype.subscribe = async function (o?: PushSubscriptionOptionsInit) {
            current = make(o?.applicationServerKey);
            return current as PushSubscription;
          };
          PushManager.prototype.getSubscription = async () => current as PushSubscription | null;
        },
        [sub.json, subscribedWith] as const,
      );
    await standIn(null);
    const put = page.waitForResponse((r) => r.request().method() === 'PUT' && r.url().endsWith('/push-subscription'), { timeout: 60_000 });
    await toggle.click();
    const answer = await put;
    expect(answer.status()).toBe(200);
    expect(JSON.parse(answer.request().postData() ?? '{}')).toEqual({ endpoint: sub.json.endpoint, keys: sub.json.keys });
    await expect.poll(() => toggle.getAttribute('aria-checked'), { timeout: 30_000 }).toBe('true');
    // It subscribed with the server's VAPID key.
    const key = await page.evaluate(async () => {
      const s = await (await navigator.serviceWorker.getRegistration('/'))?.pushManager.getSubscription();
      const k = s?.options.applicationServerKey;
      return k ? btoa(String.fromCharCode(...new Uint8Array(k))).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '') : null;
    });
    expect(key).toBe(vapid.vapid_public_key);

    // The service worker shows only the count: a push event dispatched to it.
    const worker = alice.context.serviceWorkers()[0] ?? (await alice.context.waitForEvent('serviceworker'));
    // (A string: the test's TypeScript has no service worker types.)
    const shown = await worker.evaluate(`(async () => {
      const before = (await self.registration.getNotifications()).length;
      self.dispatchEvent(new PushEvent('push', { data: JSON.stringify({ type: 'bil.push.v1', chats: 2 }) }));
      for (let i = 0; i < 50 && (await self.registration.getNotifications()).length === before; i++) await new Promise((r) => setTimeout(r, 100));
      return (await self.registration.getNotifications()).map((n) => ({ title: n.title, body: n.body, tag: n.tag }));
    })()`);
    expect(shown).toEqual([{ title: 'bil', body: 'New messages in 2 chats', tag: 'bil-new-messages' }]);

    // With the page closed (no live connection), Bob writes: delivery pushes the count, and nothing else, to the subscription.
    const bob = new BilClient({ baseUrl: system.url.replace(/\/$/, ''), keyStore: new MemoryKeyStore() });
    await bob.register({ username: `bob-${run}`, password: 'bob correct horse battery' });
    const { chatId } = await bob.chats.createPersonal((await bob.contacts.find(alice.username)).userId);
    await page.goto('about:blank');
    // Delivery pushes only to devices it no longer holds a socket for, and it
    // may see the close a while later on a busy machine: Bob writes again
    // until a push comes (pushes are collapsed per chat, so still one chat).
    for (let i = 0; sub.received().length === 0 && i < 12; i++) {
      await new Promise((r) => setTimeout(r, 1500));
      await bob.messages.send(chatId, `are you there? (${i + 1})`);
      await expect.poll(() => sub.received().length, { timeout: 5_000 }).toBeGreaterThan(0).catch(() => undefined);
    }
    expect(sub.received().length).toBeGreaterThan(0);
    expect(sub.decrypt(sub.received()[0]!.body).toString('utf8')).toBe('{"type":"bil.push.v1","chats":1}');

    // Off: the subscription is deleted on the server and in the browser.
    await reopen(alice);
    await standIn(vapid.vapid_public_key); // the browser keeps its subscription across page loads
    await page.getByRole('button', { name: alice.username }).click();
    await expect.poll(() => toggle.getAttribute('aria-checked'), { timeout: 30_000 }).toBe('true');
    const del = page.waitForResponse((r) => r.request().method() === 'DELETE' && r.url().endsWith('/push-subscription'), { timeout: 60_000 });
    await toggle.click();
    expect((await del).status()).toBe(204);
    await expect.poll(() => toggle.getAttribute('aria-checked'), { timeout: 30_000 }).toBe('false');
    expect(alice.problems).toEqual([]);
  });
});
