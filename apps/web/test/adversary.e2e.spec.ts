// The server as the adversary, in the browser: the malicious gateway of
// tests/adversary (test/harness/proxy.ts) sits between Chromium and the real
// gateway, serves the page from its own origin and rewrites the server's
// answers. It swaps a contact's identity key (a device the server made,
// certified by a key of its own), and serves a group member a forked history
// (another epoch 2, validly signed by the group's owner but never published).
// Each time the page shows a blocking dialog (role="alertdialog", focus kept
// inside, axe clean) and sends nothing: the proxy's log shows no message
// POSTed while the alert stands.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { importDevicePrivateKeys, rotateEpoch, verifyGroupChain, type SignedEpochRecord } from '@bil/crypto';
import { BilClient, MemoryKeyStore, type LocalAccount } from '@bil/sdk';
import { waitUntil } from '@bil/testkit';
// forge.ts reads the adversary suite's provided context in helpers not used here; its declaration comes with this type import.
import type {} from '../../../tests/adversary/test/global-setup.js';
import { serverDevice, serverIdentity, verified } from '../../../tests/adversary/test/harness/forge.js';
import { startProxy, type Json, type MaliciousGateway } from '../../../tests/adversary/test/harness/proxy.js';
import { axe, closeAll, person, register, reopen, run, send, shot, skipReason, startWebSystem, type Person, type WebSystem } from './browser.js';

/** Someone outside the browser: the SDK in Node, straight at the honest gateway. */
interface NodePerson {
  client: BilClient;
  store: MemoryKeyStore;
  account: LocalAccount;
}

