// Threat model, "the server can't": add a member to a group. Epoch records
// are signed by member devices and verified as a chain; the server serves them
// (GET /v1/chats/{id}/keys) and here alters one. The client refuses the chain:
// it reads nothing under it and sends nothing.
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { BilError, type HistoryPage } from '@bil/sdk/node';
import { paths, registerAll, restart, texts, type Person } from '../harness/clients.js';
import { flip, serverDevice, serverIdentity } from '../harness/forge.js';
import { startProxy, type Json, type MaliciousGateway } from '../harness/proxy.js';

describe('the server alters epoch records', () => {
  let proxy: MaliciousGateway;
  let alice: Person;
  let bob: Person;
  let chatId: string;

  beforeAll(async () => {
    proxy = await startProxy(inject('gatewayUrl'));
    [alice, bob] = await registerAll(proxy.url, 'alice', 'bob');
    chatId = (await alice.client.chats.createGroup({ title: 'records', members: [bob.userId] })).chatId;
    await alice.client.messages.send(chatId, 'under epoch 1');
  });
  afterEach(() => proxy.reset());
  afterAll(() => proxy?.close());

  const postsBy = (p: Person) => proxy.log.filter((x) => x.method === 'POST' && x.path === `/v1/chats/${chatId}/messages` && x.deviceId === p.deviceId).length;

  /** Bob, freshly started (no chain loaded), reads and tries to send while the server serves edited records. */
  async function bobUnder(name: string, edit: (record: Json) => void): Promise<void> {
    const rule = proxy.onResponse(name, { method: 'GET', path: paths.keys(chatId), userId: bob.userId }, (res) => {
      const first = (res.body.epochs as Json[]).find((e) => e.epoch === 1);
      if (!first) return undefined;
      edit(first.record);
      return { body: res.body };
    });
    const app = restart(bob, proxy.url);
    const sent = postsBy(bob);
    // Either the whole page is refused (a BilTrustError) or every message under the chain is marked.
    const page = await app.client.messages.history(chatId).catch((e: unknown) => e);
    if (page instanceof Error) expect(page).toBeInstanceOf(BilError);
    else expect((page as HistoryPage).messages.map((m) => m.ok)).toEqual([false]);
    await expect(app.client.messages.send(chatId, 'must not go out')).rejects.toThrow();
    expect(rule.fired).toBeGreaterThan(0);
    expect(postsBy(bob)).toBe(sent);
    rule.remove();
  }

  it('a record whose signature is altered is refused', async () => {
    await bobUnder('flip a signature byte', (record) => (record.signature = flip(record.signature)));
  });

  it('a record the server extended with a member of its own (unsigned change) is refused', async () => {
    const mallory = await serverDevice(crypto.randomUUID(), serverIdentity(), 'mallory');
    await bobUnder('add mallory to the genesis record', (record) => {
      const m = {
        user_id: mallory.user_id,
        role: 'admin',
        identity_key: serverIdentity().key,
        devices: [{ device_id: mallory.device_id, encryption_key: mallory.encryption_key, signing_key: mallory.signing_key, issued_at: mallory.certificate_issued_at, certificate: mallory.certificate }],
      };
      record.payload.members = [...record.payload.members, m].sort((a: Json, b: Json) => (a.user_id < b.user_id ? -1 : 1));
    });
  });

  it('served honestly again, the same device reads and sends', async () => {
    const app = restart(bob, proxy.url);
    expect(texts((await app.client.messages.history(chatId)).messages)).toEqual(['under epoch 1']);
    await app.client.messages.send(chatId, 'bob, honest server');
    expect(texts((await alice.client.messages.history(chatId)).messages)).toEqual(['under epoch 1', 'bob, honest server']);
  });
});
