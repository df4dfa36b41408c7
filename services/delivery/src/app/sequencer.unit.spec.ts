// The per-chat sequencer of a socket, given/when/then like the deciders' specs:
// `given` feeds it what already happened, `when` one more input, `then` the
// actions (or the answer) it gives. Live frames are written `A#3` (chat A,
// seq 3); the same message read from chat is `stored A#3`.
import { describe, expect, it } from 'vitest';
import { Sequencer, type PageStep, type SequencerAction, type SequencerSettings } from './sequencer.js';

const settings: SequencerSettings = { maxPendingFrames: 5, reorderWaitMs: 250, fillRetryMs: 1000 };

/** One input; `waits` is the token of the last wait armed per chat, for `elapsed`. */
type Step = (s: Sequencer, waits: Map<string, number>) => unknown;

function given(...steps: Step[]) {
  const s = new Sequencer(settings);
  const waits = new Map<string, number>();
  const run = (step: Step) => {
    const out = step(s, waits);
    if (Array.isArray(out)) for (const a of out as SequencerAction[]) if (a.type === 'wait') waits.set(a.chatId, a.token);
    return out;
  };
  for (const step of steps) run(step);
  return {
    when(step: Step) {
      const out = readable(run(step));
      return {
        then(expected: unknown) {
          expect(out).toEqual(expected);
        },
        /** The sequencer after the input, to read its state. */
        thenState() {
          return s;
        },
      };
    },
  };
}

/** Page steps carry frame builders: compared by the frames they build. */
function readable(out: unknown): unknown {
  if (out && typeof out === 'object' && 'send' in out) {
    const step = out as PageStep;
    return { send: step.send.map((m) => m.frame()), next: step.next };
  }
  return out;
}

const seqs = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);
const stored = (chat: string) => (seq: number) => ({ seq, frame: () => `stored ${chat}#${seq}` });

// inputs
const live = (chat: string, seq: number): Step => (s) => s.deliver({ chatId: chat, seq, data: `${chat}#${seq}` });
const other = (data: string): Step => (s) => s.deliver({ data });
const sync = (cursors: Record<string, number>): Step => (s) => s.startSync(cursors);
const listed = (chat: string, lastSeq: number, acks: Record<string, number> = {}): Step => (s) => s.chatListed(chat, lastSeq, acks);
const history = (chat: string, page: number[], hasMore = false): Step => (s) => s.historyPage(chat, page.map(stored(chat)), hasMore);
const syncDone: Step = (s) => s.syncDone();
/** Catch-up done with nothing to read: the device is at these seqs. */
const syncedAt = (cursors: Record<string, number> = {}): Step => (s) => {
  s.startSync(cursors);
  for (const [chat, seq] of Object.entries(cursors)) s.chatListed(chat, seq, {});
  return s.syncDone();
};
/** The last wait armed for the chat ran out. */
const elapsed = (chat: string): Step => (s, waits) => s.timeout(chat, waits.get(chat) ?? -1);
const slot = (chat: string): Step => (s) => s.beginFill(chat);
const fillPage = (chat: string, page: number[], hasMore = false): Step => (s) => s.fillPage(chat, page.map(stored(chat)), hasMore);
const fillDone = (chat: string): Step => (s) => s.fillDone(chat);
const fillFailed = (chat: string, gone = false): Step => (s) => s.fillFailed(chat, gone);
const resync: Step = (s) => s.resync();
const closed: Step = (s) => s.close();

// actions
const send = (chat: string, seq: number, copy: 'live' | 'stored' = 'live'): SequencerAction => ({
  type: 'send',
  data: copy === 'live' ? `${chat}#${seq}` : `stored ${chat}#${seq}`,
});
const text = (data: string): SequencerAction => ({ type: 'send', data });
const synced = (cursors: Record<string, number>): SequencerAction => ({ type: 'synced', cursors });
const fill = (chatId: string): SequencerAction => ({ type: 'fill', chatId });
const wait = (chatId: string, ms: number) => ({ type: 'wait', chatId, ms, token: expect.any(Number) });
const cutOff: SequencerAction = { type: 'close', reason: 'slowConsumer' };

