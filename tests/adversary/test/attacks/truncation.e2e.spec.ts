// Issue 12, "Why" 8 (first half): truncation is invisible. The server drops a
// message in the middle of a history page, drops the tail, or forges a live
// frame's seq (+1000) so the saved cursor jumps and later live messages of
// the chat are skipped. Step 8: history (SDK and `bil history`) marks the
// missing messages (`gaps`), and a live frame can't move the cursor past
// what was verified.
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { chatKnowsDevices, cli, goLive, loose, paths, registerAll, texts, unique, type Cli, type Person, type Watch } from '../harness/clients.js';
import { startProxy, type Json, type MaliciousGateway } from '../harness/proxy.js';

describe('the server truncates what a reader sees', () => {
  let proxy: MaliciousGateway;
  let alice: Person;
  let bob: Person;
  let chatId: string;
  let watch: Watch | undefined;

  beforeAll(async () => {
    proxy = await startProxy(inject('gatewayUrl'));
    [alice, bob] = await registerAll(proxy.url, 'alice', 'bob');
    chatId = (await alice.client.chats.createPersonal(bob.userId)).chatId;
  });
  afterEach(() => proxy.reset());
  afterAll(async () => {
    watch?.live.close();
    await proxy?.close();
  });

  const send = async (...texts: string[]) => {
    const seqs: number[] = [];
    for (const t of texts) seqs.push((await alice.client.messages.send(chatId, t)).seq);
    return seqs;
  };
  /** Bob's history pages lose the messages at these seqs. */
  const drop = (name: string, seqs: number[], extra: (body: Json) => Json = (b) => b) =>
    proxy.onResponse(name, { method: 'GET', path: paths.messages(chatId), userId: bob.userId }, (res) => {
      const messages = (res.body.messages as Json[]).filter((m) => !seqs.includes(m.seq));
      if (messages.length === res.body.messages.length) return undefined;
      return { body: extra({ ...res.body, messages }) };
    });

  it('a message dropped in the middle: history marks the gap', async () => {
    const [a, b] = await send('one', 'two (dropped)', 'three');
    const rule = drop('drop the middle one', [b!]);
    const page = await bob.client.messages.history(chatId, { after: a! - 1 });
    expect(rule.fired).toBe(1);
    expect(texts(page.messages)).toEqual(['one', 'three']);
    expect(loose(page).gaps, 'history(...).gaps').toBeInstanceOf(Array);
    expect(loose(page).gaps.length).toBeGreaterThan(0);
  });

  it('a dropped tail (the page ends early, last_seq says more exist): history marks it', async () => {
    const [a, , c] = await send('four', 'five', 'six (dropped)');
    const rule = drop('drop the tail', [c!]);
    const page = await bob.client.messages.history(chatId, { after: a! - 1 });
    expect(rule.fired).toBe(1);
    expect(texts(page.messages)).toEqual(['four', 'five']);
    expect(page.lastSeq).toBe(c);
    expect(loose(page).gaps?.length ?? 0).toBeGreaterThan(0);
  });

  it('a live frame with a forged seq (+1000) does not move the cursor: later live messages still show', async () => {
    watch = await goLive(bob);
    const forge = proxy.onFrame('seq + 1000', 'down', (f) => (f.type === 'message' && f.chat_id === chatId ? { ...f, seq: f.seq + 1000 } : undefined), { userId: bob.userId, times: 1 });
    const [forged] = await send('live one (forged seq)');
    await watch.until('the forged frame to be handled', () => forge.fired === 1 && watch!.of('message').some((m) => m.text === 'live one (forged seq)'));
    const [later] = await send('live two');
    await watch.until('"live two" live', () => watch!.of('message').some((m) => m.text === 'live two'), 10_000);
    const cursor = (await bob.store.load())!.cursors?.[chatId];
    expect(cursor).toBeLessThanOrEqual(later!);
    expect(cursor).toBeGreaterThanOrEqual(forged!);
  });

  describe('bil history', () => {
    let bil: Cli;
    let doraChat: string;

    beforeAll(async () => {
      bil = cli(proxy.url);
      expect((await bil('register', unique('dora'))).code).toBe(0);
      const dora = (await bil.json('whoami')).json as { userId: string; deviceId: string };
      await chatKnowsDevices(inject('databaseUrl'), [dora.deviceId]);
      doraChat = (await alice.client.chats.createPersonal(dora.userId)).chatId;
    });
    afterAll(() => bil?.cleanup());

    it('marks a message the server dropped', async () => {
      const seqs: number[] = [];
      for (const t of ['a', 'b (dropped)', 'c']) seqs.push((await alice.client.messages.send(doraChat, t)).seq);
      const rule = proxy.onResponse('drop b for dora', { method: 'GET', path: paths.messages(doraChat) }, (res) => ({
        body: { ...res.body, messages: (res.body.messages as Json[]).filter((m) => m.seq !== seqs[1]) },
      }));
      const r = await bil.json('history', doraChat);
      expect(rule.fired).toBeGreaterThan(0);
      expect(r.code, r.stderr).toBe(0);
      const out = r.json as Json;
      expect(out.messages.map((m: Json) => m.text)).toEqual(['a', 'c']);
      expect(out.gaps?.length ?? 0, '`bil --json history` lists the gap').toBeGreaterThan(0);
      const human = await bil('history', doraChat, '--no-mark-read');
      expect(human.stdout).toMatch(/missing|gap/i);
    });
  });
});
