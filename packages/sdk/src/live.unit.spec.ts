import { describe, expect, it } from 'vitest';
import { LiveConnection, MemoryCursorStore } from './live.js';
import { FakeSocket } from './testing/fake-socket.js';

class UrlSocket extends FakeSocket {
  constructor(
    readonly url: string,
    readonly protocols: string[],
  ) {
    super();
    this.readyState = 0;
    queueMicrotask(() => {
      this.readyState = 1;
      this.hello();
    });
  }
}

const chat = '0190a0b0-0000-7000-8000-000000000001';
const msg = (seq: number) => ({ type: 'message', chat_id: chat, seq, message_id: `m${seq}`, sender_user_id: 'u', sender_device_id: 'd', epoch: 0, envelope: `e${seq}`, created_at: 'now' });
const tick = (ms = 5) => new Promise((r) => setTimeout(r, ms));

function setup(opts: { failDecrypt?: (seq: number) => boolean; autoAck?: boolean; tokenError?: unknown; cursors?: MemoryCursorStore } = {}) {
  const sockets: UrlSocket[] = [];
  const cursors = opts.cursors ?? new MemoryCursorStore();
  const live = new LiveConnection<string>({
    baseUrl: 'https://api.example.com',
    accessToken: async () => {
      if (opts.tokenError) throw opts.tokenError;
      return `token${sockets.length}`;
    },
    fatalError: (err) => (err instanceof Error && err.message === 'session ended' ? 'session_ended' : undefined),
    ...(opts.autoAck !== undefined ? { autoAck: opts.autoAck } : {}),
    cursors,
    decrypt: async (m) => {
      if (opts.failDecrypt?.(m.seq)) throw new Error('cannot decrypt');
      return `plain:${m.envelope}`;
    },
    webSocket: (url, protocols) => {
      const s = new UrlSocket(url, protocols);
      sockets.push(s);
      return s;
    },
    initialBackoffMs: 10,
    maxBackoffMs: 40,
    ackDelayMs: 1,
    random: () => 0.5,
  });
  const events: Array<[string, unknown]> = [];
  for (const t of ['message', 'undecryptable', 'gap', 'synced', 'ended', 'typing', 'keys', 'chat'] as const) live.on(t, (e) => events.push([t, e]));
  const closes: unknown[] = [];
  live.on('disconnected', (e) => closes.push(e));
  return { live, sockets, cursors, events, closes };
}

/** A cursor store whose writes wait until released (a slow disk, a sealed IndexedDB record). */
class SlowCursorStore extends MemoryCursorStore {
  readonly waiting: (() => void)[] = [];
  override async save(chatId: string, seq: number): Promise<void> {
    await new Promise<void>((resolve) => this.waiting.push(resolve));
    await super.save(chatId, seq);
  }
}