describe.skipIf(skipReason !== null)('the web client when the server lies', () => {
  let system: WebSystem;
  let proxy: MaliciousGateway;
  let gateway: string;
  let alice: Person;

  beforeAll(async () => {
    system = await startWebSystem('web-adversary');
    gateway = system.url.replace(/\/$/, '');
    proxy = await startProxy(gateway);
    alice = await person('alice', `${proxy.url}/`);
    await register(alice);
  });

  afterAll(async () => {
    await closeAll();
    await proxy?.close();
    await system?.stop();
  });

  async function nodePerson(name: string): Promise<NodePerson> {
    const store = new MemoryKeyStore();
    const client = new BilClient({ baseUrl: gateway, keyStore: store });
    const account = await client.register({ username: `${name}-${run}`, password: `${name} correct horse battery` });
    return { client, store, account };
  }

  /** The server reading its own data with `as`'s token. */
  async function serverGet(as: NodePerson, path: string): Promise<Json> {
    const token = (await as.store.load())!.tokens!.accessToken;
    const res = await fetch(`${gateway}${path}`, { headers: { authorization: `Bearer ${token}` } });
    if (!res.ok) throw new Error(`GET ${path}: ${res.status}`);
    return res.json();
  }

  const messagePosts = (chatId: string): number => proxy.log.filter((x) => x.method === 'POST' && x.path === `/v1/chats/${chatId}/messages` && x.userId !== undefined).length;

  /** Tab and Shift+Tab stay inside the open dialog. */
  async function focusStaysIn(p: Person, name: string): Promise<void> {
    for (const key of ['Tab', 'Tab', 'Tab', 'Shift+Tab', 'Shift+Tab', 'Shift+Tab']) {
      await p.page.keyboard.press(key);
      await expect(p.page.evaluate(`!!document.activeElement.closest('[role="alertdialog"]')`), `focus after ${key} in "${name}"`).resolves.toBe(true);
    }
  }

  it("swaps a contact's identity key: a blocking dialog, and nothing is sent to the server's key", async () => {
    const bob = await nodePerson('bob');
    await alice.page.getByLabel('New chat with').fill(bob.account.username);
    await alice.page.getByRole('button', { name: 'Start' }).click();
    await alice.page.getByRole('heading', { name: bob.account.username }).waitFor();
    await send(alice, 'Hello Bob, before the server lies');
    const chatId = (await bob.client.chats.list()).chats[0]!.chatId;

    // The server answers Alice's directory look-ups of Bob with a key and a device of its own.
    const mallory = serverIdentity();
    const device = await serverDevice(bob.account.userId, mallory);
    const swap = proxy.onResponse('bob has a new key', { method: 'GET', path: new RegExp(`^/v1/users/${bob.account.userId}/devices$`) }, (res) => ({
      body: { ...res.body, identity_key: mallory.key, devices: [device] },
    }));
    await reopen(alice); // a fresh client asks the directory again
    await alice.page.locator('.chat-item', { hasText: bob.account.username }).click();
    const before = messagePosts(chatId);
    const box = alice.page.getByLabel(/^Message to /);
    await box.fill('Is this still you, Bob?');
    await box.press('Enter');
    const dialog = alice.page.getByRole('alertdialog', { name: `${bob.account.username}’s safety number changed` });
    await dialog.waitFor({ timeout: 30_000 });
    expect(swap.fired).toBeGreaterThan(0);
    await focusStaysIn(alice, 'key change');
    await axe(alice.page, 'key change alert (adversary)');
    // Escape doesn't dismiss it; "Not now" does, and the next send is refused again, with the dialog back.
    await alice.page.keyboard.press('Escape');
    await expect(dialog.isVisible()).resolves.toBe(true);
    await dialog.getByRole('button', { name: /^Not now/ }).click();
    await dialog.waitFor({ state: 'hidden' });
    await alice.page.getByRole('button', { name: 'Send' }).click();
    await dialog.waitFor({ timeout: 30_000 });
    expect(messagePosts(chatId) - before).toBe(0);
    expect((await bob.client.messages.history(chatId)).messages.map((m) => (m.ok ? m.text : '?'))).toEqual(['Hello Bob, before the server lies']);
    await dialog.getByRole('button', { name: /^Not now/ }).click();
    proxy.reset();
    expect(alice.problems).toEqual([]);
  });

  it('a registration whose device step fails is resumed by trying again, also after a reload (the username is not lost)', async () => {
    for (const [name, reload] of [['erin', false], ['fay', true]] as const) {
      const p = await person(name, `${proxy.url}/`);
      // The device step fails once (the account was created just before): the page keeps the client and its keys.
      let failed = 0;
      await p.page.route('**/v1/auth/devices', async (route) => {
        if (route.request().method() !== 'POST' || failed > 0) return route.continue();
        failed++;
        await route.fulfill({ status: 500, contentType: 'application/json', body: JSON.stringify({ error: { code: 'internal', message: 'the device step failed' } }) });
      });
      const fill = async () => {
        await p.page.getByLabel('Username').fill(p.username);
        await p.page.getByLabel('Password', { exact: true }).fill(p.password);
        await p.page.getByLabel('Passphrase for this browser').fill(p.passphrase);
        await p.page.getByLabel('Passphrase again').fill(p.passphrase);
      };
      await p.page.goto(p.url);
      await fill();
      await p.page.getByRole('button', { name: 'Create account' }).click();
      await p.page.getByRole('status').filter({ hasText: `Your account “${p.username}” was created` }).waitFor({ timeout: 60_000 });
      expect(failed).toBe(1);
      if (reload) {
        // The page (and the SDK client holding the new keys) is gone: the sealed app record names the account.
        await p.page.goto(p.url);
        await p.page.getByRole('heading', { name: 'Create an account' }).waitFor();
        await fill();
        await p.page.getByRole('button', { name: 'Create account' }).click();
      } else {
        await axe(p.page, 'registration to finish');
        await p.page.getByRole('button', { name: 'Finish creating the account' }).click();
      }
      await p.page.getByRole('status').filter({ hasText: 'Connected' }).waitFor({ timeout: 60_000 });
      // One account: the first attempt's account was finished, not a new one made.
      const registers = proxy.log.filter((x) => x.method === 'POST' && x.path === '/v1/auth/register' && x.forwardedBody.includes(p.username));
      expect(registers.length).toBe(1);
      expect(p.problems).toEqual([]);
    }
  });

  it("serves a member a forked group history: a blocking dialog, nothing sent, and once resolved the group works again", async () => {
    const dave = await nodePerson('dave');
    const aliceId = (await dave.client.contacts.find(alice.username)).userId;
    // The chat service learns Alice's and Dave's devices from identity's events: retry until it knows them.
    const chatId = await waitUntil('the group is created', async () => (await dave.client.chats.createGroup({ title: 'Plans', members: [aliceId] }).catch(() => undefined))?.chatId, 30_000, 500);
    await dave.client.messages.send(chatId, 'Welcome to Plans');
    // The other epoch 2: signed by Dave's device over the same epoch 1, kept by the server, never published.
    const keys = await serverGet(dave, `/v1/chats/${chatId}/keys`);
    const chain = await verifyGroupChain((keys.epochs as Json[]).map((e) => e.record as SignedEpochRecord), { chatId });
    const profile = (await dave.store.load())!;
    const signer = { userId: profile.userId, deviceId: profile.deviceId, keys: await importDevicePrivateKeys(profile.deviceKeys) };
    const devicesOf = async (userId: string) => {
      const dir = await serverGet(dave, `/v1/users/${userId}/devices`);
      return Promise.all((dir.devices as Json[]).map((d) => verified(d, dir.identity_key)));
    };
    const aliceDevices = await devicesOf(aliceId);
    const fork = await rotateEpoch({
      chain,
      signer,
      createdAt: Date.now(),
      metadata: { title: 'Plans' },
      members: [
        { role: 'admin', devices: await devicesOf(dave.account.userId) },
        { role: 'member', devices: aliceDevices },
      ],
    });
    // The real epoch 2; Alice reads a message sent in it, so her device verifies and pins it.
    await dave.client.chats.rotate(chatId);
    await dave.client.messages.send(chatId, 'Dinner on Friday?');
    await alice.page.locator('.chat-item', { hasText: 'Plans' }).click();
    await alice.page.locator('.message.theirs', { hasText: 'Dinner on Friday?' }).waitFor({ timeout: 30_000 });

    // From now on the server shows Alice (only her browser goes through the proxy) the other epoch 2.
    const serveFork = proxy.onResponse('epoch 2 is the fork, for alice', { method: 'GET', path: new RegExp(`^/v1/chats/${chatId}/keys$`) }, (res) => {
      if (!Array.isArray(res.body?.epochs)) return undefined;
      const epochs = (res.body.epochs as Json[]).map((e) => (e.epoch === 2 ? { ...e, record: fork.record, record_hash: fork.chain.head.hash, wrapped_key: fork.wrappedKeys.find((k) => k.device_id === aliceDevices[0]!.deviceId)!.wrapped_key } : e));
      return { body: { ...res.body, epochs } };
    });
    await reopen(alice); // a fresh client loads the group's history from the server again
    const before = messagePosts(chatId);
    await alice.page.locator('.chat-item', { hasText: 'Plans' }).click();
    const dialog = alice.page.getByRole('alertdialog', { name: /The history of .* forked/ });
    await dialog.waitFor({ timeout: 30_000 });
    expect(serveFork.fired).toBeGreaterThan(0);
    await expect(dialog.textContent()).resolves.toContain('change 2');
    await focusStaysIn(alice, 'fork');
    await axe(alice.page, 'fork alert');
    await shot(alice.page, 'fork-alert');
    // Put off, the group still refuses to send, and the dialog comes back.
    await dialog.getByRole('button', { name: /^Not now/ }).click();
    await dialog.waitFor({ state: 'hidden' });
    const box = alice.page.getByLabel(/^Message to /);
    await box.fill('Sent into the fork?');
    await box.press('Enter');
    await dialog.waitFor({ timeout: 30_000 });
    expect(messagePosts(chatId) - before).toBe(0);
    // What she verified before the fork (epoch 1) still reads.
    await alice.page.locator('.message.theirs', { hasText: 'Welcome to Plans' }).waitFor();

    // The server stops lying; Alice compared the members with Dave and accepts the current history: sending works again.
    proxy.reset();
    await dialog.getByRole('button', { name: /accept the current history/ }).click();
    await dialog.waitFor({ state: 'hidden', timeout: 30_000 });
    await send(alice, 'Friday works');
    await waitUntil('dave reads it', async () => (await dave.client.messages.history(chatId)).messages.some((m) => m.ok && m.text === 'Friday works') || undefined, 30_000, 500);
    expect(alice.problems).toEqual([]);
  });
});

const why = skipReason;
if (why) {
  describe('the web client when the server lies', () => {
    it.skip(why, () => undefined);
  });
}
