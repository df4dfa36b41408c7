// Threat model, "the server can't": replay a message, forge or alter one,
// move a message to another chat or a wrapped key to another message or
// device. The server serves history (GET /v1/chats/{id}/messages); here it
// edits the pages one reader gets. Every such message must come out as the one
// failure marker, and the honest messages around it must still read.
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { link, paths, registerAll, texts, type Person } from '../harness/clients.js';
import { copy } from '../harness/forge.js';
import { startProxy, type Json, type MaliciousGateway } from '../harness/proxy.js';

describe('the server edits history', () => {
  let proxy: MaliciousGateway;
  let alice: Person;
  let bob: Person;
  let bobPhone: Person;

  beforeAll(async () => {
    proxy = await startProxy(inject('gatewayUrl'));
    [alice, bob] = await registerAll(proxy.url, 'alice', 'bob');
    bobPhone = await link(proxy.url, bob, 'phone');
  });
  afterEach(() => proxy.reset());
  afterAll(() => proxy?.close());

  /** A fresh personal chat of alice and bob with these messages from alice. */
  async function personal(...messages: string[]): Promise<string> {
    // One personal chat per pair: a fresh pair per case would cost registrations; use the seq range instead.
    const chat = await alice.client.chats.createPersonal(bob.userId);
    for (const m of messages) await alice.client.messages.send(chat.chatId, m);
    return chat.chatId;
  }
  const lastSeq = async (chatId: string) => (await alice.client.chats.get(chatId)).lastSeq;

  it('a replay: the history answer repeats an envelope at another seq', async () => {
    const chatId = await personal();
    const after = await lastSeq(chatId);
    await alice.client.messages.send(chatId, 'pay Mallory 10 €');
    await alice.client.messages.send(chatId, 'see you');
    const rule = proxy.onResponse('replay the first message', { method: 'GET', path: paths.messages(chatId), userId: bob.userId }, (res) => {
      const ms: Json[] = res.body.messages;
      const first = ms.find((m) => m.seq === after + 1);
      if (!first) return undefined;
      return { body: { ...res.body, messages: [...ms, { ...copy(first), seq: after + 3 }], last_seq: after + 3 } };
    });
    const page = await bob.client.messages.history(chatId, { after });
    expect(rule.fired).toBe(1);
    expect(texts(page.messages)).toEqual(['pay Mallory 10 €', 'see you', '<cannot_decrypt>']);
    rule.remove();
  });

  it('a ciphertext swapped between two messages fails both', async () => {
    const chatId = await personal();
    const after = await lastSeq(chatId);
    await alice.client.messages.send(chatId, 'yes');
    await alice.client.messages.send(chatId, 'no');
    const rule = proxy.onResponse('swap ciphertexts', { method: 'GET', path: paths.messages(chatId), userId: bob.userId }, (res) => {
      const [a, b] = res.body.messages as Json[];
      if (!a || !b) return undefined;
      [a.envelope.ciphertext, b.envelope.ciphertext] = [b.envelope.ciphertext, a.envelope.ciphertext];
      return { body: res.body };
    });
    expect(texts((await bob.client.messages.history(chatId, { after })).messages)).toEqual(['<cannot_decrypt>', '<cannot_decrypt>']);
    expect(rule.fired).toBe(1);
    rule.remove();
    // Served honestly, both read (the failed attempt didn't poison the replay state).
    expect(texts((await bob.client.messages.history(chatId, { after })).messages)).toEqual(['yes', 'no']);
  });

  it('a wrapped key moved to another device, or to another message, fails', async () => {
    const chatId = await personal();
    const after = await lastSeq(chatId);
    await alice.client.messages.send(chatId, 'first');
    await alice.client.messages.send(chatId, 'second');
    // The server knows every device's wrapped key: the sender posted them all.
    const posted = proxy.log.filter((x) => x.method === 'POST' && x.path === `/v1/chats/${chatId}/messages`).slice(-2);
    const laptopKey = (i: number) => (JSON.parse(posted[i]!.forwardedBody) as { wrapped_keys: Json[] }).wrapped_keys.find((k) => k.device_id === bob.deviceId).wrapped_key as string;
    const toPhone = proxy.onResponse("the laptop's wrapped keys for the phone", { method: 'GET', path: paths.messages(chatId), deviceId: bobPhone.deviceId }, (res) => {
      const ms: Json[] = res.body.messages;
      ms.forEach((m, i) => (m.wrapped_key = laptopKey(i)));
      return { body: res.body };
    });
    expect(texts((await bobPhone.client.messages.history(chatId, { after })).messages)).toEqual(['<cannot_decrypt>', '<cannot_decrypt>']);
    expect(toPhone.fired).toBe(1);
    toPhone.remove();

    const swapped = proxy.onResponse('wrapped keys swapped between messages', { method: 'GET', path: paths.messages(chatId), deviceId: bob.deviceId }, (res) => {
      const [a, b] = res.body.messages as Json[];
      [a.wrapped_key, b.wrapped_key] = [b.wrapped_key, a.wrapped_key];
      return { body: res.body };
    });
    expect(texts((await bob.client.messages.history(chatId, { after })).messages)).toEqual(['<cannot_decrypt>', '<cannot_decrypt>']);
    expect(swapped.fired).toBe(1);
    swapped.remove();
    // The phone still reads them with its own keys.
    expect(texts((await bobPhone.client.messages.history(chatId, { after })).messages)).toEqual(['first', 'second']);
  });

  describe('in groups', () => {
    let g1: string;
    let g2: string;

    beforeAll(async () => {
      g1 = (await alice.client.chats.createGroup({ title: 'one', members: [bob.userId] })).chatId;
      g2 = (await alice.client.chats.createGroup({ title: 'two', members: [bob.userId] })).chatId;
    });

    it('a signature swapped between two messages fails both', async () => {
      const s1 = await alice.client.messages.send(g1, 'meet at 5');
      await alice.client.messages.send(g1, 'meet at 6');
      const rule = proxy.onResponse('swap signatures', { method: 'GET', path: paths.messages(g1), userId: bob.userId }, (res) => {
        const [a, b] = res.body.messages as Json[];
        if (!a || !b) return undefined;
        [a.envelope.signature, b.envelope.signature] = [b.envelope.signature, a.envelope.signature];
        return { body: res.body };
      });
      expect(texts((await bob.client.messages.history(g1, { after: s1.seq - 1 })).messages)).toEqual(['<cannot_decrypt>', '<cannot_decrypt>']);
      expect(rule.fired).toBe(1);
      rule.remove();
    });

    it('an envelope moved to another chat fails', async () => {
      const inG1 = await alice.client.messages.send(g1, 'only for group one');
      const before = await alice.client.messages.send(g2, 'group two, honest');
      const rule = proxy.onResponse('a message of group one served in group two', { method: 'GET', path: paths.messages(g2), userId: bob.userId }, async (res) => {
        const source = await fetch(`${inject('gatewayUrl')}/v1/chats/${g1}/messages?after=${inG1.seq - 1}&limit=1`, {
          headers: { authorization: `Bearer ${(await alice.store.load())!.tokens!.accessToken}` },
        }).then((r) => r.json() as Promise<Json>);
        const moved = { ...source.messages[0], chat_id: g2, seq: before.seq + 1 };
        return { body: { ...res.body, messages: [...res.body.messages, moved], last_seq: before.seq + 1 } };
      });
      expect(texts((await bob.client.messages.history(g2, { after: before.seq - 1 })).messages)).toEqual(['group two, honest', '<cannot_decrypt>']);
      expect(rule.fired).toBe(1);
      rule.remove();
    });

    it('a replay in a group is marked too', async () => {
      const s = await alice.client.messages.send(g2, 'vote: yes');
      const rule = proxy.onResponse('replay a group message', { method: 'GET', path: paths.messages(g2), userId: bob.userId }, (res) => {
        const ms: Json[] = res.body.messages;
        return { body: { ...res.body, messages: [...ms, { ...copy(ms.at(-1)), seq: s.seq + 1 }] } };
      });
      expect(texts((await bob.client.messages.history(g2, { after: s.seq - 1 })).messages)).toEqual(['vote: yes', '<cannot_decrypt>']);
      expect(rule.fired).toBe(1);
      rule.remove();
    });
  });
});
