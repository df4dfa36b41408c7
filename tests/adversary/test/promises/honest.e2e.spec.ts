// The control: an honest run through the proxy with no rules. Everything the
// attacks below break works here: register, personal chat, group, add,
// remove, send, history, live WebSocket; the SDK and the CLI. If this fails,
// the proxy (not the client) is at fault.
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { chatKnowsDevices, cli, goLive, registerAll, texts, unique, type Person, type Watch } from '../harness/clients.js';
import { startProxy, type MaliciousGateway } from '../harness/proxy.js';

describe('an honest server (the proxy passes everything on)', () => {
  let proxy: MaliciousGateway;
  let alice: Person;
  let bob: Person;
  let carol: Person;
  let watch: Watch | undefined;

  beforeAll(async () => {
    proxy = await startProxy(inject('gatewayUrl'));
    [alice, bob, carol] = await registerAll(proxy.url, 'alice', 'bob', 'carol');
  });
  afterEach(() => proxy.reset());
  afterAll(async () => {
    watch?.live.close();
    await proxy?.close();
  });

  it('personal chat: send and read both ways', async () => {
    const chat = await alice.client.chats.createPersonal(bob.userId);
    await alice.client.messages.send(chat.chatId, 'hello Bob');
    await bob.client.messages.send(chat.chatId, 'hi Alice');
    for (const p of [alice, bob]) expect(texts((await p.client.messages.history(chat.chatId)).messages)).toEqual(['hello Bob', 'hi Alice']);
  });

  it('group: create, add, remove, send, history, live', async () => {
    const group = await alice.client.chats.createGroup({ title: 'plans', members: [bob.userId] });
    watch = await goLive(bob);
    await alice.client.messages.send(group.chatId, 'one');
    await watch.until('bob sees "one" live', () => watch!.of('message').some((m) => m.text === 'one'));

    await alice.client.chats.members.add(group.chatId, [carol.userId]);
    await carol.client.messages.send(group.chatId, 'two, from carol');
    await watch.until('bob sees carol live', () => watch!.of('message').some((m) => m.text === 'two, from carol'));

    await alice.client.chats.members.remove(group.chatId, bob.userId);
    await alice.client.messages.send(group.chatId, 'three, bob is gone');

    expect(texts((await alice.client.messages.history(group.chatId)).messages)).toEqual(['one', 'two, from carol', 'three, bob is gone']);
    expect(texts((await carol.client.messages.history(group.chatId)).messages)).toEqual(['two, from carol', 'three, bob is gone']);
    expect(watch.of('undecryptable')).toEqual([]);
    expect((await alice.client.chats.get(group.chatId)).members.map((m) => m.userId).sort()).toEqual([alice.userId, carol.userId].sort());

    // It all went through the proxy, REST and WebSocket.
    expect(proxy.log.some((x) => x.method === 'POST' && x.path === `/v1/chats/${group.chatId}/messages`)).toBe(true);
    expect(proxy.frames.some((f) => f.direction === 'down' && f.frame.type === 'message' && f.frame.chat_id === group.chatId)).toBe(true);
  });

  it('the CLI: register, personal chat with an SDK user, send, history', async () => {
    const bil = cli(proxy.url);
    try {
      const name = unique('dora');
      expect((await bil('register', name)).code).toBe(0);
      const dora = (await bil.json('whoami')).json as { userId: string; deviceId: string };
      await chatKnowsDevices(inject('databaseUrl'), [dora.deviceId]);
      const chat = await alice.client.chats.createPersonal(dora.userId);
      await alice.client.messages.send(chat.chatId, 'hi Dora');
      const sent = await bil('send', chat.chatId, 'hi Alice, from the CLI');
      expect(sent.code, sent.stderr).toBe(0);
      const history = await bil.json('history', chat.chatId);
      expect(history.code, history.stderr).toBe(0);
      expect((history.json as { messages: { ok: boolean; text: string }[] }).messages.map((m) => m.text)).toEqual(['hi Dora', 'hi Alice, from the CLI']);
      expect(texts((await alice.client.messages.history(chat.chatId)).messages)).toEqual(['hi Dora', 'hi Alice, from the CLI']);
    } finally {
      bil.cleanup();
    }
  });
});
