// Delete for everyone, live and in catch-up, through gateway /v1/ws → delivery:
// a connected member gets `message-deleted` (attributed to the sender only
// because the tombstone verified), and a member who reconnects later gets the
// removed message in catch-up without its ciphertext, shown the same way.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LiveClient, LiveClientEvents } from '../src/index.js';
import { deliveryStackBuilt, startStack, type Stack } from './stack.js';
import { people, type Device } from './people.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(what: string, cond: () => boolean, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

describe.skipIf(!deliveryStackBuilt)('@bil/sdk live delete for everyone (e2e)', () => {
  let stack: Stack;
  const lives: LiveClient[] = [];
  const { register } = people(() => stack.baseUrl);
  let alice: Device;
  let bob: Device;

  beforeAll(async () => {
    stack = await startStack({}, { delivery: true });
    [alice, bob] = await Promise.all([register('alice'), register('bob')]);
  }, 120_000);

  afterAll(async () => {
    for (const l of lives) l.close();
    await stack?.stop();
  });

  it('a connected member gets message-deleted, attributed to the sender; catch-up later shows it removed', async () => {
    const chat = await alice.client.chats.createPersonal(bob.account.userId);
    const live = bob.client.live({ initialBackoffMs: 100, maxBackoffMs: 1000, ackDelayMs: 20 });
    lives.push(live);
    const deleted: LiveClientEvents['message-deleted'][] = [];
    const texts: string[] = [];
    let synced = false;
    live.on('message-deleted', (e) => deleted.push(e));
    live.on('message', (m) => texts.push(m.text));
    live.on('synced', () => (synced = true));
    await until('synced', () => synced);

    const sent = await alice.client.messages.send(chat.chatId, 'regret');
    await until('the message', () => texts.includes('regret'));
    await alice.client.chats.deleteForEveryone(chat.chatId, sent.messageId);
    await until('message-deleted', () => deleted.length > 0);
    expect(deleted[0]).toEqual({ chatId: chat.chatId, seq: sent.seq, messageId: sent.messageId, senderUserId: alice.account.userId, reason: 'deleted_by_sender' });
    live.close();

    // A fresh device state of bob catching up from the start: the removed message has no ciphertext and is shown as deleted by its sender.
    const page = await bob.client.messages.history(chat.chatId, { after: 0 });
    expect(page.messages.map((m) => (m.ok ? m.text : m.error))).toEqual(['deleted_by_sender']);
  });
});
