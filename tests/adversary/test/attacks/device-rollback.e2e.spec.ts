// Issue 12, "Why" 6: a revoked device can be put back. Bob revokes his phone;
// the server re-lists the phone's old certified record (the certificate still
// verifies: it carries no device id, version or expiry). Step 8: the identity
// key signs a versioned device list; a client pins the highest version it saw
// and wraps only to devices in the latest list; an older list, or none where
// one was seen, is `device_list_rollback`. Linking no longer hands the new
// device the identity seed by default.
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { BilTrustError } from '@bil/sdk/node';
import { chatKnowsDevices, failure, link, outcome, paths, registerAll, restart, type Person } from '../harness/clients.js';
import { startProxy, type Json, type MaliciousGateway } from '../harness/proxy.js';

describe('a revoked device put back in the directory', () => {
  let proxy: MaliciousGateway;
  let alice: Person;
  let bob: Person;
  let phone: Person;
  let chatId: string;
  /** Bob's directory entry as alice got it while the phone was active. */
  let before: Json;

  beforeAll(async () => {
    proxy = await startProxy(inject('gatewayUrl'));
    [alice, bob] = await registerAll(proxy.url, 'alice', 'bob');
    phone = await link(proxy.url, bob, 'phone');
    await chatKnowsDevices(inject('databaseUrl'), [phone.deviceId]);
    chatId = (await alice.client.chats.createPersonal(bob.userId)).chatId;
    await alice.client.messages.send(chatId, 'to both of your devices');
    before = JSON.parse(proxy.log.findLast((x) => x.userId === alice.userId && paths.devices(bob.userId).test(x.path) && x.status === 200)!.clientBody);
    expect(wrappedTo(0)).toContain(phone.deviceId);

    await bob.client.devices.revoke(phone.deviceId);
    await chatKnowsDevices(inject('databaseUrl'), [phone.deviceId], 'revoked');
    const from = proxy.log.length;
    await restart(alice, proxy.url).client.messages.send(chatId, 'after the revocation'); // alice sees (and pins) the newer list
    expect(wrappedTo(from)).not.toContain(phone.deviceId);
  });
  afterEach(() => proxy.reset());
  afterAll(() => proxy?.close());

  /** Device ids alice's device wrapped message keys to since log index `from`. */
  function wrappedTo(from: number): string[] {
    return proxy.log
      .slice(from)
      .filter((x) => x.deviceId === alice.deviceId && x.method === 'POST' && x.path === `/v1/chats/${chatId}/messages`)
      .flatMap((x) => (JSON.parse(x.forwardedBody).wrapped_keys as Json[]).map((k) => k.device_id as string));
  }
  const phoneRecord = () => (before.devices as Json[]).find((d) => d.device_id === phone.deviceId);
  /** Alice's directory answers for bob get the phone back, and `list` as the signed device list. */
  const relist = (name: string, list: (current: Json) => Json) =>
    proxy.onResponse(name, { method: 'GET', path: paths.devices(bob.userId), userId: alice.userId }, (res) => {
      const body = { ...res.body, devices: [...res.body.devices, phoneRecord()] };
      const l = list(res.body.device_list);
      if (l === undefined) delete body.device_list;
      else body.device_list = l;
      return { body };
    });

  /** Under `rule`, a restarted alice's send is refused with device_list_rollback and wraps nothing. */
  async function expectRollbackRefused(rule: ReturnType<typeof relist>): Promise<void> {
    const from = proxy.log.length;
    const err = await failure(restart(alice, proxy.url).client.messages.send(chatId, 'not for the phone'));
    expect(rule.fired).toBeGreaterThan(0);
    expect(err).toBeInstanceOf(BilTrustError);
    expect(err.code).toBe('device_list_rollback');
    expect(wrappedTo(from)).toEqual([]);
    rule.remove();
  }

  it('the phone re-listed beside the current signed list: nothing is wrapped to it', async () => {
    const rule = relist('phone is back', (current) => current);
    const from = proxy.log.length;
    const result = await outcome(restart(alice, proxy.url).client.messages.send(chatId, 'not for the phone'));
    expect(rule.fired).toBeGreaterThan(0);
    expect(wrappedTo(from)).not.toContain(phone.deviceId); // a naive client wraps to it (and retries on mismatched_devices)
    expect(['ok', 'device_list_rollback']).toContain(result);
    rule.remove();
  });

  it('the phone re-listed with the older signed list that still had it: device_list_rollback', async () => {
    expect(before.device_list, 'the directory serves signed device lists (step 8)').toBeDefined();
    await expectRollbackRefused(relist('phone is back, old list', () => before.device_list));
  });

  it('the signed list left out after one was seen: device_list_rollback', async () => {
    await expectRollbackRefused(relist('phone is back, no list', () => undefined));
  });

  it('a linked device does not get the identity seed unless asked', async () => {
    const tablet = await link(proxy.url, bob, 'tablet');
    expect((await tablet.client.account())?.holdsIdentityKey).toBe(false);
  });
});