describe('sequencer: catch-up', () => {
  it('reads history after the client cursor, else the stored ack, else from the start; nothing when the chat is not past it', () => {
    given(sync({ A: 3 })).when(listed('A', 9, { A: 1 })).then(3);
    given(sync({ A: 3 })).when(listed('B', 9, { B: 4 })).then(4);
    given(sync({})).when(listed('C', 2)).then(0);
    given(sync({ A: 9 })).when(listed('A', 9)).then(undefined);
  });

  it('pages history in order, writing each message once', () => {
    given(sync({}), listed('A', 201)).when(history('A', seqs(1, 200), true)).then({ send: seqs(1, 200).map((n) => `stored A#${n}`), next: 200 });
    given(sync({}), listed('A', 201), history('A', seqs(1, 200), true)).when(history('A', [200, 201])).then({ send: ['stored A#201'], next: undefined });
  });

  it('holds live frames until synced, then sends them after `synced`, dropping what history covered', () => {
    given(sync({ A: 2 }), listed('A', 5), history('A', [3, 4, 5]), live('A', 4), other('typing'), live('A', 6), live('A', 5))
      .when(syncDone)
      .then([synced({ A: 5 }), text('typing'), send('A', 6)]);
    given(sync({})).when(live('A', 1)).then([]);
  });

  it('refuses a second sync on the socket', () => {
    given(sync({})).when(sync({ A: 1 })).then(false);
    given(syncedAt({ A: 1 })).when(sync({ A: 1 })).then(false);
  });

  it('resumes after a reconnect from the cursors the client last saw: nothing is sent twice, nothing skipped', () => {
    // The first socket synced at A:4 and sent A#5 live; the client reconnects with its cursors.
    given(syncedAt({ A: 4 })).when(live('A', 5)).then([send('A', 5)]);
    given(sync({ A: 5 })).when(listed('A', 7, { A: 3 })).then(5);
    given(sync({ A: 5 }), listed('A', 7, { A: 3 })).when(history('A', [6, 7])).then({ send: ['stored A#6', 'stored A#7'], next: undefined });
    given(sync({ A: 5 }), listed('A', 7), history('A', [6, 7]), live('A', 7), live('A', 8)).when(syncDone).then([synced({ A: 7 }), send('A', 8)]);
  });

  it('cuts off a socket holding too many frames while it catches up, and then answers nothing', () => {
    const five = seqs(1, 5).map((n) => live('A', n));
    given(sync({}), ...five).when(live('A', 6)).then([cutOff]);
    given(sync({}), ...five, live('A', 6)).when(syncDone).then([]);
    given(sync({}), ...five, live('A', 6)).when(live('A', 7)).then([]);
  });
});

describe('sequencer: live ordering', () => {
  it('sends frames that come in order at once', () => {
    given(syncedAt({ A: 2 })).when(live('A', 3)).then([send('A', 3)]);
    given(syncedAt({ A: 2 }), live('A', 3)).when(live('A', 4)).then([send('A', 4)]);
    given(syncedAt()).when(live('N', 1)).then([send('N', 1)]);
    given(syncedAt()).when(other('presence')).then([text('presence')]);
  });

  it('drops duplicates (history, a redelivered event, a second route)', () => {
    given(syncedAt({ A: 2 })).when(live('A', 2)).then([]);
    given(syncedAt({ A: 2 }), live('A', 3)).when(live('A', 3)).then([]);
    given(syncedAt({ A: 2 }), live('A', 4), live('A', 3)).when(live('A', 4)).then([]);
  });

  it('holds a frame that comes ahead of a missing one and waits for it once', () => {
    given(syncedAt({ A: 2 })).when(live('A', 4)).then([wait('A', 250)]);
    given(syncedAt({ A: 2 }), live('A', 4)).when(live('A', 6)).then([]);
    given(syncedAt({ A: 2 }), live('A', 4)).when(live('A', 4)).then([]);
  });

  it('releases the held frames in order when the late one comes, and the wait then does nothing', () => {
    given(syncedAt({ A: 2 }), live('A', 5), live('A', 4), live('A', 7)).when(live('A', 3)).then([send('A', 3), send('A', 4), send('A', 5)]);
    given(syncedAt({ A: 2 }), live('A', 4), live('A', 3)).when(elapsed('A')).then([]);
    const state = given(syncedAt({ A: 2 }), live('A', 5), live('A', 4), live('A', 7)).when(live('A', 3)).thenState();
    expect([state.deliveredSeq('A'), state.heldCount('A')]).toEqual([5, 1]);
  });

  it('keeps chats apart', () => {
    given(syncedAt({ A: 2, B: 7 }), live('A', 4)).when(live('B', 8)).then([send('B', 8)]);
  });

  it("sends a chat's event without a seq (created, member added) at once and counts the chat as the socket's", () => {
    const event: Step = (s) => s.deliver({ chatId: 'N', data: 'created N' });
    given(syncedAt()).when(event).then([text('created N')]);
    expect(given(syncedAt()).when(event).thenState().chats).toEqual(new Set(['N']));
    // Its first message is then in order, not a gap.
    given(syncedAt(), event).when(live('N', 1)).then([send('N', 1)]);
  });

  it('fetches a chat it has never seen (joined after sync) at once', () => {
    given(syncedAt()).when(live('N', 3)).then([fill('N')]);
    given(syncedAt(), live('N', 3)).when(live('N', 4)).then([]);
    given(syncedAt(), live('N', 3)).when(slot('N')).then({ after: 0 });
    expect(given(syncedAt()).when(live('N', 3)).thenState().chats).toEqual(new Set(['N']));
  });
});

