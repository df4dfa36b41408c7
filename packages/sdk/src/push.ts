// Web Push (client.push, docs/push.md): the server's VAPID key to subscribe
// with, and this device's subscription. A push carries no content, only
// `{"type":"bil.push.v1","chats":N}`: the service worker shows "New messages in
// N chats", and the app fetches and decrypts what is new when it opens.
import type { ClientCore } from './client-core.js';

/** The browser's `PushSubscription.toJSON()`: what `register` takes. */
export interface PushSubscriptionJson {
  readonly endpoint: string;
  readonly expirationTime?: number | null;
  readonly keys: { readonly p256dh: string; readonly auth: string };
}

/** What a push's payload is, once the service worker decrypted it (the browser does). */
export interface PushPayload {
  readonly type: 'bil.push.v1';
  /** Chats with new messages since this device's previous push. */
  readonly chats: number;
}

export interface PushApi {
  /** The server's VAPID public key (base64url): `pushManager.subscribe({ userVisibleOnly: true, applicationServerKey })`. */
  vapidKey(): Promise<string>;
  /** Stores this device's subscription (replacing an earlier one); the server then wakes it when it is offline. */
  register(subscription: PushSubscriptionJson): Promise<void>;
  /** Removes this device's subscription (no error when there is none). */
  unregister(): Promise<void>;
}

export function pushApi(core: Pick<ClientCore, 'call' | 'requireProfile'>): PushApi {
  const path = async () => `/v1/devices/${encodeURIComponent((await core.requireProfile()).deviceId)}/push-subscription`;
  return {
    async vapidKey() {
      const res = await core.call<{ vapid_public_key: string }>('GET', '/v1/push/vapid-key');
      return res.vapid_public_key;
    },
    async register(subscription) {
      // Only the three fields the server takes, whatever else the object carries.
      const body = { endpoint: subscription.endpoint, keys: { p256dh: subscription.keys.p256dh, auth: subscription.keys.auth } };
      await core.call('PUT', await path(), body);
    },
    async unregister() {
      await core.call('DELETE', await path());
    },
  };
}
