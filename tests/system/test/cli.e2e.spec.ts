// `bil` driven as its users drive it: separate processes for alice, bob and
// carol (profiles in one config directory) against the system npm start runs
// (test/global-setup.ts), checking what they print, human and --json, and
// their exit codes (docs/cli.md), failures included: wrong passphrase,
// unknown chat, server down, busy profile, revoked device. Digests:
// cli-digest.e2e.spec.ts.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { as, clean, cli, events, type Cli } from './cli.js';
import { freePort, waitFor } from '@bil/testkit';

const url = inject('bilUrl');
const tag = randomBytes(3).toString('hex');
const alice = `alice_${tag}`;
const bob = `bob_${tag}`;
const carol = `carol_${tag}`;
const trip = `Trip ${tag}`;
let bil: Cli;


beforeAll(() => {
  bil = cli(url);
});

afterAll(() => {
  bil?.cleanup();
});

describe('bil, as people and scripts use it', () => {
  it('registers two people: human and --json output, one device each', async () => {
    const a = await bil(as('alice', 'register', alice));
    expect(a.code, a.stderr).toBe(0);
    expect(a.stdout).toContain(`Registered ${alice} with device`);
    expect(clean(a.stdout + a.stderr)).toBe(true);

    const b = await bil(as('bob', '--json', 'register', bob, '--device-name', 'phone'));
    expect(b.code, b.stderr).toBe(0);
    expect(JSON.parse(b.stdout)).toMatchObject({ profile: 'bob', url, username: bob, deviceName: 'phone', signedIn: true, holdsIdentityKey: true });

    const who = await bil(as('bob', '--json', 'whoami'));
    expect(JSON.parse(who.stdout)).toMatchObject({ username: bob, signedIn: true });
    const profiles = await bil(['--json', 'profiles']);
    expect(JSON.parse(profiles.stdout).profiles.map((p: { name: string }) => p.name)).toEqual(['alice', 'bob']);

    // The same profile again, and a taken username: refused with the code.
    const again = await bil(as('bob', 'register', `other_${tag}`));
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('[profile_exists]');
    const taken = await bil(as('bob2', 'register', bob));
    expect(taken.code).toBe(1);
    expect(taken.stderr).toContain('[username_taken]');
    expect(clean(taken.stderr)).toBe(true);
    // The failed profile leaves nothing behind.
    expect(JSON.parse((await bil(['--json', 'profiles'])).stdout).profiles).toHaveLength(2);
  }, 180_000);

  it('shows the same safety number on both sides; verifies it; a mismatch is exit 7', async () => {
    const a = await bil(as('alice', '--json', 'contacts', 'verify', bob));
    const b = await bil(as('bob', '--json', 'contacts', 'verify', `@${alice}`));
    expect(a.code).toBe(0);
    const number = JSON.parse(a.stdout).safetyNumber as string;
    expect(number).toMatch(/^\d{60}$/);
    expect(JSON.parse(b.stdout)).toMatchObject({ safetyNumber: number, pin: 'first-use', verified: false });

    const human = await bil(as('alice', 'contacts', 'verify', bob));
    expect(human.stdout).toContain(number.slice(0, 5) + ' ' + number.slice(5, 10));
    const ok = await bil(as('alice', 'contacts', 'verify', bob, '--digits', number.replace(/(\d{5})/g, '$1 ')));
    expect(ok.code).toBe(0);
    expect(ok.stdout).toContain('The numbers match');
    expect(JSON.parse((await bil(as('alice', '--json', 'contacts', 'verify', bob))).stdout).verified).toBe(true);

    const wrong = await bil(as('bob', 'contacts', 'verify', alice, '--digits', '1'.repeat(60)));
    expect(wrong.code).toBe(7);
    expect(wrong.stderr).toContain('[safety_number_mismatch]');
  }, 120_000);

  it('personal chat: send, unread, history (which marks read)', async () => {
    const created = await bil(as('alice', 'chat', 'create', '--personal', bob));
    expect(created.code, created.stderr).toBe(0);
    expect(created.stdout).toContain(`Opened personal chat @${bob}`);
    const sent = await bil(as('alice', '--json', 'send', `@${bob}`, 'Hi', 'Bob,', 'lunch?'));
    expect(sent.code, sent.stderr).toBe(0);
    expect(JSON.parse(sent.stdout)).toMatchObject({ seq: 1, duplicate: false, label: `@${bob}` });

    const unread = await bil(as('bob', '--json', 'unread', '--messages', '5'));
    const u = JSON.parse(unread.stdout);
    expect(u).toMatchObject({ total: 1, unreadChats: 1 });
    expect(u.chats[0].messages[0]).toMatchObject({ ok: true, text: 'Hi Bob, lunch?', sender: alice });
    const unreadHuman = await bil(as('bob', 'unread'));
    expect(unreadHuman.stdout).toContain('1 unread in 1 chat');

    const history = await bil(as('bob', 'history', `@${alice}`));
    expect(history.code, history.stderr).toBe(0);
    expect(history.stdout).toMatch(new RegExp(`1 +\\S+ +${alice}: Hi Bob, lunch\\?`));
    expect(clean(history.stdout)).toBe(true);
    expect((await bil(as('bob', 'unread'))).stdout).toContain('No unread messages.');
  }, 120_000);

  it('a group by title: stdin, --lines, members, --json history', async () => {
    expect((await bil(as('carol', 'register', carol))).code).toBe(0);
    const group = await bil(as('alice', '--json', 'chat', 'create', '--group', trip, '--members', `${bob},${carol}`));
    expect(group.code, group.stderr).toBe(0);
    expect(JSON.parse(group.stdout)).toMatchObject({ type: 'group', title: trip, memberCount: 3, epoch: 1, label: `#${trip}` });

    const piped = await bil(as('alice', 'send', trip), { input: 'Who brings the tent?\n' });
    expect(piped.code, piped.stderr).toBe(0);
    expect(piped.stdout).toContain(`Sent to #${trip} (seq 1`);
    const dash = await bil(as('alice', 'send', trip.toLowerCase(), '-'), { input: 'Two\nlines' });
    expect(dash.code, dash.stderr).toBe(0);
    const lines = await bil(as('alice', 'send', trip, '--lines'), { input: 'map\n\ncompass\n' });
    expect(lines.stdout).toContain('Sent 2 messages');

    const members = await bil(as('alice', 'chat', 'members', trip));
    expect(members.stdout).toMatch(new RegExp(`${alice} +owner`));
    expect(members.stdout).toMatch(new RegExp(`${carol} +member`));

    const history = await bil(as('bob', '--json', 'history', trip, '--no-mark-read'));
    const h = JSON.parse(history.stdout);
    expect(h.messages.map((m: { text: string }) => m.text)).toEqual(['Who brings the tent?', 'Two\nlines', 'map', 'compass']);
    expect(h.messages.every((m: { ok: boolean; epoch: number }) => m.ok && m.epoch === 1)).toBe(true);

    const list = await bil(as('bob', '--json', 'chat', 'list'));
    const chats = JSON.parse(list.stdout) as { label: string; unreadCount: number; chatId: string }[];
    expect(chats.map((c) => c.label).sort()).toEqual([`#${trip}`, `@${alice}`].sort());
    expect(chats.find((c) => c.label === `#${trip}`)!.unreadCount).toBe(4);
    // A chat by id prefix, as chat list shows it.
    const prefix = chats.find((c) => c.label === `#${trip}`)!.chatId.slice(0, 8);
    expect((await bil(as('bob', 'history', prefix, '-n', '1', '--no-mark-read'))).stdout).toContain('compass');
  }, 180_000);

  it('listen: live messages, typing and read receipts; a busy profile is exit 8', async () => {
    const bobListens = bil.spawn(as('bob', '--json', 'listen', '--timeout', '150'));
    const aliceChats = bil.spawn(as('alice', '--json', 'listen', '--chat', `@${bob}`, '--count', '1', '--timeout', '150'));
    try {
      await waitFor(bobListens, '"event":"synced"', 90_000, 'bob listen');
      await waitFor(aliceChats, '"event":"synced"', 90_000, 'alice listen');
      // Bob's catch-up: the unread group messages, not the personal one he read.
      expect(events(bobListens).filter((e) => e.event === 'message').map((e) => e.text)).toEqual(['Who brings the tent?', 'Two\nlines', 'map', 'compass']);

      aliceChats.child.stdin!.write('are you there?\n');
      await waitFor(bobListens, '"text":"are you there?"', 60_000, 'bob receives live');
      await waitFor(bobListens, /"event":"typing".*"active":true/, 30_000, 'bob sees alice typing');
      const live = events(bobListens).find((e) => e.text === 'are you there?')!;
      expect(live).toMatchObject({ event: 'message', live: true, ok: true, sender: alice, label: `@${alice}` });
      // Bob's listen marks it read: alice sees the receipt.
      await waitFor(aliceChats, /"event":"receipt".*"seq":2/, 30_000, 'alice sees the read receipt');
      expect(events(aliceChats).find((e) => e.event === 'receipt')).toMatchObject({ user: bob, label: `@${bob}` });

      // Bob's profile is busy while he listens.
      const busy = await bil(as('bob', 'unread'), { env: { BIL_LOCK_WAIT: '1' } });
      expect(busy.code).toBe(8);
      expect(busy.stderr).toContain('in use by another bil process');
      expect(busy.stderr).toContain('bil listen');

      // Ctrl-C ends listen cleanly.
      bobListens.child.kill('SIGINT');
      expect(await bobListens.exited).toBe(0);

      const reply = await bil(as('bob', 'send', `@${alice}`, 'yes, here'));
      expect(reply.code, reply.stderr).toBe(0);
      expect(await aliceChats.exited).toBe(0);
      expect(events(aliceChats).find((e) => e.event === 'message')).toMatchObject({ text: 'yes, here', sender: bob });
      expect(events(aliceChats).find((e) => e.event === 'sent')).toMatchObject({ seq: 2 });
    } finally {
      bobListens.child.kill('SIGKILL');
      aliceChats.child.kill('SIGKILL');
    }

    // Human output: what came while away (unread), then exit after --count.
    await bil(as('alice', 'send', `@${bob}`, 'missed me?'));
    const human = await bil(as('bob', 'listen', '--count', '1', '--timeout', '90'));
    expect(human.code, human.stderr).toBe(0);
    expect(human.stdout).toMatch(new RegExp(`\\[[\\d:]+\\] @${alice} +${alice}: missed me\\?`));
    expect(clean(human.stdout)).toBe(true);
    // --count not reached in time: exit 1.
    const timeout = await bil(as('carol', 'listen', '--count', '100', '--timeout', '3'));
    expect(timeout.code).toBe(1);
    expect(timeout.stderr).toContain('[timeout]');
  }, 300_000);

  it('removing a member: a new epoch, and they cannot read what follows', async () => {
    const removed = await bil(as('alice', 'chat', 'remove', trip, carol));
    expect(removed.code, removed.stderr).toBe(0);
    expect(removed.stdout).toContain(`Removed ${carol} from #${trip}; new key epoch 2`);
    expect((await bil(as('alice', 'send', trip, 'carol is gone'))).code).toBe(0);
    const bobReads = await bil(as('bob', '--json', 'history', trip, '-n', '1'));
    expect(JSON.parse(bobReads.stdout).messages[0]).toMatchObject({ text: 'carol is gone', epoch: 2 });
    const chatId = JSON.parse(bobReads.stdout).chatId as string;
    const carolTries = await bil(as('carol', 'history', chatId));
    expect(carolTries.code).toBe(4);
    expect(carolTries.stderr).toContain('[chat_not_found]');
    // By title she no longer finds it either.
    expect((await bil(as('carol', 'history', trip))).code).toBe(4);
  }, 120_000);

  it('links a second device, lists and revokes it', async () => {
    // Ctrl-C while waiting for the approval: exit 130, and no empty profile is left behind.
    const abandoned = bil.spawn(as('alice3', 'device', 'link', '--name', 'phone'));
    try {
      await waitFor(abandoned, 'bil-link-request:', 90_000, 'device link');
      abandoned.child.kill('SIGINT');
      expect(await abandoned.exited, abandoned.output()).toBe(130);
    } finally {
      abandoned.child.kill('SIGKILL');
    }
    expect(JSON.parse((await bil(['--json', 'profiles'])).stdout).profiles.map((p: { name: string }) => p.name)).not.toContain('alice3');

    const link = bil.spawn(as('alice2', '--json', 'device', 'link', '--name', 'tablet'));
    try {
      await waitFor(link, '"linkRequest"', 90_000, 'device link');
      const request = events(link)[0]!.linkRequest as string;
      expect(request).toMatch(/^bil-link-request:/);
      const approved = await bil(as('alice', 'device', 'add', request));
      expect(approved.code, approved.stderr).toBe(0);
      const approval = approved.stdout.trim();
      expect(approval).toMatch(/^bil-link-approval:[A-Za-z0-9_-]+$/);
      link.child.stdin!.end(`${approval}\n`);
      expect(await link.exited, link.output()).toBe(0);
      expect(events(link)[1]).toMatchObject({ username: alice, deviceName: 'tablet', profile: 'alice2' });
    } finally {
      link.child.kill('SIGKILL');
    }
    const devices = JSON.parse((await bil(as('alice', '--json', 'device', 'list'))).stdout) as { deviceId: string; name: string; current: boolean; certified: boolean }[];
    expect(devices).toHaveLength(2);
    expect(devices.every((d) => d.certified)).toBe(true);
    const tablet = devices.find((d) => d.name === 'tablet')!;
    // The new device reads personal messages sent from now on.
    await bil(as('bob', 'send', `@${alice}`, 'hello both devices'));
    expect((await bil(as('alice2', 'history', `@${bob}`, '-n', '1'))).stdout).toContain(`${bob}: hello both devices`);

    const short = await bil(as('alice', 'device', 'revoke', tablet.deviceId.slice(0, 3)));
    expect(short.code).toBe(2);
    expect(short.stderr).toContain('at least 4 characters');
    const self = await bil(as('alice', 'device', 'revoke', devices.find((d) => d.current)!.deviceId.slice(0, 8)));
    expect(self.code).toBe(2);
    const revoked = await bil(as('alice', 'device', 'revoke', tablet.deviceId.slice(0, 8)));
    expect(revoked.code, revoked.stderr).toBe(0);
    const gone = await bil(as('alice2', 'unread'));
    expect(gone.code).toBe(3);
    expect(gone.stderr).toMatch(/\[(token_revoked|device_revoked|refresh_token_reused|invalid_refresh_token)\]/);
  }, 240_000);

  it('fails clearly: wrong passphrase, unknown chat or user, no profile, signed out', async () => {
    const wrong = await bil(as('bob', 'unread'), { env: { BIL_PASSPHRASE: 'not the passphrase' } });
    expect(wrong.code).toBe(5);
    expect(wrong.stderr).toContain('wrong passphrase');
    expect(wrong.stderr).toContain('[wrong_passphrase]');
    expect(clean(wrong.stderr)).toBe(true);

    const byTitle = await bil(as('bob', 'send', 'Holidays', 'hi'));
    expect(byTitle.code).toBe(4);
    expect(byTitle.stderr).toContain('bil: no chat matches "Holidays" [chat_not_found]');
    const byId = await bil(as('bob', '--json', 'history', '00000000-0000-4000-8000-000000000000'));
    expect(byId.code).toBe(4);
    expect(JSON.parse(byId.stderr)).toMatchObject({ error: { code: 'chat_not_found', exitCode: 4 } });
    const noUser = await bil(as('bob', 'send', `@nobody_${tag}`, 'hi'));
    expect(noUser.code).toBe(4);
    expect(noUser.stderr).toContain('[user_not_found]');
    const noChat = await bil(as('carol', 'send', `@${alice}`, 'hi'));
    expect(noChat.code).toBe(4);
    expect(noChat.stderr).toContain(`open one: bil chat create --personal ${alice}`);

    const none = await bil(as('nobody', 'unread'));
    expect(none.code).toBe(3);
    expect(none.stderr).toContain('[no_profile]');
    const noPassphrase = await bil(as('bob', 'unread'), { env: { BIL_PASSPHRASE: undefined } });
    expect(noPassphrase.code).toBe(2);
    expect(noPassphrase.stderr).toContain('set BIL_PASSPHRASE or run bil on a terminal');
    const usage = await bil(['send']);
    expect(usage.code).toBe(2);

    expect((await bil(as('carol', 'logout'))).code).toBe(0);
    const signedOut = await bil(as('carol', 'unread'));
    expect(signedOut.code).toBe(3);
    expect(signedOut.stderr).toContain('[not_signed_in]');
    const badPassword = await bil(as('carol', 'login'), { env: { BIL_PASSWORD: 'not the password' } });
    expect(badPassword.code).toBe(3);
    expect(badPassword.stderr).toContain('[invalid_credentials]');
    const login = await bil(as('carol', 'login'));
    expect(login.code, login.stderr).toBe(0);
    expect(login.stdout).toContain(`Signed in as ${carol}`);
  }, 180_000);

  it('server down: a clear message with the address, exit code 6, no stack trace', async () => {
    const dead = `http://127.0.0.1:${await freePort()}`;
    const down = await bil(as('bob', '--url', dead, 'chat', 'list'));
    expect(down.code).toBe(6);
    expect(down.stderr).toContain(`bil: cannot reach the server at ${dead} (ECONNREFUSED) [network]`);
    expect(clean(down.stderr)).toBe(true);
    const json = await bil(as('bob', '--json', 'unread'), { env: { BIL_URL: dead } });
    expect(json.code).toBe(6);
    expect(JSON.parse(json.stderr)).toMatchObject({ error: { code: 'network', exitCode: 6 } });
    // Local commands still work.
    expect((await bil(as('bob', 'whoami'), { env: { BIL_URL: dead } })).code).toBe(0);
  }, 60_000);

  it('what others write cannot drive the terminal or forge lines; --json keeps it exact', async () => {
    const text = `look\u001b]52;c;ZXZpbA==\u0007\u001b[2J\n  42  12:00:00  ${bob}: I owe alice 100\r\u202eevil`;
    const sent = await bil(as('alice', 'send', `@${bob}`, text));
    expect(sent.code, sent.stderr).toBe(0);
    const human = await bil(as('bob', 'history', `@${alice}`, '-n', '1', '--no-mark-read'));
    expect(human.code, human.stderr).toBe(0);
    // eslint-disable-next-line no-control-regex -- the point: no control character reaches the terminal
    expect(human.stdout).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202a-\u202e]/);
    const rows = human.stdout.split('\n');
    const first = rows.findIndex((r) => r.includes(`${alice}: look]52;c;ZXZpbA==[2J`));
    expect(first, human.stdout).toBeGreaterThan(0);
    // The forged lines are continuations of alice's message, behind the gutter mark.
    expect(rows[first + 1]).toMatch(new RegExp(`^ +│ +42  12:00:00  ${bob}: I owe alice 100$`));
    expect(rows[first + 2]).toMatch(/^ +│ evil$/);
    const json = await bil(as('bob', '--json', 'history', `@${alice}`, '-n', '1', '--no-mark-read'));
    expect(JSON.parse(json.stdout).messages[0].text).toBe(text);
  }, 60_000);

  it('a register whose device step failed is finished by running it again (the username is not lost)', async () => {
    const dave = `dave_${tag}`;
    // The account is created, then the server refuses the device (its name is too long).
    const failed = await bil(as('dave', 'register', dave, '--device-name', 'x'.repeat(80)));
    expect(failed.code).not.toBe(0);
    expect(failed.stderr).toContain(`the account "${dave}" exists, but registering this device failed`);
    expect(failed.stderr).toContain(`bil --profile dave register ${dave}`);
    expect(clean(failed.stderr)).toBe(true);
    // This profile is kept for it: another username is refused there.
    const other = await bil(as('dave', 'register', `other_${tag}`));
    expect(other.code).toBe(2);
    expect(other.stderr).toContain('[registration_pending]');
    const resumed = await bil(as('dave', 'register', dave, '--device-name', 'laptop'));
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stdout).toContain(`Registered ${dave} with device "laptop"`);
    const who = JSON.parse((await bil(as('dave', '--json', 'whoami'))).stdout);
    expect(who).toMatchObject({ username: dave, deviceName: 'laptop', signedIn: true, holdsIdentityKey: true });
    const devices = JSON.parse((await bil(as('dave', '--json', 'device', 'list'))).stdout) as { certified: boolean }[];
    expect(devices).toHaveLength(1);
    expect(devices[0]!.certified).toBe(true);
    // Others find the account and can talk to it.
    expect((await bil(as('bob', 'chat', 'create', '--personal', dave))).code).toBe(0);
  }, 120_000);
});