describe('sequencer: gap fill', () => {
  const gap = [syncedAt({ A: 2 }), live('A', 5)];

  it('asks for a fill when the wait runs out, reads after the last seq sent up to the held frame', () => {
    given(...gap).when(elapsed('A')).then([fill('A')]);
    given(...gap, elapsed('A')).when(slot('A')).then({ after: 2 });
    // The held frame is the same message with the device's key already in it: that copy is written.
    given(...gap, elapsed('A'), slot('A')).when(fillPage('A', [3, 4, 5, 6])).then({ send: ['stored A#3', 'stored A#4', 'A#5', 'stored A#6'], next: undefined });
    given(...gap, elapsed('A'), slot('A'), fillPage('A', [3, 4, 5, 6])).when(fillDone('A')).then([]);
    given(...gap, elapsed('A'), slot('A'), fillPage('A', [3, 4, 5, 6]), fillDone('A')).when(live('A', 7)).then([send('A', 7)]);
    given(...gap, elapsed('A'), slot('A'), fillPage('A', [3, 4, 5, 6]), fillDone('A')).when(live('A', 4)).then([]);
  });

  it('reads page after page until it reaches the held frame', () => {
    const far = [syncedAt({ A: 2 }), live('A', 300), elapsed('A'), slot('A')];
    given(...far).when(fillPage('A', seqs(3, 202), true)).then({ send: seqs(3, 202).map((n) => `stored A#${n}`), next: 202 });
    given(...far, fillPage('A', seqs(3, 202), true)).when(fillPage('A', seqs(203, 300), true)).then({ send: [...seqs(203, 299).map((n) => `stored A#${n}`), 'A#300'], next: undefined });
  });

  it('releases held frames past messages the device may not see (the chat has none for it)', () => {
    given(...gap, elapsed('A'), slot('A'), fillPage('A', [3])).when(fillDone('A')).then([send('A', 5)]);
  });

  it('holds frames that come during the fill and writes them after it', () => {
    given(...gap, elapsed('A'), slot('A')).when(live('A', 3)).then([]);
    given(...gap, elapsed('A'), slot('A'), live('A', 3)).when(fillPage('A', [3, 4])).then({ send: ['A#3', 'stored A#4'], next: undefined });
    given(...gap, elapsed('A'), slot('A'), live('A', 6), fillPage('A', [3, 4])).when(fillDone('A')).then([send('A', 5), send('A', 6)]);
  });

  it('waits again for frames still held past a new gap after the fill', () => {
    given(...gap, elapsed('A'), slot('A'), live('A', 7), fillPage('A', [3, 4])).when(fillDone('A')).then([send('A', 5), wait('A', 250)]);
  });

  it('skips a fill whose gap closed while it waited for a slot', () => {
    given(...gap, elapsed('A'), live('A', 3), live('A', 4)).when(slot('A')).then(undefined);
  });

  it('runs one fill per chat: no second request while one is queued or running', () => {
    given(...gap, elapsed('A')).when(live('A', 7)).then([]);
    given(...gap, elapsed('A'), slot('A')).when(live('A', 7)).then([]);
    given(syncedAt(), live('N', 3), slot('N')).when(slot('N')).then(undefined);
  });

  it('retries a fill that failed, and the retry reads to the held frame', () => {
    given(...gap, elapsed('A'), slot('A')).when(fillFailed('A')).then([wait('A', 1000)]);
    given(...gap, elapsed('A'), slot('A'), fillFailed('A')).when(elapsed('A')).then([fill('A')]);
    given(...gap, elapsed('A'), slot('A'), fillFailed('A'), elapsed('A')).when(slot('A')).then({ after: 2 });
    given(...gap, elapsed('A'), slot('A'), fillFailed('A'), elapsed('A'), slot('A'), fillPage('A', [3, 4, 5])).when(fillDone('A')).then([]);
  });

  it('keeps what a failed fill wrote before it failed', () => {
    given(...gap, elapsed('A'), slot('A'), fillPage('A', [3], true)).when(fillFailed('A')).then([wait('A', 1000)]);
    given(...gap, elapsed('A'), slot('A'), fillPage('A', [3], true), fillFailed('A'), elapsed('A')).when(slot('A')).then({ after: 3 });
    given(...gap, elapsed('A'), slot('A'), fillPage('A', [3, 4], true)).when(fillFailed('A')).then([wait('A', 1000), send('A', 5)]);
  });

  it('drops the held frames of a chat the device left (chat answers not_found), without retrying', () => {
    given(...gap, elapsed('A'), slot('A')).when(fillFailed('A', true)).then([]);
    given(...gap, elapsed('A'), slot('A'), fillFailed('A', true)).when(elapsed('A')).then([]);
    expect(given(...gap, elapsed('A'), slot('A')).when(fillFailed('A', true)).thenState().heldCount('A')).toBe(0);
  });
});

