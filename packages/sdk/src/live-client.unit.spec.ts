import { describe, expect, it } from 'vitest';
import type { HistoryMessage, MessagesApi } from './chats.js';
import { LiveClient, type LiveClientDeps, type LiveClientEvents } from './live-client.js';
import { FakeSocket } from './testing/fake-socket.js';
import type { MessageJson } from './wire.js';

class HelloSocket extends FakeSocket {
  constructor() {
    super();
    queueMicrotask(() => this.hello());
  }
}

const chat = '0190a0b0-0000-7000-8000-000000000001';
const me = { userId: '0190a0b0-0000-7000-8000-0000000000aa', deviceId: '0190a0b0-0000-7000-8000-0000000000ab' };
const frame = (seq: number) => ({ type: 'message', chat_id: chat, seq, message_id: `m${seq}`, sender_user_id: 'u', sender_device_id: 'd', epoch: 0, envelope: JSON.stringify({ n: seq }), wrapped_key: 'k', created_at: 'now' });
const opened = (m: { chat_id: string; seq: number; message_id: string }, bad = false): HistoryMessage =>
  bad
    ? { ok: false, error: 'cannot_decrypt', chatId: m.chat_id, seq: m.seq, messageId: m.message_id, senderUserId: 'u', senderDeviceId: 'd', epoch: 0, createdAt: 'now' }
    : { ok: true, chatId: m.chat_id, seq: m.seq, messageId: m.message_id, senderUserId: 'u', senderDeviceId: 'd', epoch: 0, timestamp: 0, createdAt: 'now', text: `t${m.seq}`, outgoing: false };
const tick = (ms = 10) => new Promise((r) => setTimeout(r, ms));

function setup(o: { historyFailures?: number } = {}) {
  let historyFailures = o.historyFailures ?? 0;
  const sockets: HelloSocket[] = [];
  const saved: Record<string, number> = {};
  const decrypted: MessageJson[] = [];
  const checked: string[] = [];
  const settled: string[] = [];
  const messages = {
    decrypt: async (m: MessageJson) => {
      decrypted.push(m);
      return opened(m, m.seq === 3);
    },
    history: async (_chatId: string, o?: { after?: number; limit?: number }) => {
      if (historyFailures-- > 0) throw new Error('503 service_unavailable');
      const from = (o?.after ?? 0) + 1;
      const seqs = Array.from({ length: o?.limit ?? 1 }, (_, i) => from + i);
      return { messages: seqs.map((seq) => opened({ chat_id: chat, seq, message_id: `m${seq}` })), hasMore: false, lastSeq: 99 };
    },
  } as unknown as MessagesApi;
  const deps: LiveClientDeps = {
    baseUrl: 'http://api.test',
    accessToken: async () => 'token',
    refreshToken: async () => 'token2',
    profile: async () => ({ ...me, cursors: { [chat]: 1 } }),
    saveCursors: async (c) => void Object.assign(saved, c),
    messages,
    checkContact: async (userId) => void checked.push(userId),
    onSafetyNumberChanged: () => () => undefined,
    digestSettled: (requestId) => void settled.push(requestId),
    contentUpdate: () => undefined,
  };
  const live = new LiveClient(deps, {
    webSocket: () => {
      const s = new HelloSocket();
      sockets.push(s);
      return s;
    },
    ackDelayMs: 1,
  });
  const log: Array<[string, unknown]> = [];
  for (const t of ['message', 'undecryptable', 'gap', 'synced', 'epoch', 'membership', 'digest', 'digest-policy'] as const) live.on(t, (e: LiveClientEvents[typeof t]) => log.push([t, e]));
  return { live, sockets, saved, decrypted, checked, settled, log };
}

