// Threat model, "the server can't": swap in a key of its own for a pinned
// contact unnoticed, or add a device to a user. The key directory
// (GET /v1/users/{id}/devices) is the server's to rewrite; the client checks
// it against its pins and the certificates.
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { BilError, type SafetyNumberChangedEvent } from '@bil/sdk/node';
import { chatKnowsDevices, cli, paths, registerAll, restart, type Person } from '../harness/clients.js';
import { serverDevice, serverIdentity } from '../harness/forge.js';
import { startProxy, type MaliciousGateway } from '../harness/proxy.js';

const code = (p: Promise<unknown>) => p.then(() => 'no error', (e: unknown) => (e instanceof BilError ? e.code : String(e)));

describe('the key directory lies', () => {
  let proxy: MaliciousGateway;
  let alice: Person;
  let bob: Person;
  let carol: Person;

  beforeAll(async () => {
    proxy = await startProxy(inject('gatewayUrl'));
    [alice, bob, carol] = await registerAll(proxy.url, 'alice', 'bob', 'carol');
  });
  afterEach(() => proxy.reset());
  afterAll(() => proxy?.close());

  it('a swapped identity key for a pinned contact: safety number changed, nothing wrapped to the new devices', async () => {
    const chat = await alice.client.chats.createPersonal(bob.userId);
    await alice.client.messages.send(chat.chatId, 'pins bob');

    const evil = serverIdentity();
    const fake = await serverDevice(bob.userId, evil, 'bob-but-the-server');
    const rule = proxy.onResponse('bob has a new identity key', { method: 'GET', path: paths.devices(bob.userId), userId: alice.userId }, (res) => ({
      body: { ...res.body, identity_key: evil.key, devices: [...res.body.devices, fake] },
    }));
    const app = restart(alice, proxy.url); // an app restart: the device list is fetched again
    const changed: SafetyNumberChangedEvent[] = [];
    app.client.on('safety-number-changed', (e) => changed.push(e));
    const posts = () => proxy.log.filter((x) => x.method === 'POST' && x.path === `/v1/chats/${chat.chatId}/messages`).length;
    const before = posts();

    expect(await code(app.client.messages.send(chat.chatId, 'for bob only'))).toBe('identity_changed');
    expect(rule.fired).toBeGreaterThan(0);
    expect(changed).toEqual([expect.objectContaining({ userId: bob.userId, currentIdentityKey: evil.key })]);
    expect(posts()).toBe(before); // nothing sent, so nothing wrapped to the server's device

    const seen = await app.client.contacts.devices(bob.userId);
    expect(seen.pin).toBe('changed');
    expect(seen.devices.map((d) => d.deviceId)).not.toContain(fake.device_id);
    expect(seen.rejected.map((d) => d.deviceId)).toContain(fake.device_id);
    rule.remove();
  });

  it('an uncertified device injected into the directory answer gets no wrapped key', async () => {
    const chat = await alice.client.chats.createPersonal(carol.userId);
    const fake = await serverDevice(carol.userId, serverIdentity(), 'carol-tablet');
    const rule = proxy.onResponse('an extra device for carol', { method: 'GET', path: paths.devices(carol.userId), userId: alice.userId }, (res) => ({
      body: { ...res.body, devices: [...res.body.devices, fake] },
    }));
    await restart(alice, proxy.url).client.messages.send(chat.chatId, 'hello carol');
    expect(rule.fired).toBeGreaterThan(0);
    const sent = proxy.log.filter((x) => x.method === 'POST' && x.path === `/v1/chats/${chat.chatId}/messages`).at(-1)!;
    const wrappedFor = (JSON.parse(sent.forwardedBody) as { wrapped_keys: { device_id: string }[] }).wrapped_keys.map((k) => k.device_id);
    expect(wrappedFor.sort()).toEqual([alice.deviceId, carol.deviceId].sort());
    expect(wrappedFor).not.toContain(fake.device_id);
    rule.remove();
  });

  it('the CLI: a swapped identity key stops `bil send` with exit 7 and sends nothing', async () => {
    const bil = cli(proxy.url);
    try {
      expect((await bil('register', `dora_${Date.now().toString(36)}`)).code).toBe(0);
      const dora = (await bil.json('whoami')).json as { userId: string; deviceId: string };
      await chatKnowsDevices(inject('databaseUrl'), [dora.deviceId]);
      const created = await bil.json('chat', 'create', '--personal', bob.userId);
      expect(created.code, created.stderr).toBe(0);
      const chatId = (created.json as { chatId: string }).chatId;
      expect((await bil('send', chatId, 'pins bob')).code).toBe(0);

      const evil = serverIdentity();
      const fake = await serverDevice(bob.userId, evil);
      const rule = proxy.onResponse('bob has a new identity key (CLI)', { method: 'GET', path: paths.devices(bob.userId), userId: dora.userId }, (res) => ({
        body: { ...res.body, identity_key: evil.key, devices: [fake] },
      }));
      const posts = () => proxy.log.filter((x) => x.method === 'POST' && x.path === `/v1/chats/${chatId}/messages`).length;
      const before = posts();
      const r = await bil('send', chatId, 'for bob only');
      expect(rule.fired).toBeGreaterThan(0);
      expect(r.code, r.stderr).toBe(7);
      expect(r.stderr).toContain('identity_changed');
      expect(posts()).toBe(before);
      rule.remove();
    } finally {
      bil.cleanup();
    }
  });
});
