// Web Push in the browser (docs/push.md): the service worker (public/sw.js)
// shows "New messages in N chats" and nothing else; this subscribes with the
// server's VAPID key and registers the subscription as this device's
// (client.push), or takes it back. The person turns it on in the account panel.
import type { BilClient } from '@bil/sdk';

/** Whether this browser can receive Web Push at all (service workers, the Push API, notifications). */
export const pushSupported = (): boolean => 'serviceWorker' in navigator && typeof window.PushManager === 'function' && typeof window.Notification === 'function';

const b64url = (s: string): Uint8Array<ArrayBuffer> => {
  const bin = atob(s.replace(/-/g, '+').replace(/_/g, '/') + '='.repeat((4 - (s.length % 4)) % 4));
  return Uint8Array.from(bin, (c) => c.charCodeAt(0));
};

const sameKey = (a: ArrayBuffer | null | undefined, b: Uint8Array): boolean => !!a && a.byteLength === b.byteLength && new Uint8Array(a).every((x, i) => x === b[i]);

/** A browser whose push service is unreachable (no network, or none built in) may never settle `subscribe`. */
const SUBSCRIBE_TIMEOUT_MS = 15_000;

function withTimeout<T>(p: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms);
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

async function registration(): Promise<ServiceWorkerRegistration> {
  await navigator.serviceWorker.register('/sw.js', { scope: '/' });
  return navigator.serviceWorker.ready;
}

/** This browser's current subscription, if notifications are allowed and one exists. */
export async function currentSubscription(): Promise<PushSubscription | null> {
  if (!pushSupported() || Notification.permission !== 'granted') return null;
  const reg = await navigator.serviceWorker.getRegistration('/');
  return (await reg?.pushManager.getSubscription()) ?? null;
}

/**
 * Asks for permission (the person's click is the reason), subscribes with the server's VAPID key (a subscription
 * made for another key is replaced) and registers it for this device. Throws with a plain message when refused.
 */
export async function enablePush(client: BilClient): Promise<void> {
  if (!pushSupported()) throw new Error('This browser can’t receive notifications.');
  const permission = await Notification.requestPermission();
  if (permission !== 'granted') throw new Error('Notifications are blocked for this site: allow them in the browser’s site settings.');
  const key = b64url(await client.push.vapidKey());
  const reg = await registration();
  let sub = await reg.pushManager.getSubscription();
  if (sub && !sameKey(sub.options.applicationServerKey, key)) {
    await sub.unsubscribe();
    sub = null;
  }
  sub ??= await withTimeout(reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: key }), SUBSCRIBE_TIMEOUT_MS, 'The browser’s push service doesn’t answer: notifications stay off. Try again later.');
  const json = sub.toJSON();
  if (!json.endpoint || !json.keys?.p256dh || !json.keys.auth) throw new Error('The browser gave an incomplete push subscription.');
  await client.push.register({ endpoint: json.endpoint, keys: { p256dh: json.keys.p256dh, auth: json.keys.auth } });
}

/** Removes this device's subscription on the server, then in the browser. */
export async function disablePush(client: BilClient): Promise<void> {
  await client.push.unregister();
  await (await currentSubscription())?.unsubscribe();
}