describe('LiveClient', () => {
  it('decrypts through messages.decrypt, fills a gap from history in order, and keeps cursors', async () => {
    const { live, sockets, saved, decrypted, checked, log } = setup();
    await tick();
    expect(sockets[0]!.sent[0]).toEqual({ type: 'sync', cursors: { [chat]: 1 } });
    sockets[0]!.push(frame(2));
    sockets[0]!.push(frame(3));
    sockets[0]!.push({ type: 'synced', cursors: {} });
    sockets[0]!.push(frame(6));
    for (let i = 0; i < 200 && (log.length < 7 || checked.length < 1 || !sockets[0]!.sent.some((f) => f.type === 'ack' && f.seq === 6)); i++) await tick(5);
    expect(decrypted[0]).toMatchObject({ chat_id: chat, seq: 2, envelope: { n: 2 }, wrapped_key: 'k' });
    expect(log.map(([t, e]) => `${t}:${(e as { seq?: number }).seq ?? ''}`)).toEqual(['message:2', 'undecryptable:3', 'synced:', 'gap:', 'message:4', 'message:5', 'message:6']);
    expect(saved[chat]).toBe(6);
    expect(live.cursors()).toEqual({ [chat]: 6 });
    expect(checked).toEqual(['u']); // an undecryptable personal message: the sender's pin is checked
    expect(sockets[0]!.sent.filter((f) => f.type === 'ack').at(-1)).toEqual({ type: 'ack', chat_id: chat, seq: 6 });
    live.close();
  });

  it('shows a message once when a gap history could not fill is filled later (found by npm run faults, Redis down)', async () => {
    const { live, sockets, log } = setup({ historyFailures: 1 });
    await tick();
    sockets[0]!.push({ type: 'synced', cursors: {} });
    sockets[0]!.push(frame(4)); // 2-3 missing, history unavailable: 4 is shown beyond the gap
    for (let i = 0; i < 100 && !log.some(([t]) => t === 'message'); i++) await tick(5);
    sockets[0]!.push(frame(5)); // history is back: 2-4 fetched, 4 already shown
    for (let i = 0; i < 200 && !log.some(([t, e]) => t === 'message' && (e as { seq: number }).seq === 5); i++) await tick(5);
    await tick(20);
    expect(log.filter(([t]) => t === 'message').map(([, e]) => (e as { seq: number }).seq)).toEqual([4, 2, 3, 5]);
    expect(live.cursors()).toEqual({ [chat]: 5 });
    live.close();
  });

  it('maps key and membership events', async () => {
    const { live, sockets, log } = setup();
    await tick();
    sockets[0]!.push({ type: 'chat_event', event: 'epoch_published', chat_id: chat, data: { epoch: 2 } });
    sockets[0]!.push({ type: 'chat_event', event: 'member_removed', chat_id: chat, data: { user_id: 'x' } });
    // A delivery node from before data followed the REST conventions sends the epoch as a string.
    sockets[0]!.push({ type: 'chat_event', event: 'epoch_keys_added', chat_id: chat, data: { epoch: '3' } });
    sockets[0]!.push({ type: 'chat_event', event: 'epoch_keys_added', chat_id: chat, data: { epoch: 'x' } });
    await tick();
    expect(log).toEqual([
      ['epoch', { chatId: chat, event: 'epoch_published', epoch: 2, data: { epoch: 2 } }],
      ['membership', { chatId: chat, event: 'member_removed', userId: 'x', data: { user_id: 'x' } }],
      ['epoch', { chatId: chat, event: 'epoch_keys_added', epoch: 3, data: { epoch: '3' } }],
      ['epoch', { chatId: chat, event: 'epoch_keys_added', data: { epoch: 'x' } }],
    ]);
    live.close();
  });

  it('maps digest outcomes (waking client.digest()) and digest policy changes; ignores unknown digest events', async () => {
    const { live, sockets, settled, log } = setup();
    await tick();
    sockets[0]!.push({ type: 'digest', event: 'ready', request_id: 'r1', chat_ids: [chat], method: 'extractive', expires_at: 'later' });
    sockets[0]!.push({ type: 'digest', event: 'failed', request_id: 'r2', reason: 'timeout' });
    sockets[0]!.push({ type: 'digest', event: 'policy_changed', chat_id: chat, user_id: 'x', enabled: false, disabled_by_count: 1 });
    sockets[0]!.push({ type: 'digest', event: 'something_newer', request_id: 'r3' });
    await tick();
    expect(settled).toEqual(['r1', 'r2']);
    expect(log).toEqual([
      ['digest', { requestId: 'r1', status: 'ready', chatIds: [chat] }],
      ['digest', { requestId: 'r2', status: 'failed', chatIds: [], reason: 'timeout' }],
      ['digest-policy', { chatId: chat, userId: 'x', enabled: false, disabledByCount: 1 }],
    ]);
    live.close();
  });
});
