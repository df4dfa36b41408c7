// Messaging through the real stack with the SDK: identity, chat and gateway
// as built processes on the local PostgreSQL, Redis and NATS. Every message
// is encrypted and decrypted by the SDK; the server only ever sees envelopes.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BilApiError, BilClient, type HistoryMessage, type MessageJson } from '../src/index.js';
import { encryptDirectMessage, importDevicePrivateKeys, utf8, verifyDevice, type DeviceRecord } from '@bil/crypto';
import pg from 'pg';
import { chatStackBuilt, startStack, type Stack } from './stack.js';
import { people, type Device } from './people.js';


const texts = (messages: HistoryMessage[]) => messages.map((m) => (m.ok ? m.text : `<${m.error}>`));

describe.skipIf(!chatStackBuilt)('@bil/sdk chats and messages against identity + chat + gateway (e2e)', () => {
  let stack: Stack;
  /** Polls the chat service's device directory (its own schema) until it lists the device. */
  const waitForChatDirectory = async (deviceId: string) => {
    const db = new pg.Client({ connectionString: stack.env.databaseUrl });
    await db.connect();
    try {
      for (let i = 0; i < 100; i++) {
        const { rowCount } = await db.query('SELECT 1 FROM chat.directory_devices WHERE device_id = $1', [deviceId]);
        if (rowCount) return;
        await new Promise((r) => setTimeout(r, 50));
      }
      throw new Error('the chat service never learned of the device');
    } finally {
      await db.end();
    }
  };
  const { newClient, register, link } = people(() => stack.baseUrl);

  /** Raw authenticated request with a device's current access token. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  async function raw(d: Device, method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
    const token = (await d.store.load())!.tokens!.accessToken;
    const res = await fetch(`${stack.baseUrl}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined };
  }

  let alice: Device;
  let alicePhone: Device;
  let bob: Device;
  let bobPhone: Device;
  let carol: Device;
  let dave: Device;
  let erin: Device;
  let mallory: Device;
  let personalId: string;

  beforeAll(async () => {
    stack = await startStack({}, { chat: true });
    const people = await Promise.all(['alice', 'bob', 'carol', 'dave', 'erin', 'mallory'].map(register));
    [alice, bob, carol, dave, erin, mallory] = people as [Device, Device, Device, Device, Device, Device];
    [alicePhone, bobPhone] = await Promise.all([link(alice, 'phone'), link(bob, 'phone')]);
  }, 120_000);

  afterAll(async () => {
    await stack?.stop();
  });

  it('personal chat: both users with two devices each, all four devices decrypt', async () => {
    const chat = await alice.client.chats.createPersonal(bob.account.userId);
    personalId = chat.chatId;
    expect(chat).toMatchObject({ type: 'personal', peerUserId: bob.account.userId, lastSeq: 0 });
    // The same chat from the other side.
    expect((await bob.client.chats.createPersonal(alice.account.userId)).chatId).toBe(personalId);

    const first = await alice.client.messages.send(personalId, 'hello Bob 👋');
    expect(first).toMatchObject({ seq: 1, duplicate: false });
    const reply = await bobPhone.client.messages.send(personalId, 'hi Alice, from my phone');
    expect(reply.seq).toBe(2);

    for (const d of [alice, alicePhone, bob, bobPhone]) {
      const page = await d.client.messages.history(personalId);
      expect(texts(page.messages), d.account.deviceName).toEqual(['hello Bob 👋', 'hi Alice, from my phone']);
      expect(page.messages.map((m) => m.ok && m.senderDeviceId)).toEqual([alice.account.deviceId, bobPhone.account.deviceId]);
      expect(page.lastSeq).toBe(2);
    }
    // Reading history again is not a replay.
    expect(texts((await bob.client.messages.history(personalId, { after: 0 })).messages)).toHaveLength(2);
    expect((await bob.client.messages.history(personalId, { after: 1 })).messages.map((m) => m.seq)).toEqual([2]);
    expect((await bob.client.messages.history(personalId, { before: 2 })).messages.map((m) => m.seq)).toEqual([1]);

    // Unread counts and read markers (sending moves the sender's own marker).
    expect(await alice.client.unread()).toEqual({
      total: 1,
      unreadChats: 1,
      nextPageToken: '',
      chats: [expect.objectContaining({ chatId: personalId, type: 'personal', unreadCount: 1, firstUnreadSeq: 2, lastSeq: 2 })],
    });
    expect(await alice.client.messages.markRead(personalId, 2)).toEqual({ lastReadSeq: 2, unreadCount: 0 });
    expect(await alice.client.messages.markRead(personalId, 1)).toEqual({ lastReadSeq: 2, unreadCount: 0 });
    expect((await alice.client.unread()).total).toBe(0);
    const listed = await bob.client.chats.list({ type: 'personal' });
    expect(listed.chats.map((c) => c.chatId)).toContain(personalId);
  });

  it('a device linked later: the mismatched_devices answer makes the sender refresh (verified) and retry', async () => {
    // Alice's client has Bob's two devices cached; Bob links a third.
    const bobTablet = await link(bob, 'tablet');
    // The chat service learns of new devices from identity's events, a moment
    // after the registration answered; until then it accepts keys for the
    // devices it knows. Wait for its directory, as that race is not what this
    // test is about.
    await waitForChatDirectory(bobTablet.account.deviceId);
    const sent = await alice.client.messages.send(personalId, 'three devices now');
    expect(sent.duplicate).toBe(false);
    for (const d of [bob, bobPhone, bobTablet, alicePhone]) {
      const page = await d.client.messages.history(personalId, { after: sent.seq - 1 });
      expect(texts(page.messages), d.account.deviceName).toEqual(['three devices now']);
    }
    // A device added later gets no key for what was sent before it existed.
    const older = await bobTablet.client.messages.history(personalId, { before: sent.seq });
    expect(older.messages.every((m) => !m.ok)).toBe(true);
    expect(older.messages.length).toBeGreaterThan(0);
  });

  it('resending with the same message id is idempotent', async () => {
    const sent = await alicePhone.client.messages.send(personalId, 'only once');
    const again = await alicePhone.client.messages.send(personalId, 'only once', { messageId: sent.messageId });
    expect(again).toMatchObject({ messageId: sent.messageId, seq: sent.seq, duplicate: true });
    const page = await bob.client.messages.history(personalId, { after: sent.seq - 1 });
    expect(page.messages.map((m) => [m.seq, m.messageId])).toEqual([[sent.seq, sent.messageId]]);
    // The counter of the resend was the original's: no gap for recipients.
    expect(await bob.client.messages.gaps(personalId)).toEqual([]);
  });

  it('a message is refused when the server changes it, and marked per message without losing the page', async () => {
    // (The raw page carries the wrapped keys of Alice's laptop, so the laptop's client opens them.)
    const page = await raw(alice, 'GET', `/v1/chats/${personalId}/messages?after=0`);
    const m = page.body.messages.find((x: MessageJson) => x.sender_device_id === bobPhone.account.deviceId) as MessageJson;
    const forged: MessageJson = { ...m, seq: 99 }; // the same envelope at another seq: a replay
    expect(await alice.client.messages.decrypt(forged)).toMatchObject({ ok: false, error: 'cannot_decrypt' });
    const env = m.envelope as { header: Record<string, unknown> };
    const tampered: MessageJson = { ...m, envelope: { ...env, header: { ...env.header, counter: 77 } } };
    expect(await alice.client.messages.decrypt(tampered)).toMatchObject({ ok: false, error: 'cannot_decrypt', seq: m.seq });
    const swapped: MessageJson = { ...m, wrapped_key: page.body.messages[0].wrapped_key };
    expect(await alice.client.messages.decrypt(swapped)).toMatchObject({ ok: false, error: 'cannot_decrypt' });
    // The genuine message still opens (reading it again at its seq is not a replay).
    expect(await alice.client.messages.decrypt(m)).toMatchObject({ ok: true, text: 'hi Alice, from my phone' });
    // Equivocation: Bob's phone signs a second envelope under the same message id and counter. Validly signed
    // and served at the same seq, it is still a replay: a re-read is the same envelope (protocol.md, "Replay and gaps").
    const bobProfile = (await bobPhone.store.load())!;
    const sender = { userId: bobProfile.userId, deviceId: bobProfile.deviceId, keys: await importDevicePrivateKeys(bobProfile.deviceKeys) };
    const directory = (await raw(alice, 'GET', `/v1/users/${alice.account.userId}/devices`)).body;
    const laptop = directory.devices.find((d: { device_id: string }) => d.device_id === alice.account.deviceId);
    const record: DeviceRecord = {
      device_id: laptop.device_id,
      user_id: laptop.user_id,
      identity_key: directory.identity_key,
      encryption_key: laptop.encryption_key,
      signing_key: laptop.signing_key,
      issued_at: laptop.certificate_issued_at,
      certificate: laptop.certificate,
    };
    const h = env.header as { message_id: string; counter: number; timestamp: number };
    const twin = await encryptDirectMessage({
      sender,
      chatId: personalId,
      messageId: h.message_id,
      counter: h.counter,
      timestamp: h.timestamp,
      plaintext: utf8('something else'),
      recipients: [await verifyDevice(record, directory.identity_key)],
      recipientUserId: alice.account.userId,
    });
    const equivocated: MessageJson = { ...m, envelope: twin.envelope as never, wrapped_key: twin.wrapped_keys[0]!.wrapped_key };
    expect(await alice.client.messages.decrypt(equivocated)).toMatchObject({ ok: false, error: 'cannot_decrypt', seq: m.seq });
    // A new client on the same key store (a restart) still tells the two apart.
    const restarted = new BilClient({ baseUrl: stack.baseUrl, keyStore: alice.store });
    expect(await restarted.messages.decrypt(m)).toMatchObject({ ok: true, text: 'hi Alice, from my phone' });
    expect(await restarted.messages.decrypt(equivocated)).toMatchObject({ ok: false, error: 'cannot_decrypt' });
  });

  it('the sending device reads its own messages after a restart: each carries a key wrapped to it too', async () => {
    const sent = await alice.client.messages.send(personalId, 'note to self, and to Bob');
    const own = (await raw(alice, 'GET', `/v1/chats/${personalId}/messages?after=${sent.seq - 1}`)).body.messages[0] as MessageJson;
    expect(own).toMatchObject({ seq: sent.seq, sender_device_id: alice.account.deviceId });
    expect(own.wrapped_key).not.toBe('');
    // A restart: a new client on the same key store, which remembers no text it sent.
    const restarted = newClient(alice.store).client;
    const page = await restarted.messages.history(personalId, { after: 0, limit: 200 });
    const mine = page.messages.filter((m) => m.senderDeviceId === alice.account.deviceId);
    expect(texts(mine)).toEqual(['hello Bob 👋', 'three devices now', 'note to self, and to Bob']);
    expect(mine.every((m) => m.ok && m.outgoing)).toBe(true);
    // The other devices read it as before.
    expect(texts((await bobPhone.client.messages.history(personalId, { after: sent.seq - 1 })).messages)).toEqual(['note to self, and to Bob']);
  });

  it('group of five: members decrypt; a removed member can neither fetch nor decrypt what follows', async () => {
    const group = await alice.client.chats.createGroup({
      title: 'Five',
      members: [bob.account.userId, carol.account.userId, dave.account.userId, erin.account.userId],
    });
    expect(group).toMatchObject({ type: 'group', title: 'Five', epoch: 1, memberCount: 5, myRole: 'owner' });
    const gid = group.chatId;

    await alice.client.messages.send(gid, 'welcome, all five');
    await erin.client.messages.send(gid, 'thanks, Erin here');
    for (const d of [alice, alicePhone, bob, bobPhone, carol, dave, erin]) {
      expect(texts((await d.client.messages.history(gid)).messages), d.account.username).toEqual(['welcome, all five', 'thanks, Erin here']);
    }

    // Remove Erin with the next epoch in the same step.
    expect(await alice.client.chats.members.remove(gid, erin.account.userId)).toEqual({ epoch: 2, epochRotationRequired: false });
    const after = await alice.client.messages.send(gid, 'Erin is gone');
    const keys = await raw(alice, 'GET', `/v1/chats/${gid}/keys`);
    expect(keys.body.current_epoch).toBe(2);
    const listed = keys.body.epochs[1].record.payload.members.map((m: { user_id: string }) => m.user_id);
    expect(listed).not.toContain(erin.account.userId);
    expect(listed).toHaveLength(4);

    // Erin: no history, no keys, no chat.
    for (const call of [
      () => erin.client.messages.history(gid),
      () => erin.client.chats.get(gid),
      () => erin.client.messages.send(gid, 'still here?'),
    ]) {
      await expect(call()).rejects.toSatisfy((e) => e instanceof BilApiError && (e.status === 404 || e.status === 403));
    }
    expect((await raw(erin, 'GET', `/v1/chats/${gid}/keys`)).status).toBe(404);
    // Even handed the envelope, Erin's device holds no key for epoch 2.
    const page = await raw(bob, 'GET', `/v1/chats/${gid}/messages?after=${after.seq - 1}`);
    const msg = page.body.messages[0] as MessageJson;
    expect(msg.epoch).toBe(2);
    expect(await erin.client.messages.decrypt(msg)).toMatchObject({ ok: false, error: 'cannot_decrypt' });
    for (const d of [bob, carol, dave, alicePhone]) {
      expect(texts((await d.client.messages.history(gid, { after: after.seq - 1 })).messages)).toEqual(['Erin is gone']);
    }

    // Bob becomes an admin (published in an epoch); Dave leaves; Bob's next
    // send rotates the epoch the leave made necessary.
    expect(await alice.client.chats.members.changeRole(gid, bob.account.userId, 'admin')).toMatchObject({ role: 'admin' });
    await dave.client.chats.members.leave(gid);
    expect((await bob.client.chats.get(gid)).epochRotationRequired).toBe(true);
    const bobSays = await bob.client.messages.send(gid, 'Dave left, new epoch');
    const chat = await carol.client.chats.get(gid);
    expect(chat).toMatchObject({ epochRotationRequired: false, memberCount: 3 });
    expect(chat.epoch).toBeGreaterThanOrEqual(4);
    expect(texts((await carol.client.messages.history(gid, { after: bobSays.seq - 1 })).messages)).toEqual(['Dave left, new epoch']);
    expect(texts((await alicePhone.client.messages.history(gid, { after: bobSays.seq - 1 })).messages)).toEqual(['Dave left, new epoch']);
    await expect(dave.client.messages.history(gid)).rejects.toMatchObject({ status: 404 });
  }, 60_000);

  it("a device linked later reads a group at once (its account's listed device hands it the epoch key); it sends once an admin's device lists it", async () => {
    const group = await alice.client.chats.createGroup({ title: 'Linked later', members: [bob.account.userId, carol.account.userId] });
    const gid = group.chatId;
    await alice.client.messages.send(gid, 'before the new devices');

    // Bob, a plain member, links another laptop; his first device's next use of the group hands it the current key (AddEpochKeys).
    const bobLaptop = await link(bob, 'second laptop');
    expect(texts((await bob.client.messages.history(gid)).messages)).toEqual(['before the new devices']);
    const epochs = await raw(bobLaptop, 'GET', `/v1/chats/${gid}/keys`);
    expect(epochs.body.current_epoch).toBe(1);
    const listed = epochs.body.epochs[0].record.payload.members.flatMap((m: { devices: { device_id: string }[] }) => m.devices.map((d) => d.device_id));
    expect(listed).not.toContain(bobLaptop.account.deviceId);
    expect(epochs.body.epochs[0].wrapped_key).not.toBe('');
    // Not listed, it still reads the epoch: it proves it is a certified device of a listed member.
    expect(texts((await bobLaptop.client.messages.history(gid)).messages)).toEqual(['before the new devices']);
    // ...but can't send in it, and Bob's client can't list it (he is not an admin).
    await expect(bobLaptop.client.messages.send(gid, 'too early')).rejects.toMatchObject({ code: 'not_in_epoch' });

    // Alice, the owner, links a tablet: her laptop hands it the key and publishes the next epoch, which lists it (and Bob's new laptop).
    const aliceTablet = await link(alice, 'tablet');
    await alice.client.messages.send(gid, 'the next epoch lists you both');
    expect((await alice.client.chats.get(gid)).epoch).toBe(2);
    expect(texts((await aliceTablet.client.messages.history(gid)).messages)).toEqual(['before the new devices', 'the next epoch lists you both']);
    await aliceTablet.client.messages.send(gid, 'hello from the tablet');
    await bobLaptop.client.messages.send(gid, 'and from the second laptop');
    const all = ['before the new devices', 'the next epoch lists you both', 'hello from the tablet', 'and from the second laptop'];
    for (const d of [carol, bob, bobLaptop, aliceTablet, alicePhone]) {
      expect(texts((await d.client.messages.history(gid)).messages), d.account.deviceName).toEqual(all);
    }
  }, 60_000);

  it('20 concurrent senders into one chat: a gap-free sequence without duplicates', async () => {
    const extra = await Promise.all(Array.from({ length: 12 }, (_, i) => register(`crowd${i}`)));
    const senders = [alice, alicePhone, bob, bobPhone, carol, dave, erin, mallory, ...extra];
    expect(senders).toHaveLength(20);
    const userIds = [...new Set(senders.map((d) => d.account.userId))].filter((u) => u !== alice.account.userId);
    const group = await alice.client.chats.createGroup({ title: 'Crowd', members: userIds });
    const results = await Promise.all(senders.map((d, i) => d.client.messages.send(group.chatId, `message ${i}`)));
    expect(results.map((r) => r.seq).sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    const page = await carol.client.messages.history(group.chatId, { after: 0, limit: 200 });
    expect(page.messages.map((m) => m.seq)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    expect(new Set(page.messages.map((m) => m.messageId)).size).toBe(20);
    expect(texts(page.messages).sort()).toEqual(Array.from({ length: 20 }, (_, i) => `message ${i}`).sort());
  }, 60_000);

  it('a non-member gets 404 (or 403) from every chat route', async () => {
    const m = mallory;
    await expect(m.client.chats.get(personalId)).rejects.toMatchObject({ status: 404, code: 'chat_not_found' });
    await expect(m.client.messages.history(personalId)).rejects.toMatchObject({ status: 404 });
    await expect(m.client.messages.send(personalId, 'let me in')).rejects.toMatchObject({ status: 404 });
    await expect(m.client.messages.markRead(personalId, 1)).rejects.toMatchObject({ status: 404 });
    for (const [method, path, body] of [
      ['GET', `/v1/chats/${personalId}`],
      ['GET', `/v1/chats/${personalId}/messages`],
      ['POST', `/v1/chats/${personalId}/read`, { seq: 1 }],
      ['GET', `/v1/chats/${personalId}/keys`],
      ['DELETE', `/v1/chats/${personalId}`],
      ['DELETE', `/v1/chats/${personalId}/members/${alice.account.userId}`],
      ['PATCH', `/v1/chats/${personalId}/members/${alice.account.userId}`, { role: 'admin' }],
    ] as const) {
      const res = await raw(m, method, path, body);
      expect([403, 404], `${method} ${path}: ${JSON.stringify(res.body)}`).toContain(res.status);
    }
    expect((await m.client.chats.list({ type: 'personal' })).chats.map((c) => c.chatId)).not.toContain(personalId);
  });
});
