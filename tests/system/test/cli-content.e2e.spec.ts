// `bil send --reply`, `bil react`, `bil edit`, `bil delete --for-me` as users
// run them (separate processes per command, the system of global-setup.ts),
// and what `bil history` shows of them (docs/cli.md "Replies, reactions,
// edits"). Messages are named by their seq in history or by their id.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { waitFor } from '@bil/testkit';
import { as, clean, cli, events, type Cli } from './cli.js';

const url = inject('bilUrl');
const tag = randomBytes(3).toString('hex');
const alice = `alice_${tag}`;
const bob = `bob_${tag}`;
const carol = `carol_${tag}`;
const group = `Picnic ${tag}`;
let bil: Cli;


beforeAll(() => {
  bil = cli(url);
});

afterAll(() => {
  bil?.cleanup();
});

// eslint-disable-next-line @typescript-eslint/no-explicit-any
async function history(profile: string): Promise<any[]> {
  const h = await bil(as(profile, '--json', 'history', group, '--no-mark-read'));
  expect(h.code, h.stderr).toBe(0);
  return JSON.parse(h.stdout).messages;
}

describe('bil replies, reactions, edits, delete --for-me', () => {
  it('sets up three people and a group with one message', async () => {
    for (const [p, name] of [['alice', alice], ['bob', bob], ['carol', carol]] as const) {
      const r = await bil(as(p, 'register', name));
      expect(r.code, r.stderr).toBe(0);
    }
    const g = await bil(as('alice', 'chat', 'create', '--group', group, '--members', `${bob},${carol}`));
    expect(g.code, g.stderr).toBe(0);
    const s = await bil(as('alice', 'send', group, 'lunch at noon?'));
    expect(s.code, s.stderr).toBe(0);
  }, 180_000);

  it('send --reply (by seq) carries the quote; history shows it', async () => {
    const r = await bil(as('bob', '--json', 'send', group, 'yes!', '--reply', '1'));
    expect(r.code, r.stderr).toBe(0);
    const [, reply] = await history('alice');
    expect(reply).toMatchObject({ text: 'yes!', content: { reply_to: { quote: 'lunch at noon?' } }, sender: bob });
    const h = await bil(as('alice', 'history', group, '--no-mark-read'));
    expect(h.stdout).toContain(`${bob}: ↪ "lunch at noon?" yes!`);
    expect(clean(h.stdout)).toBe(true);
    const missing = await bil(as('bob', 'send', group, 'to nothing', '--reply', '99'));
    expect(missing.code).toBe(4);
    expect(missing.stderr).toContain('[unknown_message]');
  }, 120_000);

  it('react from two people (by seq and by id) adds up; --remove takes one back', async () => {
    const [first] = await history('bob');
    expect((await bil(as('bob', 'react', group, '1', '👍'))).code).toBe(0);
    expect((await bil(as('carol', 'react', group, first.messageId, '👍'))).code).toBe(0);
    expect((await bil(as('carol', 'react', group, '1', '🎉'))).code).toBe(0);
    const removed = await bil(as('carol', '--json', 'react', group, '1', '🎉', '--remove'));
    expect(JSON.parse(removed.stdout)).toMatchObject({ removed: true, emoji: '🎉', target: first.messageId });
    const messages = await history('alice');
    expect(messages).toHaveLength(2); // the reactions themselves are not listed
    expect(Object.keys(messages[0].reactions)).toEqual(['👍']);
    expect(messages[0].reactions['👍']).toHaveLength(2);
    const h = await bil(as('alice', 'history', group, '--no-mark-read'));
    expect(h.stdout).toMatch(/lunch at noon\?\s+👍 2/);
    const bad = await bil(as('bob', 'react', group, '1', 'two words'));
    expect(bad.code).toBe(2);
  }, 120_000);

  it("edit: the sender's edit shows with (edited); someone else's is refused", async () => {
    const e = await bil(as('alice', 'edit', group, '1', 'lunch', 'at', 'one?'));
    expect(e.code, e.stderr).toBe(0);
    const [first] = await history('carol');
    expect(first).toMatchObject({ text: 'lunch at one?', content: { text: 'lunch at noon?' }, edited: [{ text: 'lunch at one?' }] });
    const h = await bil(as('carol', 'history', group, '--no-mark-read'));
    expect(h.stdout).toContain('lunch at one? (edited)');
    const notMine = await bil(as('carol', 'edit', group, '1', 'carol was here'));
    expect(notMine.code).toBe(1);
    expect(notMine.stderr).toContain('[not_own_message]');
  }, 120_000);

  it('delete --for-me hides it for that profile only; without --for-me only the sender may delete (for everyone)', async () => {
    const d = await bil(as('bob', 'delete', group, '2', '--for-me'));
    expect(d.code, d.stderr).toBe(0);
    expect(d.stdout).toContain('Deleted for you');
    expect((await history('bob')).map((m) => m.text)).toEqual(['lunch at one?']);
    expect((await history('alice')).map((m) => m.text)).toEqual(['lunch at one?', 'yes!']);
    // Without --for-me it is delete for everyone, which only the sender may: message 1 is alice's.
    const everyone = await bil(as('bob', 'delete', group, '1'));
    expect(everyone.code).not.toBe(0);
    expect(everyone.stderr).toContain('not_the_sender');
  }, 120_000);

  it('listen shows reactions and edits of messages it showed as updates', async () => {
    const carolListens = bil.spawn(as('carol', '--json', 'listen', '--chat', group, '--timeout', '120'));
    try {
      await waitFor(carolListens, '"event":"synced"', 90_000, 'carol listen');
      const sent = JSON.parse((await bil(as('bob', '--json', 'send', group, 'new plan'))).stdout) as { seq: number; messageId: string };
      await waitFor(carolListens, '"text":"new plan"', 60_000, 'carol receives the message');
      expect((await bil(as('alice', 'react', group, String(sent.seq), '🎉'))).code).toBe(0);
      await waitFor(carolListens, /"event":"updated".*"🎉"/, 60_000, 'carol sees the reaction');
      expect((await bil(as('bob', 'edit', group, sent.messageId, 'newer', 'plan'))).code).toBe(0);
      await waitFor(carolListens, /"event":"updated".*"text":"newer plan"/, 60_000, 'carol sees the edit');
      // (Catching up, earlier reactions and edits of the group may come first.)
      const updates = events(carolListens).filter((e) => e.event === 'updated' && e.messageId === sent.messageId);
      expect(updates[0]).toMatchObject({ messageId: sent.messageId, label: `#${group}`, by: { kind: 'reaction' } });
      expect(Object.keys(updates[0]!.reactions as object)).toEqual(['🎉']);
      expect(updates[1]).toMatchObject({ messageId: sent.messageId, text: 'newer plan', by: { kind: 'edit' } });
      // Neither came as a message of its own.
      expect(events(carolListens).filter((e) => e.event === 'message').map((e) => e.text)).toEqual(['new plan']);
    } finally {
      carolListens.child.kill('SIGINT');
      await carolListens.exited;
    }
  }, 180_000);
});
