// The web client in a real browser against the real system: scripts/start.mjs
// on free ports with a private database, Redis prefix and NATS prefix (as
// tests/system does), its gateway serving apps/web/dist; Debian's Chromium
// (/usr/bin/chromium, installed by scripts/ci-browser.sh) driven by
// playwright-core, one fresh user-data directory per person. Alice and Bob
// register, chat live (typing, presence, read receipt, safety numbers), Bob
// leaves, comes back, unlocks with his passphrase, catches up and pages back
// through history; Alice logs out and in, adds a second browser as a new
// device and revokes it; a group of three (rename, roles, one removed); a
// digest in three modes (the own-model one against a fake OpenAI-compatible
// server on another origin, which the gateway's CSP names); a message sent offline goes once; a contact's identity
// reset raises the blocking alert; password change and account deletion.
// axe-core runs on every screen (serious or critical violations fail); no
// page breaks the Content-Security-Policy;
// nothing lands in localStorage and no request carries a passphrase.
// Screenshots of the main screens: see SHOT_DIRS.
// Long on purpose: one story, each step building on the one before.
// Shared set-up (servers, Chromium, registering, axe): test/browser.ts.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BilClient, MemoryKeyStore } from '@bil/sdk';
import { FakeOpenAI, MODEL_SUMMARY, systemConfigDir } from '@bil/testkit';
import { axe, closeAll, onClose, person as browserPerson, register, run, send, shot, skipReason, startWebSystem, type Person, type WebSystem } from './browser.js';

let url = '';
const person = (name: string, viewport?: { width: number; height: number }): Promise<Person> => browserPerson(name, url, viewport ? { viewport } : {});