describe('LiveConnection', () => {
  it("doesn't hold the next message for the cursor store, and acks only what the store has written", async () => {
    const cursors = new SlowCursorStore();
    const { live, sockets, events } = setup({ cursors });
    live.start();
    await tick();
    const s = sockets[0]!;
    for (const f of [{ type: 'synced', cursors: {} }, msg(1), msg(2), msg(3)]) s.push(f);
    await tick(20);
    // All three shown while no cursor write has finished; nothing acked yet.
    expect(events.filter(([t]) => t === 'message').length).toBe(3);
    expect(cursors.waiting.length).toBe(3);
    expect(s.sent.filter((f) => (f as { type: string }).type === 'ack')).toEqual([]);
    for (const release of cursors.waiting.splice(0)) release();
    await tick(20);
    expect(cursors.cursors[chat]).toBe(3);
    expect(s.sent.filter((f) => (f as { type: string }).type === 'ack').at(-1)).toEqual({ type: 'ack', chat_id: chat, seq: 3 });
    live.close();
  });

  it('connects to /v1/ws with the token as a subprotocol and syncs from its cursors', async () => {
    const { live, sockets, cursors } = setup();
    await cursors.save(chat, 7);
    live.start();
    await tick();
    expect(sockets[0]!.url).toBe('wss://api.example.com/v1/ws');
    expect(sockets[0]!.protocols).toEqual(['bil.v1', 'bil.token.token0']);
    expect(sockets[0]!.sent[0]).toEqual({ type: 'sync', cursors: { [chat]: 7 } });
    live.close();
  });

  it('decrypts in order, skips duplicates, reports gaps and undecryptable messages, acks and saves cursors', async () => {
    const { live, sockets, cursors, events } = setup({ failDecrypt: (s) => s === 2 });
    live.start();
    await tick();
    const s = sockets[0]!;
    for (const f of [msg(1), msg(2), msg(1), { type: 'synced', cursors: {} }, msg(5)]) s.push(f);
    await tick(20);
    expect(events.map(([t]) => t)).toEqual(['message', 'undecryptable', 'synced', 'gap', 'message']);
    expect(events[0]![1]).toMatchObject({ seq: 1, value: 'plain:e1' });
    expect(events[3]![1]).toEqual({ chatId: chat, from: 3, to: 4 });
    // A live frame beyond a gap is shown, but the cursor waits for the gap (its seq is the server's unsigned claim).
    expect(cursors.cursors[chat]).toBe(2);
    for (const f of [msg(3), msg(5), msg(4)]) s.push(f);
    await tick(20);
    expect(events.map(([t]) => t).slice(5)).toEqual(['message', 'message']);
    expect(cursors.cursors[chat]).toBe(5);
    expect(s.sent.filter((f) => f.type === 'ack').at(-1)).toEqual({ type: 'ack', chat_id: chat, seq: 5 });
    live.close();
  });

  it('one live frame with a forged seq does not move the cursor past later messages', async () => {
    const { live, sockets, cursors, events } = setup();
    live.start();
    await tick();
    const s = sockets[0]!;
    for (const f of [msg(1), { type: 'synced', cursors: {} }, msg(1001), msg(2), msg(3)]) s.push(f);
    await tick(20);
    expect(events.filter(([t]) => t === 'message').map(([, e]) => (e as { seq: number }).seq)).toEqual([1, 1001, 2, 3]);
    expect(cursors.cursors[chat]).toBe(3);
    live.close();
  });

  it('reconnects with backoff after a drop and resumes from the last processed seq', async () => {
    const { live, sockets } = setup();
    const states: unknown[] = [];
    live.on('state', (e) => states.push(e));
    live.start();
    await tick();
    sockets[0]!.push(msg(1));
    await tick();
    sockets[0]!.close(1006, '');
    await tick(40);
    expect(sockets).toHaveLength(2);
    expect(sockets[1]!.sent[0]).toEqual({ type: 'sync', cursors: { [chat]: 1 } });
    expect(states).toContainEqual({ state: 'waiting', attempt: 1, delayMs: 8 });
    live.close();
  });

  it('stops for good when the device is revoked', async () => {
    const { live, sockets, events } = setup();
    live.start();
    await tick();
    sockets[0]!.close(4003, 'revoked');
    await tick(40);
    expect(sockets).toHaveLength(1);
    expect(events).toContainEqual(['ended', { code: 4003, reason: 'revoked' }]);
  });

  it('emits typing, key changes and membership events', async () => {
    const { live, sockets, events } = setup();
    live.start();
    await tick();
    sockets[0]!.push({ type: 'typing', chat_id: chat, user_id: 'u', device_id: 'd', active: true });
    sockets[0]!.push({ type: 'chat_event', event: 'epoch_published', chat_id: chat, data: { epoch: 2 } });
    sockets[0]!.push({ type: 'chat_event', event: 'member_removed', chat_id: chat, data: { user_id: 'x' } });
    await tick();
    expect(events.map(([t]) => t)).toEqual(['typing', 'keys', 'chat']);
    live.close();
  });

  it('with autoAck off, acks only what ack() names', async () => {
    const { live, sockets } = setup({ autoAck: false });
    live.start();
    await tick();
    sockets[0]!.push(msg(1));
    sockets[0]!.push(msg(2));
    await tick(20);
    expect(sockets[0]!.sent.filter((f) => f.type === 'ack')).toEqual([]);
    live.ack(chat, 1);
    await tick(20);
    expect(sockets[0]!.sent.filter((f) => f.type === 'ack')).toEqual([{ type: 'ack', chat_id: chat, seq: 1 }]);
    live.close();
  });

  it('reports every close with whether it reconnects', async () => {
    const { live, sockets, closes } = setup();
    live.start();
    await tick();
    sockets[0]!.close(4008, 'slow_consumer');
    await tick(40);
    sockets[1]!.close(4003, 'revoked');
    await tick(40);
    expect(closes).toEqual([
      { code: 4008, reason: 'slow_consumer', reconnect: true },
      { code: 4003, reason: 'revoked', reconnect: false },
    ]);
    expect(sockets).toHaveLength(2);
  });

  it('ends without retrying when the token provider fails for good', async () => {
    const { live, sockets, events, closes } = setup({ tokenError: new Error('session ended') });
    live.start();
    await tick(40);
    expect(sockets).toHaveLength(0);
    expect(closes).toEqual([{ code: 4003, reason: 'session_ended', reconnect: false }]);
    expect(events).toContainEqual(['ended', { code: 4003, reason: 'session_ended' }]);
  });
});