describe('sequencer: resync (NATS came back)', () => {
  it('reads every chat the socket knows to the end', () => {
    given(syncedAt({ A: 2, B: 0 })).when(resync).then([fill('A'), fill('B')]);
    given(syncedAt({ A: 2, B: 0 }), resync).when(slot('A')).then({ after: 2 });
    given(syncedAt({ A: 2 }), resync, slot('A')).when(fillPage('A', seqs(3, 202), true)).then({ send: seqs(3, 202).map((n) => `stored A#${n}`), next: 202 });
    given(syncedAt({ A: 2 }), resync, slot('A'), fillPage('A', seqs(3, 202), true)).when(fillPage('A', [203])).then({ send: ['stored A#203'], next: undefined });
    given(syncedAt({ A: 2 }), resync, slot('A'), fillPage('A', [3])).when(fillDone('A')).then([]);
    given(syncedAt({ A: 2 }), resync, slot('A'), fillPage('A', [3]), fillDone('A')).when(live('A', 3)).then([]);
  });

  it('does nothing before synced (catch-up reads everything anyway)', () => {
    given(sync({ A: 2 }), listed('A', 2)).when(resync).then([]);
  });

  it('retries a resync that failed, still to the end', () => {
    given(syncedAt({ A: 2 }), resync, slot('A')).when(fillFailed('A')).then([wait('A', 1000)]);
    given(syncedAt({ A: 2 }), resync, slot('A'), fillFailed('A')).when(elapsed('A')).then([fill('A')]);
    given(syncedAt({ A: 2 }), resync, slot('A'), fillFailed('A'), elapsed('A')).when(slot('A')).then({ after: 2 });
    // The late frame that releases what was held meanwhile does not cancel the retry (a gap fill's would be).
    given(syncedAt({ A: 2 }), live('A', 4), resync, slot('A'), fillFailed('A'), live('A', 3)).when(elapsed('A')).then([fill('A')]);
    given(syncedAt({ A: 2 }), live('A', 4), elapsed('A'), slot('A'), fillFailed('A'), live('A', 3)).when(elapsed('A')).then([]);
  });

  it('runs after a fill of the chat that is running, and widens one that is queued', () => {
    given(syncedAt({ A: 2 }), live('A', 5), elapsed('A'), slot('A')).when(resync).then([]);
    given(syncedAt({ A: 2 }), live('A', 5), elapsed('A'), slot('A'), resync, fillPage('A', [3, 4, 5])).when(fillDone('A')).then([fill('A')]);
    given(syncedAt({ A: 2 }), live('A', 5), elapsed('A'), resync, live('A', 3), live('A', 4)).when(slot('A')).then({ after: 5 });
  });
});