describe.skipIf(skipReason !== null)('the web client in Chromium against the real services', () => {
  let system: WebSystem;
  /** The person's own model for a digest: another origin, allowed by GATEWAY_WEB_MODEL_ORIGINS. */
  let model: FakeOpenAI;
  let alice: Person;
  let bob: Person;

  beforeAll(async () => {
    model = new FakeOpenAI('sk-bobs-own-key', 'bobs-model');
    system = await startWebSystem('web', async (ports) => {
      model.corsOrigin = `http://127.0.0.1:${ports.BIL_GATEWAY_PORT}`;
      await model.start();
      onClose(() => model.stop());
      return { GATEWAY_WEB_MODEL_ORIGINS: new URL(model.url).origin };
    });
    url = system.url;
    alice = await person('alice');
    bob = await person('bob');
  });

  afterAll(async () => {
    await closeAll();
    await system?.stop();
  });

  it('two people register and chat live; one leaves, comes back, unlocks, catches up and pages back through history', async () => {
    // The gateway serves the app with its CSP.
    const res = await fetch(url);
    expect(res.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(res.headers.get('content-security-policy')).toContain("script-src 'self'");

    await alice.page.goto(url);
    await alice.page.getByRole('heading', { name: 'Create an account' }).waitFor();
    await axe(alice.page, 'welcome');
    await shot(alice.page, 'welcome');
    await register(alice);
    await register(bob, { keyboard: true });
    // A second tab of Bob's browser can't open the same device (two clients would spend one refresh token).
    const tab = await bob.context.newPage();
    await tab.goto(url);
    await tab.getByRole('heading', { name: 'bil-message is open in another tab' }).waitFor();
    await axe(tab, 'open in another tab');
    await tab.close();
    await axe(bob.page, 'empty chat list');

    // Alice opens a personal chat with Bob by his username and writes.
    await alice.page.getByLabel('New chat with').fill(bob.username);
    await alice.page.getByRole('button', { name: 'Start' }).click();
    await alice.page.getByRole('heading', { name: bob.username }).waitFor();
    await send(alice, 'Hello Bob, this is end-to-end encrypted');

    // Bob sees it arrive live in his list: unread count and the newest message.
    const item = bob.page.locator('.chat-item').first();
    await item.locator('.badge', { hasText: '1 unread' }).waitFor({ timeout: 30_000 });
    await expect(item.locator('.chat-preview').textContent()).resolves.toBe('Hello Bob, this is end-to-end encrypted');
    await axe(bob.page, 'chat list');
    await shot(bob.page, 'chat-list');

    // Bob opens it from the keyboard (marks it read), says who wrote, and answers; typing shows on Alice's side.
    await item.focus();
    await bob.page.keyboard.press('Enter');
    await bob.page.locator('.message.theirs', { hasText: 'Hello Bob' }).waitFor();
    // Alice wrote first: Bob's device doesn't know her username until he says who he thinks it is and the directory agrees.
    await bob.page.getByLabel(/Who do you think it is/).fill(bob.username);
    await bob.page.getByRole('button', { name: 'Check' }).click();
    await bob.page.getByRole('alert').filter({ hasText: 'is someone else' }).waitFor();
    await bob.page.getByLabel(/Who do you think it is/).fill(alice.username);
    await bob.page.getByRole('button', { name: 'Check' }).click();
    await bob.page.getByRole('heading', { name: alice.username }).waitFor();
    await bob.page.getByLabel(/^Message to /).pressSequentially('Hi Al', { delay: 20 });
    await alice.page.locator('.typing', { hasText: 'is typing' }).waitFor({ timeout: 30_000 });
    await bob.page.getByLabel(/^Message to /).fill('');
    await send(bob, 'Hi Alice! Received, live.');
    await alice.page.locator('.message.theirs', { hasText: 'Hi Alice! Received, live.' }).waitFor({ timeout: 30_000 });
    // Alice sees Bob online (presence, opt-in for people she shares a chat with).
    await alice.page.locator('.chat-header .presence', { hasText: 'online' }).waitFor({ timeout: 30_000 });
    // Bob read Alice's message: her client shows the receipt.
    await alice.page.locator('.message.mine .meta', { hasText: 'Read' }).waitFor({ timeout: 30_000 });

    // The safety number, on both sides the same digits.
    await alice.page.getByRole('button', { name: 'Safety number' }).click();
    await bob.page.getByRole('button', { name: 'Safety number' }).click();
    const aliceDigits = await alice.page.locator('.digits').textContent();
    const bobDigits = await bob.page.locator('.digits').textContent();
    expect(aliceDigits).toMatch(/^(\d{5} ){11}\d{5}$/);
    expect(bobDigits).toBe(aliceDigits);
    // Beside the digits, the same number as a QR code (inline SVG, so the CSP stays strict).
    const qr = alice.page.getByRole('img', { name: `QR code of the safety number with ${bob.username}` });
    await expect(qr.locator('path').getAttribute('d')).resolves.toMatch(/^M\d/);
    await alice.page.getByLabel('Their number, as they read it out').fill(bobDigits!);
    await alice.page.getByRole('button', { name: 'Mark verified' }).click();
    await alice.page.getByText('Verified.').waitFor();
    await axe(alice.page, 'safety number');
    await shot(alice.page, 'safety-number');
    await alice.page.getByRole('button', { name: 'Safety number' }).click();
    await bob.page.getByRole('button', { name: 'Safety number' }).click();

    // Enough history for two pages.
    for (let i = 1; i <= 32; i++) {
      const box = alice.page.getByLabel(/^Message to /);
      await box.fill(`message ${i} of 32`);
      await box.press('Enter');
    }
    await alice.page.locator('.message.mine', { hasText: 'message 32 of 32' }).waitFor();
    await bob.page.locator('.message.theirs', { hasText: 'message 32 of 32' }).waitFor({ timeout: 60_000 });
    await axe(alice.page, 'chat');
    await shot(alice.page, 'chat');

    // Bob closes the app (the page leaves); Alice writes meanwhile; Bob comes back: the lock screen; the
    // passphrase opens his keys; he catches up (unread count, newest message) and the history is still there.
    await bob.page.goto('about:blank');
    for (const text of ['while you were away 1', 'while you were away 2', 'while you were away 3']) await send(alice, text);
    await bob.page.goto(url);
    await bob.page.getByRole('heading', { name: 'Unlock bil-message' }).waitFor();
    await axe(bob.page, 'lock');
    await shot(bob.page, 'lock');
    await bob.page.getByLabel('Passphrase').fill('not my passphrase');
    await bob.page.getByRole('button', { name: 'Unlock' }).click();
    await bob.page.getByRole('alert').filter({ hasText: 'Wrong passphrase.' }).waitFor({ timeout: 30_000 });
    await bob.page.getByLabel('Passphrase').fill(bob.passphrase);
    await bob.page.getByRole('button', { name: 'Unlock' }).click();
    await bob.page.getByRole('status').filter({ hasText: 'Connected' }).waitFor({ timeout: 60_000 });
    const back = bob.page.locator('.chat-item').first();
    await back.locator('.badge', { hasText: '3 unread' }).waitFor({ timeout: 30_000 });
    await expect(back.locator('.chat-preview').textContent()).resolves.toBe('while you were away 3');
    await back.click();
    await bob.page.locator('.message.theirs', { hasText: 'while you were away 3' }).waitFor();
    await bob.page.locator('.message.theirs', { hasText: 'message 32 of 32' }).waitFor();
    // 30 per page: the first messages are one page up.
    await expect(bob.page.locator('.message', { hasText: 'Hello Bob' }).count()).resolves.toBe(0);
    await bob.page.getByRole('button', { name: 'Load older messages' }).click();
    // The button says "Loading…" while the page loads: wait until it is gone (nothing older), not only renamed.
    await bob.page.locator('button.older').waitFor({ state: 'detached' });
    // The list is virtualised: the page above loaded while the view stayed; Home on the focused list goes to the top.
    await bob.page.getByLabel(/^Messages with /).focus();
    await bob.page.keyboard.press('Home');
    await bob.page.locator('.message.theirs', { hasText: 'Hello Bob, this is end-to-end encrypted' }).waitFor();
    await bob.page.locator('.message.mine', { hasText: 'Hi Alice! Received, live.' }).waitFor();
    await expect(bob.page.locator('.messages li.row').first().getAttribute('aria-setsize')).resolves.toBe('37');

    // Phone width: the chat alone, with a way back to the list.
    await bob.page.setViewportSize({ width: 390, height: 800 });
    await expect(bob.page.locator('.chat-list').isVisible()).resolves.toBe(false);
    await axe(bob.page, 'chat at phone width');
    await shot(bob.page, 'chat-phone');
    await bob.page.getByRole('button', { name: 'Back to chats' }).click();
    await bob.page.locator('.chat-list').waitFor();
    await bob.page.setViewportSize({ width: 1200, height: 800 });

    // What this browser keeps: nothing in localStorage, only ciphertext in IndexedDB; no request carried a passphrase.
    const stored = (await bob.page.evaluate(`new Promise((resolve, reject) => {
      const open = indexedDB.open('bil-message');
      open.onerror = () => reject(open.error);
      open.onsuccess = () => {
        const get = open.result.transaction('sealed').objectStore('sealed').get('profile');
        get.onsuccess = () => resolve({ localStorage: localStorage.length, sessionStorage: sessionStorage.length, profile: get.result });
      };
    })`)) as { localStorage: number; sessionStorage: number; profile: string };
    expect(stored.localStorage).toBe(0);
    expect(stored.sessionStorage).toBe(0);
    expect(JSON.parse(stored.profile)).toMatchObject({ format: 'bil-sdk-key-store', kdf: { name: 'scrypt' }, cipher: { name: 'aes-256-gcm' } });
    expect(stored.profile).not.toContain(bob.username);
    for (const p of [alice, bob]) {
      expect(p.bodies.length).toBeGreaterThan(0);
      for (const body of p.bodies) expect(body).not.toContain(p.passphrase);
    }
  });

  it('logs out and back in, adds a second browser as a new device, lists and revokes it', async () => {
    await alice.page.getByRole('button', { name: 'Log out' }).click();
    await alice.page.getByRole('heading', { name: 'Sign in' }).waitFor();
    await axe(alice.page, 'sign in');
    await alice.page.getByLabel('Account password').fill(alice.password);
    await alice.page.getByRole('button', { name: 'Sign in' }).click();
    await alice.page.getByRole('status').filter({ hasText: 'Connected' }).waitFor({ timeout: 60_000 });

    // A second browser for Alice: a link request, approved in her first browser, then her password.
    const second = await person('alice2');
    await second.page.goto(url);
    await second.page.getByRole('button', { name: 'I already have an account' }).click();
    await second.page.getByLabel('Passphrase for this browser').fill(second.passphrase);
    await second.page.getByRole('button', { name: 'Make a link request' }).click();
    const request = await second.page.locator('#link-request').inputValue({ timeout: 60_000 });
    expect(request).toMatch(/^bil-link-request:[A-Za-z0-9_-]+$/);
    await second.page.getByRole('img', { name: 'QR code of the link request' }).waitFor();
    await axe(second.page, 'link request');

    await alice.page.getByRole('button', { name: alice.username }).click();
    await alice.page.getByRole('heading', { name: 'Devices' }).waitFor();
    await alice.page.getByLabel('Paste the link request the new device shows').fill(request);
    await alice.page.getByRole('button', { name: 'Approve' }).click();
    const approval = await alice.page.locator('#approval-out').inputValue({ timeout: 60_000 });
    expect(approval).toMatch(/^bil-link-approval:/);

    await second.page.getByLabel('2. Paste the approval it shows').fill(approval);
    await second.page.getByLabel('Your account password').fill(alice.password);
    await second.page.getByRole('button', { name: 'Add this browser' }).click();
    await second.page.getByRole('status').filter({ hasText: 'Connected' }).waitFor({ timeout: 60_000 });

    // Alice's first browser lists both devices.
    await alice.page.getByRole('button', { name: 'Back to chats' }).click();
    await alice.page.getByRole('button', { name: alice.username }).click();
    await alice.page.locator('.devices li').nth(1).waitFor();
    await expect(alice.page.locator('.devices li').count()).resolves.toBe(2);
    await axe(alice.page, 'account and devices');
    await shot(alice.page, 'devices');

    // Bob writes; the new device gets it live (it holds no key for what came before it was linked).
    await bob.page.locator('.chat-item').first().click();
    await send(bob, 'Welcome to your new browser, Alice');
    await second.page.locator('.chat-item').first().click({ timeout: 30_000 });
    await second.page.locator('.message.theirs', { hasText: 'Welcome to your new browser, Alice' }).waitFor({ timeout: 30_000 });


    // Alice revokes the second browser: its live connection ends at once, and it can't sign in again.
    alice.page.once('dialog', (d) => void d.accept());
    await alice.page.locator('.devices li').filter({ hasNotText: '(this browser)' }).getByRole('button', { name: 'Revoke' }).click();
    await alice.page.locator('.devices li').nth(1).waitFor({ state: 'detached', timeout: 30_000 });
    await second.page.getByRole('heading', { name: 'Sign in' }).waitFor({ timeout: 30_000 });
    await second.page.getByLabel('Account password').fill(alice.password);
    await second.page.getByRole('button', { name: 'Sign in' }).click();
    await second.page.getByRole('alert').filter({ hasText: 'This device was revoked.' }).waitFor({ timeout: 30_000 });
    await axe(second.page, 'revoked device');
    await second.page.getByRole('button', { name: 'Remove it from this browser' }).click();
    await second.page.getByRole('heading', { name: 'Create an account' }).waitFor();

    for (const p of [alice, bob, second]) expect(p.problems, p.name).toEqual([]);
  });

  it('a group of three with an encrypted title; a removed member no longer gets what follows', async () => {
    const carol = await person('carol');
    await register(carol);
    await alice.page.getByRole('button', { name: 'Back to chats' }).click();
    await alice.page.getByText('New group').click();
    await alice.page.getByLabel(/^Group name/).fill('Weekend trip');
    await alice.page.getByLabel(/^Members’ usernames/).fill(`${bob.username}, ${carol.username}`);
    await alice.page.getByRole('button', { name: 'Create group' }).click();
    await alice.page.getByRole('heading', { name: 'Weekend trip' }).waitFor({ timeout: 60_000 });
    await send(alice, 'Plans for the weekend?');

    // Bob and Carol see the group, its title decrypted from the signed record, and the message.
    for (const p of [bob, carol]) {
      const group = p.page.locator('.chat-item', { hasText: 'Weekend trip' });
      await group.waitFor({ timeout: 30_000 });
      await group.click();
      await p.page.locator('.message.theirs', { hasText: 'Plans for the weekend?' }).waitFor({ timeout: 30_000 });
    }
    await send(carol, 'Count me in');
    await alice.page.locator('.message.theirs', { hasText: 'Count me in' }).waitFor({ timeout: 30_000 });
    await expect(alice.page.locator('.message.theirs', { hasText: 'Count me in' }).locator('.sender').textContent()).resolves.toBe(`${carol.username}: `);
    // Presence of the group's members (from its verified record): both are online.
    await alice.page.waitForFunction((names) => names.every((n) => document.querySelector('.chat-header .presence')?.textContent?.includes(n)), [bob.username, carol.username], { timeout: 30_000 });

    // Alice removes Carol (a new epoch Carol never gets); what follows reaches Bob, not Carol.
    await alice.page.getByRole('button', { name: 'Members' }).click();
    await alice.page.locator('.devices li').nth(2).waitFor({ timeout: 30_000 });
    await axe(alice.page, 'group members');
    await shot(alice.page, 'group');
    // Bob made an admin, and a new (encrypted) title: new signed epochs both.
    await alice.page.getByRole('button', { name: `Make ${bob.username} an admin` }).click();
    await alice.page.getByRole('button', { name: `Make ${bob.username} a member` }).waitFor({ timeout: 30_000 });
    await alice.page.getByLabel('Group name', { exact: true }).fill('Weekend trip (Saturday)');
    await alice.page.getByRole('button', { name: 'Rename' }).click();
    await alice.page.getByRole('heading', { name: 'Weekend trip (Saturday)' }).waitFor({ timeout: 30_000 });
    await alice.page.getByRole('button', { name: `Remove ${carol.username}` }).click();
    await alice.page.locator('.devices li').nth(2).waitFor({ state: 'detached', timeout: 30_000 });
    await send(alice, 'Carol is not in this group any more');
    await bob.page.locator('.message.theirs', { hasText: 'Carol is not in this group any more' }).waitFor({ timeout: 30_000 });
    await bob.page.getByRole('heading', { name: 'Weekend trip (Saturday)' }).waitFor({ timeout: 30_000 });
    await carol.page.locator('.chat-item', { hasText: 'Weekend trip' }).waitFor({ state: 'detached', timeout: 30_000 });
    await expect(carol.page.content()).resolves.not.toContain('Carol is not in this group any more');
    await alice.page.getByRole('button', { name: 'Members' }).click();
    for (const p of [alice, bob, carol]) expect(p.problems, p.name).toEqual([]);
  });

  it('offers a digest of many unread messages: on the device (nothing leaves it), by the digest service, with his own model', async () => {
    // Bob is in the group; Alice writes 21 messages in their personal chat.
    await alice.page.locator('.chat-item', { hasText: bob.username }).click();
    const lines = ['Lunch on Friday at the harbour restaurant?', 'I booked a table for six at noon.', 'Carol brings the tent for the weekend after.', 'Please confirm by Thursday evening.'];
    for (let i = 0; i < 21; i++) {
      const box = alice.page.getByLabel(/^Message to /);
      await box.fill(`${lines[i % lines.length]} (${i + 1})`);
      await box.press('Enter');
    }
    await alice.page.locator('.message.mine', { hasText: '(21)' }).waitFor({ timeout: 30_000 });
    const item = bob.page.locator('.chat-item', { hasText: alice.username });
    await item.locator('.badge', { hasText: '21 unread' }).waitFor({ timeout: 30_000 });
    await item.click();
    await bob.page.getByRole('heading', { name: '21 unread messages: read a summary first?' }).waitFor();
    const onDevice = await bob.page.locator('.disclosure').textContent();
    expect(onDevice).toMatch(/\S/);
    await axe(bob.page, 'digest offer');
    await bob.page.getByRole('button', { name: 'Summarise' }).click();
    const summary = bob.page.locator('.summary');
    await summary.filter({ hasText: 'on this device (nothing left it)' }).waitFor({ timeout: 60_000 });
    await expect(summary.textContent()).resolves.toContain('Topic:');

    // By the digest service: the key comes from the operator (here: what start.mjs wrote), never from the server.
    await bob.page.getByLabel('By the digest service').check();
    const disclosure = await bob.page.locator('.disclosure').textContent();
    const servers = JSON.parse(readFileSync(join(systemConfigDir(system.env), 'servers.json'), 'utf8')) as Record<string, { digest_service_key: string }>;
    await bob.page.getByLabel(/The digest service’s key/).fill(servers[url.replace(/\/$/, '')]!.digest_service_key);
    await bob.page.getByRole('button', { name: 'Summarise' }).click();
    await summary.filter({ hasText: 'by the digest service' }).waitFor({ timeout: 90_000 });
    // Before the button, the screen said what leaves the device in this mode (not the on-device text).
    expect(disclosure).toMatch(/\S/);
    expect(disclosure).not.toBe(onDevice);
    await axe(bob.page, 'digest summary');
    await shot(bob.page, 'digest');

    // With his own model: offered because the gateway allows its origin; the browser calls it with his key
    // (the bil server never sees the key or the messages), and only an allowed origin is accepted.
    await bob.page.getByLabel('With my own model').check();
    const endpoint = bob.page.getByLabel('Model endpoint (OpenAI-compatible)');
    await expect(endpoint.inputValue()).resolves.toBe(model.url);
    await endpoint.fill('https://models.example.com/v1');
    await bob.page.getByText(/allows model endpoints at/).waitFor();
    await expect(bob.page.getByRole('button', { name: 'Summarise' }).isDisabled()).resolves.toBe(true);
    await endpoint.fill(model.url);
    await bob.page.getByLabel('Model name (empty: the default)').fill('bobs-model');
    await bob.page.getByLabel(/Your API key/).fill('sk-bobs-own-key');
    await expect(bob.page.locator('.disclosure').textContent()).resolves.toContain(model.url);
    await axe(bob.page, 'digest with own model');
    const sent: { url: string; body: string }[] = [];
    const record = (r: { url(): string; postData(): string | null }) => sent.push({ url: r.url(), body: r.postData() ?? '' });
    bob.page.on('request', record);
    await bob.page.getByRole('button', { name: 'Summarise' }).click();
    await summary.filter({ hasText: 'by your model' }).waitFor({ timeout: 60_000 });
    bob.page.off('request', record);
    await expect(summary.textContent()).resolves.toContain(MODEL_SUMMARY.topic);
    expect(model.seen.at(-1)).toMatchObject({ authorization: 'Bearer sk-bobs-own-key', model: 'bobs-model' });
    expect(JSON.stringify(model.seen.at(-1)!.messages)).toContain('Please confirm by Thursday evening.');
    // The key and the messages went to the model's origin only, never to the bil server.
    const elsewhere = sent.filter((r) => !r.url.startsWith(new URL(model.url).origin));
    expect(sent.length).toBeGreaterThan(elsewhere.length);
    expect(elsewhere.filter((r) => r.body.includes('sk-bobs-own-key') || r.body.includes('Please confirm'))).toEqual([]);
    await bob.page.getByRole('button', { name: 'Mark all as read' }).click();
    await bob.page.locator('.digest').waitFor({ state: 'detached' });
    await item.locator('.badge').waitFor({ state: 'detached', timeout: 30_000 });
    expect(bob.problems).toEqual([]);
  });

  it('a message written offline waits in the chat and goes once, with the same id, when the network is back', async () => {
    await alice.context.setOffline(true);
    try {
      const box = alice.page.getByLabel(/^Message to /);
      await box.fill('Written in a tunnel');
      await box.press('Enter');
      await alice.page.locator('.message.pending', { hasText: 'Written in a tunnel' }).filter({ hasText: 'Not sent yet' }).waitFor({ timeout: 30_000 });
      await axe(alice.page, 'chat with a message waiting');
    } finally {
      await alice.context.setOffline(false);
    }
    await alice.page.locator('.message.mine:not(.pending)', { hasText: 'Written in a tunnel' }).waitFor({ timeout: 30_000 });
    await bob.page.locator('.message.theirs', { hasText: 'Written in a tunnel' }).waitFor({ timeout: 30_000 });
    await send(alice, 'and this one after');
    await bob.page.locator('.message.theirs', { hasText: 'and this one after' }).waitFor({ timeout: 30_000 });
    await expect(bob.page.locator('.message.theirs', { hasText: 'Written in a tunnel' }).count()).resolves.toBe(1);
    await expect(alice.page.locator('.message', { hasText: 'Written in a tunnel' }).count()).resolves.toBe(1);

    // Written offline, then the page closed: the message waits sealed in IndexedDB and goes when Alice is back.
    await alice.context.setOffline(true);
    try {
      const box = alice.page.getByLabel(/^Message to /);
      await box.fill('Written before closing the tab');
      await box.press('Enter');
      await alice.page.locator('.message.pending', { hasText: 'Written before closing the tab' }).filter({ hasText: 'Not sent yet' }).waitFor({ timeout: 30_000 });
      await alice.page.goto('about:blank');
    } finally {
      await alice.context.setOffline(false);
    }
    await alice.page.goto(url);
    await alice.page.getByLabel('Passphrase').fill(alice.passphrase);
    await alice.page.getByRole('button', { name: 'Unlock' }).click();
    await alice.page.getByRole('status').filter({ hasText: 'Connected' }).waitFor({ timeout: 60_000 });
    await bob.page.locator('.message.theirs', { hasText: 'Written before closing the tab' }).waitFor({ timeout: 30_000 });
    await alice.page.locator('.chat-item', { hasText: bob.username }).click();
    await alice.page.locator('.message.mine:not(.pending)', { hasText: 'Written before closing the tab' }).waitFor({ timeout: 30_000 });
    await send(alice, 'back again');
    await bob.page.locator('.message.theirs', { hasText: 'back again' }).waitFor({ timeout: 30_000 });
    await expect(bob.page.locator('.message.theirs', { hasText: 'Written before closing the tab' }).count()).resolves.toBe(1);
  });

  it("raises a blocking alert when a contact's identity key changes, and sends again once accepted", async () => {
    // Bob resets his identity from elsewhere (a new identity key; his other devices are revoked).
    const probe = new BilClient({ baseUrl: url.replace(/\/$/, ''), keyStore: new MemoryKeyStore() });
    await probe.register({ username: `probe-${run}`, password: 'probe correct horse battery' });
    const bobUser = await probe.contacts.find(bob.username);
    const reset = new BilClient({ baseUrl: url.replace(/\/$/, ''), keyStore: new MemoryKeyStore() });
    await reset.devices.resetIdentity({ username: bob.username, userId: bobUser.userId, password: bob.password });

    await alice.page.locator('.chat-item', { hasText: bob.username }).click();
    const box = alice.page.getByLabel(/^Message to /);
    await box.fill('Are you still you, Bob?');
    await box.press('Enter');
    const dialog = alice.page.getByRole('alertdialog', { name: `${bob.username}’s safety number changed` });
    await dialog.waitFor({ timeout: 30_000 });
    await alice.page.getByRole('alert').filter({ hasText: 'safety number changed' }).waitFor();
    await axe(alice.page, 'key change alert');
    await shot(alice.page, 'key-change');
    await dialog.getByRole('button', { name: 'Accept the new key' }).click();
    await dialog.waitFor({ state: 'hidden' });
    await alice.page.getByRole('button', { name: 'Send' }).click();
    await alice.page.locator('.message.mine', { hasText: 'Are you still you, Bob?' }).waitFor({ timeout: 30_000 });
    expect(alice.problems).toEqual([]);
  });

  it('changes the password, then deletes the account', async () => {
    await alice.page.getByRole('button', { name: alice.username }).click();
    const newPassword = 'alice another correct horse';
    await alice.page.getByLabel('Current password').fill(alice.password);
    await alice.page.getByLabel('New password').fill(newPassword);
    await alice.page.getByRole('button', { name: 'Change password' }).click();
    await alice.page.getByRole('status').filter({ hasText: 'Password changed.' }).waitFor({ timeout: 30_000 });
    await alice.page.getByText('Delete the account').click();
    await axe(alice.page, 'account settings');
    await alice.page.getByLabel('Password', { exact: true }).fill(alice.password);
    alice.page.once('dialog', (d) => void d.accept());
    await alice.page.getByRole('button', { name: 'Delete my account' }).click();
    await alice.page.getByRole('alert').filter({ hasText: 'Wrong username or password.' }).waitFor({ timeout: 30_000 });
    await alice.page.getByLabel('Password', { exact: true }).fill(newPassword);
    alice.page.once('dialog', (d) => void d.accept());
    await alice.page.getByRole('button', { name: 'Delete my account' }).click();
    await alice.page.getByRole('heading', { name: 'Create an account' }).waitFor({ timeout: 30_000 });
    // The server agrees: nobody has that username any more.
    const probe = new BilClient({ baseUrl: url.replace(/\/$/, ''), keyStore: new MemoryKeyStore() });
    await probe.register({ username: `probe2-${run}`, password: 'probe correct horse battery' });
    await expect(probe.contacts.find(alice.username)).rejects.toMatchObject({ code: 'user_not_found' });
    expect(alice.problems).toEqual([]);
  });
});

const why = skipReason;
if (why) {
  describe('the web client in Chromium', () => {
    it.skip(why, () => undefined);
  });
}
