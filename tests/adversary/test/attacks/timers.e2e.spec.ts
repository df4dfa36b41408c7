// Issue 17 item 4: a chat's disappearing-message timer is what its people
// signed (a personal chat's statement, a group's epoch record), never the
// server's word. A server that rewrites the timer, strips or replays the
// statement, claims a group timer no record carries, or keeps messages past
// the verified timer is noticed (`timer-alert`, `chat.timer.alert`) or
// overruled (the verified timer is shown and applied); served honestly,
// nothing is raised.
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import type { TimerAlertEvent } from '@bil/sdk';
import { chatKnowsDevices, cli, paths, registerAll, unique, type Person } from '../harness/clients.js';
import { startProxy, type Json, type MaliciousGateway } from '../harness/proxy.js';

const DAY = 86_400_000;

describe('the server rewrites, strips or replays disappearing-message timers', () => {
  let proxy: MaliciousGateway;
  let alice: Person;
  let bob: Person;
  let chatId: string;
  const alerts: TimerAlertEvent[] = [];

  beforeAll(async () => {
    proxy = await startProxy(inject('gatewayUrl'));
    [alice, bob] = await registerAll(proxy.url, 'alice', 'bob');
    chatId = (await alice.client.chats.createPersonal(bob.userId)).chatId;
    bob.client.on('timer-alert', (e) => alerts.push(e));
  });
  afterEach(() => {
    proxy.reset();
    alerts.length = 0;
  });
  afterAll(async () => {
    await proxy?.close();
  });

  /** Bob's chat answers with `edit` applied. */
  const rewriteChat = (name: string, edit: (c: Json) => Json, id = chatId) =>
    proxy.onResponse(name, { method: 'GET', path: paths.chat(id), userId: bob.userId }, (res) => ({ body: { ...res.body, chat: edit(res.body.chat) } }));

  it('served honestly: the setter signs, the other person verifies; no alert', async () => {
    expect((await alice.client.chats.setTimer(chatId, DAY)).timer).toEqual({ ms: DAY, verified: true, serverMs: DAY, mismatch: false, alert: null });
    expect((await bob.client.chats.get(chatId)).timer).toEqual({ ms: DAY, verified: true, serverMs: DAY, mismatch: false, alert: null });
    expect(alerts).toEqual([]);
  });

  it('an unsigned change of the timer: the verified one is kept, with an alert', async () => {
    const rule = rewriteChat('rewrite the timer', (c) => ({ ...c, disappearing_ms: 30_000 }));
    expect((await bob.client.chats.get(chatId)).timer).toEqual({ ms: DAY, verified: true, serverMs: 30_000, mismatch: true, alert: 'server_differs' });
    expect(rule.fired).toBeGreaterThan(0);
    expect(alerts).toEqual([{ chatId, reason: 'server_differs', ms: DAY, serverMs: 30_000 }]);
  });

  it('a statement edited or re-signed by the server does not verify', async () => {
    rewriteChat('edit the statement', (c) => ({ ...c, disappearing_ms: 30_000, timer_statement: { ...c.timer_statement, payload: { ...c.timer_statement.payload, disappearing_ms: 30_000, version: 9 } } }));
    expect((await bob.client.chats.get(chatId)).timer).toMatchObject({ ms: DAY, alert: 'statement_invalid' });
  });

  it('the statement stripped, or an older one replayed: the pinned one stands', async () => {
    let older: Json;
    proxy.onResponse('keep the current statement', { method: 'GET', path: paths.chat(chatId), userId: bob.userId }, (res) => {
      older = res.body.chat.timer_statement;
      return undefined;
    });
    await bob.client.chats.get(chatId);
    expect(older.payload).toMatchObject({ disappearing_ms: DAY });
    proxy.reset();
    // Alice changes it to two days; bob verifies (and pins) the newer statement.
    await alice.client.chats.setTimer(chatId, 2 * DAY);
    expect((await bob.client.chats.get(chatId)).timer).toMatchObject({ ms: 2 * DAY, alert: null });

    rewriteChat('strip the statement', ({ timer_statement: _t, ...c }) => c);
    expect((await bob.client.chats.get(chatId)).timer).toMatchObject({ ms: 2 * DAY, verified: true, alert: 'statement_missing' });
    proxy.reset();
    rewriteChat('replay the older statement', (c) => ({ ...c, disappearing_ms: DAY, timer_statement: older }));
    expect((await bob.client.chats.get(chatId)).timer).toMatchObject({ ms: 2 * DAY, verified: true, serverMs: DAY, alert: 'statement_replayed' });
    expect(alerts.map((a) => a.reason)).toEqual(['statement_missing', 'statement_replayed']);
  });

  it("a group timer no signed record carries: the record's (none) stands, with an alert", async () => {
    const group = await alice.client.chats.createGroup({ title: 'Timers', members: [bob.userId] });
    rewriteChat('claim a group timer', (c) => ({ ...c, disappearing_ms: 60_000 }), group.chatId);
    expect((await bob.client.chats.get(group.chatId)).timer).toMatchObject({ ms: 0, verified: true, serverMs: 60_000, mismatch: true, alert: 'server_differs' });
    proxy.reset();
    // Set honestly by the admin (a signed record), it verifies.
    await alice.client.chats.setTimer(group.chatId, 60_000);
    expect((await bob.client.chats.get(group.chatId)).timer).toEqual({ ms: 60_000, verified: true, serverMs: 60_000, mismatch: false, alert: null });
  });

  it('messages kept past the verified timer are hidden by the client (those sent before it was set are not)', async () => {
    const [carol] = await registerAll(proxy.url, 'carol');
    const chat = await bob.client.chats.createPersonal(carol.userId);
    const before = await carol.client.messages.send(chat.chatId, 'sent before the timer: stays');
    await carol.client.chats.setTimer(chat.chatId, 30_000);
    const sent = await carol.client.messages.send(chat.chatId, 'should vanish in 30 s');
    // The server keeps it: no expiry in its database, none in what it returns.
    const db = new pg.Client({ connectionString: inject('databaseUrl') });
    await db.connect();
    try {
      await db.query(`UPDATE chat.messages SET expires_at = NULL WHERE chat_id = $1 AND seq = $2`, [chat.chatId, sent.seq]);
    } finally {
      await db.end();
    }
    expect((await bob.client.messages.history(chat.chatId)).messages.map((m) => m.seq)).toContain(sent.seq);
    await new Promise((r) => setTimeout(r, 31_000));
    const rule = proxy.onResponse('still returned', { method: 'GET', path: paths.messages(chat.chatId), userId: bob.userId }, (res) =>
      (res.body.messages as Json[]).some((m) => m.seq === sent.seq) ? { body: res.body } : undefined,
    );
    const shown = (await bob.client.messages.history(chat.chatId)).messages.map((m) => m.seq);
    expect(shown).not.toContain(sent.seq);
    expect(shown).toContain(before.seq);
    expect(rule.fired).toBeGreaterThan(0);
    const unread = await bob.client.unread({ messagesPerChat: 10 });
    expect(unread.chats.find((c) => c.chatId === chat.chatId)?.messages.map((m) => m.seq) ?? []).not.toContain(sent.seq);
  }, 80_000);

  it('the CLI shows the verified timer and warns when the server differs', async () => {
    const bil = cli(proxy.url);
    try {
      expect((await bil('register', unique('dora'))).code).toBe(0);
      const dora = (await bil.json('whoami')).json as { userId: string; deviceId: string };
      await chatKnowsDevices(inject('databaseUrl'), [dora.deviceId]);
      const chat = await bob.client.chats.createPersonal(dora.userId);
      const set = await bil.json('chat', 'timer', chat.chatId, '7d');
      expect(set.code, set.stderr).toBe(0);
      expect(set.json).toMatchObject({ disappearingMs: 7 * DAY, verified: true, alert: null });
      const rule = proxy.onResponse('rewrite for the CLI', { method: 'GET', path: paths.chat(chat.chatId), userId: dora.userId }, (res) => ({
        body: { ...res.body, chat: { ...res.body.chat, disappearing_ms: 30_000 } },
      }));
      const shown = await bil.json('chat', 'timer', chat.chatId);
      expect(shown.code, shown.stderr).toBe(0);
      expect(shown.json).toMatchObject({ disappearingMs: 7 * DAY, serverMs: 30_000, alert: 'server_differs' });
      expect(shown.stderr).toMatch(/another timer/);
      expect(rule.fired).toBeGreaterThan(0);
    } finally {
      bil.cleanup();
    }
  });
});