describe('sequencer: limits and closing', () => {
  it('cuts off a socket holding too many frames ahead of a gap in one chat', () => {
    const held = seqs(3, 7).map((n) => live('A', n));
    given(syncedAt({ A: 1 }), ...held.slice(0, 4)).when(held[4]!).then([]);
    given(syncedAt({ A: 1 }), ...held).when(live('A', 8)).then([cutOff]);
    given(syncedAt({ A: 1 }), ...held, live('A', 8)).when(live('A', 2)).then([]);
  });

  it('answers nothing once closed', () => {
    given(syncedAt({ A: 2 }), live('A', 4), closed).when(live('A', 3)).then([]);
    given(syncedAt({ A: 2 }), live('A', 4), closed).when(elapsed('A')).then([]);
    given(syncedAt({ A: 2 }), live('A', 4), elapsed('A'), closed).when(slot('A')).then(undefined);
    given(syncedAt({ A: 2 }), live('A', 4), elapsed('A'), slot('A'), closed).when(fillPage('A', [3])).then({ send: [], next: undefined });
    given(sync({}), closed).when(syncDone).then([]);
    given(syncedAt({ A: 2 }), closed).when(resync).then([]);
  });
});

describe('sequencer: the fast path (deliverNow)', () => {
  it('takes the next seq of a live chat with nothing held, and nothing else', () => {
    const s = given(syncedAt({ A: 2 })).when(live('A', 3)).thenState();
    expect(s.deliverNow('A', 4)).toBe(true);
    expect(s.deliverNow('A', 4)).toBe(false); // already sent
    expect(s.deliverNow('A', 6)).toBe(false); // ahead of 5
    expect(s.deliverNow('B', 1)).toBe(true); // a new chat starts at 1
    expect(s.deliveredSeq('A')).toBe(4);
    expect(s.chats.has('B')).toBe(true);
    const waiting = given(sync({})).when(listed('A', 0)).thenState();
    expect(waiting.deliverNow('A', 1)).toBe(false); // not live yet: held by deliver
    const held = given(syncedAt({ A: 2 })).when(live('A', 4)).thenState();
    expect(held.deliverNow('A', 3)).toBe(false); // 4 is held: deliver releases it with 3
  });

  it('answers what deliver answers, over random arrivals, fills and timeouts (the connection tries it first)', () => {
    let seed = 7;
    const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
    for (let run = 0; run < 200; run++) {
      const slow = new Sequencer(settings);
      const fast = new Sequencer(settings);
      const tokens = new Map<string, number>();
      const both = (f: (s: Sequencer) => unknown) => {
        const a = f(slow);
        const b = f(fast);
        expect(readable(b)).toEqual(readable(a));
        for (const x of (Array.isArray(a) ? a : []) as SequencerAction[]) if (x.type === 'wait') tokens.set(x.chatId, x.token);
      };
      both((s) => (s.startSync({ A: 1 }), s.chatListed('A', 1, {}), s.syncDone()));
      for (let step = 0; step < 30; step++) {
        const chat = rand(2) === 0 ? 'A' : 'B';
        const r = rand(10);
        if (r < 7) {
          const seq = 1 + rand(9);
          const data = `${chat}#${seq}`;
          const a = slow.deliver({ chatId: chat, seq, data });
          const b = fast.deliverNow(chat, seq) ? [{ type: 'send', data }] : fast.deliver({ chatId: chat, seq, data });
          expect(b).toEqual(a);
          for (const x of a) if (x.type === 'wait') tokens.set(x.chatId, x.token);
        } else if (r < 8) both((s) => s.timeout(chat, tokens.get(chat) ?? -1));
        else if (r < 9) both((s) => s.beginFill(chat));
        else both((s) => (s.fillPage(chat, [1 + rand(9)].map(stored(chat)), false), s.fillDone(chat)));
        if (slow.closed) break;
      }
    }
  });
});
