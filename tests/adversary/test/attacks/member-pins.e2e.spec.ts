// Issue 12, "Why" 2: group members' identity keys are never checked against
// pins. Alice never met bob, so her client took the server's key for him on
// first use and her device signed a genesis record listing "bob" under the
// server's key with a device the server made. Carol pinned bob's real key
// long ago. The server serves carol that record (it is validly signed by
// alice's device). Step 8: carol's client compares every member's identity
// key with her pins, refuses the record (`identity_changed`, the same
// "safety number changed" event as for a contact) and sends nothing there.
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { createGroup } from '@bil/crypto';
import { BilTrustError, type SafetyNumberChangedEvent } from '@bil/sdk/node';
import { failure, paths, registerAll, type Person } from '../harness/clients.js';
import { realDevices, serverDevice, serverIdentity, verified } from '../harness/forge.js';
import { startProxy, type MaliciousGateway } from '../harness/proxy.js';

describe('an epoch record lists a member under a key other than the pinned one', () => {
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

  it('refused with identity_changed; safety-number-changed for that member; nothing sent', async () => {
    await carol.client.contacts.devices(bob.userId); // carol pins bob's real key
    await carol.client.contacts.devices(alice.userId);
    const chatId = (await alice.client.chats.createGroup({ title: 'trip', members: [bob.userId, carol.userId] })).chatId;

    // The genesis alice's device signed while it trusted the server's key for bob.
    const evil = serverIdentity();
    const fakeBob = await verified(await serverDevice(bob.userId, evil, 'bob?'), evil.key);
    const forged = await createGroup({
      chatId,
      admin: await alice.local(),
      createdAt: Date.now(),
      members: [
        { role: 'admin', devices: await realDevices(alice, alice.userId) },
        { role: 'member', devices: [fakeBob] },
        { role: 'member', devices: await realDevices(alice, carol.userId) },
      ],
    });
    const rule = proxy.onResponse('serve carol the record with the server key for bob', { method: 'GET', path: paths.keys(chatId), userId: carol.userId }, (res) => {
      if (res.status !== 200) return undefined;
      const record = forged.record;
      return {
        body: {
          epochs: [
            {
              epoch: 1,
              record_hash: forged.chain.head.hash,
              record,
              wrapped_key: forged.wrappedKeys.find((k) => k.device_id === carol.deviceId)!.wrapped_key,
              signer_user_id: alice.userId,
              signer_device_id: alice.deviceId,
              created_at: new Date().toISOString(),
            },
          ],
          current_epoch: 1,
          has_more: false,
        },
      };
    });
    const changed: SafetyNumberChangedEvent[] = [];
    carol.client.on('safety-number-changed', (e) => changed.push(e));
    const posts = () => proxy.log.filter((x) => x.method === 'POST' && x.path === `/v1/chats/${chatId}/messages` && x.deviceId === carol.deviceId).length;

    const err = await failure(carol.client.messages.send(chatId, 'to bob, I hope'));
    expect(rule.fired).toBeGreaterThan(0);
    expect(posts()).toBe(0); // a naive client encrypts under the forged epoch, readable by the server's "bob"
    expect(err).toBeInstanceOf(BilTrustError);
    expect(err.code).toBe('identity_changed');
    expect(err.details).toMatchObject({ user_id: bob.userId });
    expect(changed).toEqual([expect.objectContaining({ userId: bob.userId, currentIdentityKey: evil.key })]);

    // Sending stays blocked in that chat while the server keeps serving the record.
    expect((await failure(carol.client.messages.send(chatId, 'again'))).code).toBe('identity_changed');
    expect(posts()).toBe(0);
  });
});
