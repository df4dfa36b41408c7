// People of the SDK's e2e specs: accounts registered and devices linked
// through the real gateway, each with its own key store.
import { randomBytes } from 'node:crypto';
import { BilClient, MemoryKeyStore, type LocalAccount } from '../src/index.js';

export const PASSWORD = 'correct horse battery staple';
export const username = (prefix: string) => `${prefix}_${randomBytes(4).toString('hex')}`;

export interface Device {
  client: BilClient;
  store: MemoryKeyStore;
  account: LocalAccount;
}

/** Clients of the gateway at `baseUrl()` (read at each call: the stack starts in beforeAll). */
export function people(baseUrl: () => string) {
  const newClient = (store = new MemoryKeyStore()) => ({ store, client: new BilClient({ baseUrl: baseUrl(), keyStore: store }) });
  return {
    newClient,
    /** A new account and its first device. */
    async register(prefix: string): Promise<Device> {
      const { client, store } = newClient();
      const account = await client.register({ username: username(prefix), password: PASSWORD, deviceName: 'laptop' });
      return { client, store, account };
    },
    /** A second device of `first`'s account, linked by it. */
    async link(first: Device, name: string): Promise<Device> {
      const { client, store } = newClient();
      const request = await client.devices.linkRequest({ deviceName: name });
      const approval = await first.client.devices.approveLink(request);
      const account = await client.devices.completeLink({ approval, password: PASSWORD });
      return { client, store, account };
    },
  };
}
