// Shared catch-up pages (issue 18's reconnect storm), against an in-memory
// chat: devices of one group catching up together cost one read per page,
// each device gets exactly its messages, a failed read is retried and then
// given up, and a batch chat refuses is served device by device.
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { AppError } from '@bil/runtime';
import type { ChatBackend, StoredMessage } from '../infra/backends.js';
import { SharedPages, type DeviceActor, type SharedPagesSettings } from './shared-pages.js';
import { Slots } from './slots.js';

const settings: SharedPagesSettings = { maxDevices: 500, pageSize: 200, retryMs: [1, 2, 4, 8] };

/** A group of `messages` messages; `joined`: a user's seq at joining (default 0); `outsiders` are refused. */
function groupChat(messages: number, joined = new Map<string, number>(), outsiders = new Set<string>()) {
  const chatId = randomUUID();
  const stored = (seq: number): StoredMessage => ({
    chatId,
    seq: String(seq),
    messageId: `m${seq}`,
    senderUserId: 'u',
    senderDeviceId: 'd',
    envelope: `{"n":${seq}}`,
    wrappedKey: '',
    epoch: '1',
    createdAt: '2026-12-05T00:00:00.000Z',
    removed: false,
    tombstone: '',
    expiresAt: '',
  });
  const calls = { shared: [] as number[], single: 0 };
  let failing = 0;
  const chat: Pick<ChatBackend, 'catchUpMessages' | 'listMessagesAfter'> = {
    async catchUpMessages(_chatId, devices, limit) {
      calls.shared.push(devices.length);
      if (failing > 0) {
        failing--;
        throw new AppError('unavailable', 'service_unavailable', 'chat is down');
      }
      const outside = devices.filter((d) => outsiders.has(d.userId)).map((d) => d.deviceId);
      if (outside.length) throw new AppError('not_found', 'chat_not_found', 'no such chat', { device_ids: outside });
      const from = devices.map((d) => Math.max(d.afterSeq, joined.get(d.userId) ?? 0));
      const start = Math.min(...from);
      const end = Math.min(messages, start + limit);
      const page = [];
      for (let seq = start + 1; seq <= end; seq++) {
        page.push({ message: stored(seq), recipients: devices.flatMap((_, deviceIndex) => (seq > from[deviceIndex]! ? [{ deviceIndex, wrappedKey: '' }] : [])) });
      }
      return { messages: page, hasMore: end < messages, throughSeq: end };
    },
    async listMessagesAfter(actor, _chatId, after, limit) {
      calls.single++;
      if (outsiders.has(actor.userId ?? '')) throw new AppError('not_found', 'chat_not_found', 'no such chat');
      const list = [];
      for (let seq = after + 1; seq <= Math.min(messages, after + limit); seq++) list.push(stored(seq));
      return { messages: list, hasMore: after + limit < messages, lastSeq: messages };
    },
  };
  return { chatId, chat, calls, fail: (n: number) => (failing = n) };
}

const device = (): DeviceActor => ({ userId: randomUUID(), deviceId: randomUUID(), sessionId: randomUUID() });

/** A device's whole catch-up as Connection.sync runs it: pages until the last; the frames it got. */
async function catchUp(pages: SharedPages, chatId: string, actor: DeviceActor, cursor: number): Promise<Array<{ seq: number; frame: string | Buffer }>> {
  const got: Array<{ seq: number; frame: string | Buffer }> = [];
  for (let after: number | undefined = cursor; after !== undefined; ) {
    const page = await pages.read(chatId, actor, after);
    for (const m of page.messages) got.push({ seq: m.seq, frame: m.frame() });
    after = page.hasMore ? Math.max(after, got.at(-1)?.seq ?? after, page.throughSeq) : undefined;
  }
  return got;
}

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

describe('shared catch-up pages', () => {
  it('serve many devices of a group with one read per page; each gets exactly the messages after its cursor, each frame built once', async () => {
    const g = groupChat(450);
    const pages = new SharedPages(g.chat, new Slots(4), settings);
    const devices = Array.from({ length: 300 }, (_, i) => ({ actor: device(), cursor: i % 3 === 0 ? 10 : 0 }));
    const got = await Promise.all(devices.map((d) => catchUp(pages, g.chatId, d.actor, d.cursor)));
    // Pages 1-200, 201-400, 401-450: three reads for 300 devices (900 ListMessages before).
    expect(g.calls.shared).toEqual([300, 300, 300]);
    expect(g.calls.single).toBe(0);
    devices.forEach((d, i) => expect(got[i]!.map((m) => m.seq)).toEqual(range(d.cursor + 1, 450)));
    expect(got[0]![50]!.frame).toBe(got[1]![60]!.frame); // seq 61 for a device from 10 and one from 0: the same Buffer
    expect(JSON.parse(String(got[1]![0]!.frame))).toMatchObject({ type: 'message', chat_id: g.chatId, seq: 1 });
  });

  it('read for at most maxDevices devices at once, and apart for devices more than a page apart', async () => {
    const g = groupChat(100);
    const pages = new SharedPages(g.chat, new Slots(4), { ...settings, maxDevices: 250 });
    const near = Array.from({ length: 600 }, () => catchUp(pages, g.chatId, device(), 0));
    const far = catchUp(pages, g.chatId, device(), 400);
    await Promise.all([...near, far]);
    expect([...g.calls.shared].sort((a, b) => a - b)).toEqual([1, 100, 250, 250]);
  });

  it('a late member’s device starts where its user joined; a device a batch does not cover still gets every page it needs', async () => {
    const late = device();
    const g = groupChat(300, new Map([[late.userId, 250]]));
    const pages = new SharedPages(g.chat, new Slots(4), settings);
    const [early, joined] = await Promise.all([catchUp(pages, g.chatId, device(), 0), catchUp(pages, g.chatId, late, 0)]);
    expect(early.map((m) => m.seq)).toEqual(range(1, 300));
    expect(joined.map((m) => m.seq)).toEqual(range(251, 300));
  });

  it('a failed read is tried again after each wait of the backoff, then given up for every device of the batch', async () => {
    const g = groupChat(10);
    const pages = new SharedPages(g.chat, new Slots(4), settings);
    g.fail(3);
    const got = await Promise.all([catchUp(pages, g.chatId, device(), 0), catchUp(pages, g.chatId, device(), 5)]);
    expect(got.map((d) => d.map((m) => m.seq))).toEqual([range(1, 10), range(6, 10)]);
    expect(g.calls.shared).toEqual([2, 2, 2, 2]);
    g.fail(100);
    g.calls.shared.length = 0;
    const outcome = await Promise.allSettled([catchUp(pages, g.chatId, device(), 0), catchUp(pages, g.chatId, device(), 0)]);
    expect(outcome.map((o) => o.status)).toEqual(['rejected', 'rejected']);
    expect((outcome[0] as PromiseRejectedResult).reason).toMatchObject({ kind: 'unavailable' });
    expect(g.calls.shared).toEqual([2, 2, 2, 2, 2]); // the first try and one per backoff wait
  });

  it('a batch chat refuses is served device by device: members get their pages, the outsider chat’s refusal', async () => {
    const outsider = device();
    const g = groupChat(30, new Map(), new Set([outsider.userId]));
    const pages = new SharedPages(g.chat, new Slots(4), settings);
    const outcome = await Promise.allSettled([catchUp(pages, g.chatId, device(), 0), catchUp(pages, g.chatId, outsider, 0), catchUp(pages, g.chatId, device(), 20)]);
    expect(outcome[0]).toMatchObject({ status: 'fulfilled' });
    expect((outcome[0] as PromiseFulfilledResult<Array<{ seq: number }>>).value.map((m) => m.seq)).toEqual(range(1, 30));
    expect(outcome[1]).toMatchObject({ status: 'rejected', reason: { code: 'chat_not_found' } });
    expect((outcome[2] as PromiseFulfilledResult<Array<{ seq: number }>>).value.map((m) => m.seq)).toEqual(range(21, 30));
    expect(g.calls.shared).toEqual([3]);
    expect(g.calls.single).toBe(3);
  });
});
