// Replies, reactions, edits and delete-for-me in the web client (issue #17,
// sdk.md "Replies, reactions, edits"), against the real system: Bob is the SDK
// from Node, Alice the page in Chromium. Bob's many reactions make whole
// history pages that show nothing: "Load older messages" pages on by the
// SDK's `span` and reaches the message before them. Alice replies (the quote
// shows and jumps to its original), reacts and takes it back, edits her reply
// (the edit history on demand), sees Bob's edit arrive live (`updated`), and
// deletes one of Bob's messages for herself (still gone after a reload).
// axe on the screens; no CSP problem. Shared set-up: test/browser.ts.
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BilClient, MemoryKeyStore, type HistoryMessage } from '@bil/sdk';
import { axe, closeAll, person, register, reopen, run, skipReason, startWebSystem, type Person, type WebSystem } from './browser.js';

/** Reactions Bob sends before his newest message: more than two pages of 30, all hidden from the list. */
const REACTIONS = 71;

describe.skipIf(skipReason !== null)('replies, reactions, edits and delete for me in the web client', () => {
  let system: WebSystem;
  let alice: Person;
  let bob: BilClient;
  let chatId: string;

  beforeAll(async () => {
    system = await startWebSystem('web-content');
    alice = await person('alice', system.url);
    await register(alice);
  });

  afterAll(async () => {
    await closeAll();
    await system?.stop();
  });

  it('pages past hidden messages, replies, reacts, edits and deletes for me', async () => {
    const page = alice.page;
    bob = new BilClient({ baseUrl: system.url.replace(/\/$/, ''), keyStore: new MemoryKeyStore() });
    await bob.register({ username: `bob-${run}`, password: 'bob correct horse battery' });
    const aliceUser = await bob.contacts.find(alice.username);
    ({ chatId } = await bob.chats.createPersonal(aliceUser.userId));
    const oldest = await bob.messages.send(chatId, 'the oldest message from Bob');
    // Add and take back a thumbs-up, ending with it added: the pages of reactions show nothing in the list.
    for (let i = 0; i < REACTIONS; i++) await bob.messages.react(chatId, oldest.messageId, '👍', { remove: i % 2 === 1 });
    const newest = await bob.messages.send(chatId, 'the newest message from Bob');

    // Alice opens the chat: the newest page shows one message, and there is more.
    const item = page.locator('.chat-item').first();
    await item.waitFor({ timeout: 30_000 });
    await item.click();
    await page.locator('.message.theirs', { hasText: 'the newest message from Bob' }).waitFor({ timeout: 30_000 });
    await expect.poll(() => page.locator('.message').count(), { timeout: 30_000 }).toBe(1);
    // "Load older" pages on from the span the server covered, past the pages with nothing to show.
    await page.getByRole('button', { name: 'Load older messages' }).click();
    const oldRow = page.locator(`.message[data-message-id="${oldest.messageId}"]`);
    await oldRow.waitFor({ timeout: 30_000 });
    await oldRow.getByRole('button', { name: /^👍 1: / }).waitFor();
    await expect.poll(() => page.getByRole('button', { name: 'Load older messages' }).count(), { timeout: 30_000 }).toBe(0);

    // Reply to Bob's newest: the quote shows above Alice's message, and Bob's SDK reads the reply.
    const newRow = page.locator(`.message[data-message-id="${newest.messageId}"]`);
    await newRow.getByRole('button', { name: 'Message actions' }).click();
    await axe(page, 'message actions');
    await newRow.getByRole('button', { name: 'Reply', exact: true }).click();
    await page.getByRole('status').filter({ hasText: 'Replying to' }).waitFor();
    await page.getByLabel(/^Message to /).fill('my reply to Bob');
    await page.getByLabel(/^Message to /).press('Enter');
    const mine = page.locator('.message.mine', { hasText: 'my reply to Bob' });
    await mine.locator('.quote', { hasText: 'the newest message from Bob' }).waitFor({ timeout: 30_000 });
    const read = async (): Promise<HistoryMessage[]> => (await bob.messages.history(chatId, { limit: 10 })).messages;
    await expect.poll(async () => (await read()).find((m) => m.ok && m.text === 'my reply to Bob'), { timeout: 30_000 }).toMatchObject({ content: { reply_to: { message_id: newest.messageId } } });

    // React to it with a heart: the count and who reacted show (from the live `updated`); selecting it takes it back.
    await newRow.getByRole('button', { name: 'Message actions' }).click();
    await newRow.getByRole('button', { name: 'React ❤️' }).click();
    const heart = newRow.getByRole('button', { name: /^❤️ 1: you/ });
    await heart.waitFor({ timeout: 30_000 });
    await expect(heart.getAttribute('aria-pressed')).resolves.toBe('true');
    await expect.poll(async () => (await read()).map((m) => (m.ok && m.messageId === newest.messageId ? m.reactions : undefined)).find((r) => r !== undefined), { timeout: 30_000 }).toEqual({ '❤️': [aliceUser.userId] });
    await heart.click();
    await expect.poll(() => newRow.getByRole('button', { name: /^❤️/ }).count(), { timeout: 30_000 }).toBe(0);

    // Edit her reply: the composer says so, "(edited)" shows, and the edit history on demand.
    await mine.getByRole('button', { name: 'Message actions' }).click();
    await mine.getByRole('button', { name: 'Edit', exact: true }).click();
    await page.getByRole('status').filter({ hasText: 'Editing your message' }).waitFor();
    await expect(page.getByLabel(/^Message to /).inputValue()).resolves.toBe('my reply to Bob');
    await page.getByLabel(/^Message to /).fill('my edited reply to Bob');
    await page.getByRole('button', { name: 'Save' }).click();
    const edited = page.locator('.message.mine', { hasText: 'my edited reply to Bob' });
    await edited.getByRole('button', { name: '(edited)' }).click({ timeout: 30_000 });
    await edited.getByRole('list', { name: 'Edit history' }).filter({ hasText: 'Original: my reply to Bob' }).waitFor();
    await axe(page, 'reply, reactions and edit history');
    await expect.poll(async () => (await read()).map((m) => (m.ok && m.content?.kind === 'text' && m.content.text === 'my reply to Bob' ? m.text : null)).find((t) => t !== null), { timeout: 30_000 }).toBe('my edited reply to Bob');

    // Bob edits his newest message: it changes live on Alice's page.
    await bob.messages.edit(chatId, newest.messageId, 'the newest message from Bob, edited');
    await page.locator('.message.theirs', { hasText: 'the newest message from Bob, edited' }).getByRole('button', { name: '(edited)' }).waitFor({ timeout: 30_000 });

    // Bob replies to his oldest message: the quote jumps to it (scrolled to and focused).
    await bob.messages.sendText(chatId, 'about that first one', { replyTo: oldest.messageId });
    const reply = page.locator('.message.theirs', { hasText: 'about that first one' });
    await reply.getByRole('button', { name: /^Reply to .*the oldest message from Bob/ }).click({ timeout: 30_000 });
    await expect.poll(() => page.evaluate(() => document.activeElement?.getAttribute('data-message-id')), { timeout: 30_000 }).toBe(oldest.messageId);

    // Delete for me: the message leaves Alice's page, and stays gone after a reload; Bob still has it.
    await oldRow.getByRole('button', { name: 'Message actions' }).click();
    await oldRow.getByRole('button', { name: 'Delete for me' }).click();
    await expect.poll(() => oldRow.count(), { timeout: 30_000 }).toBe(0);
    await reopen(alice);
    await page.locator('.chat-item').first().click();
    await page.locator('.message.theirs', { hasText: 'about that first one' }).waitFor({ timeout: 30_000 });
    while ((await page.getByRole('button', { name: 'Load older messages' }).count()) > 0) {
      await page.getByRole('button', { name: 'Load older messages' }).click();
      await page.waitForTimeout(300);
    }
    await expect.poll(() => oldRow.count(), { timeout: 30_000 }).toBe(0);
    // Bob's reply still shows the quote he signed; its original is not there to jump to.
    await page.getByRole('button', { name: /^Reply to .*the oldest message from Bob/ }).click();
    await page.getByRole('status').filter({ hasText: 'The original message isn’t available' }).waitFor({ timeout: 30_000 });
    expect((await bob.messages.history(chatId, { after: 0, limit: 5 })).messages[0]).toMatchObject({ messageId: oldest.messageId });
    expect(alice.problems).toEqual([]);
  });

  it('sends an image with a thumbnail made in the browser, and saves a file Bob sent', async () => {
    const page = alice.page;
    const png = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==', 'base64');
    await page.getByLabel(/^Message to /).fill('a picture');
    await page.getByLabel('Attach a file').setInputFiles({ name: 'dot.png', mimeType: 'image/png', buffer: png });
    const sent = page.locator('.message.mine', { hasText: 'a picture' });
    await sent.getByRole('img', { name: 'Image: dot.png' }).waitFor({ timeout: 60_000 });
    await sent.getByRole('button', { name: /^Save dot\.png/ }).waitFor();
    // Bob reads the reference (with the browser's JPEG thumbnail) and decrypts exactly the bytes Alice chose.
    const got = await (async () => {
      for (let i = 0; i < 60; i++) {
        const m = (await bob.messages.history(chatId, { limit: 5 })).messages.find((x) => x.ok && x.text === 'a picture');
        if (m?.ok && m.content?.kind === 'text' && m.content.attachments?.length) return m.content.attachments[0]!;
        await new Promise((r) => setTimeout(r, 500));
      }
      throw new Error('Bob never read the picture');
    })();
    expect(got).toMatchObject({ name: 'dot.png', mime: 'image/png', size: png.length, thumbnail: { mime: 'image/jpeg', width: 1, height: 1 } });
    const parts: Uint8Array[] = [];
    for await (const b of bob.attachments.download(got)) parts.push(b);
    expect(Buffer.concat(parts).equals(png)).toBe(true);

    // Bob sends a text file: Alice saves it, decrypted in the page.
    const notes = 'the notes, end-to-end encrypted\n'.repeat(100);
    const ref = await bob.attachments.upload(chatId, new Blob([notes], { type: 'text/plain' }), { name: 'notes.txt', mime: 'text/plain' });
    await bob.attachments.send(chatId, [ref], 'the notes');
    const row = page.locator('.message.theirs', { hasText: 'the notes' });
    const button = row.getByRole('button', { name: /^Save notes\.txt/ });
    await button.waitFor({ timeout: 30_000 });
    await axe(page, 'attachments');
    const [download] = await Promise.all([page.waitForEvent('download', { timeout: 60_000 }), button.click()]);
    expect(download.suggestedFilename()).toBe('notes.txt');
    expect(readFileSync((await download.path())!, 'utf8')).toBe(notes);
    expect(alice.problems).toEqual([]);
  });

  it('deletes for everyone (the tombstone shows as "Message deleted" on both sides) and sets the disappearing timer', async () => {
    const page = alice.page;
    await page.getByLabel(/^Message to /).fill('a message to take back');
    await page.getByLabel(/^Message to /).press('Enter');
    const row = page.locator('.message.mine', { hasText: 'a message to take back' });
    await row.waitFor({ timeout: 30_000 });
    const id = await (async () => {
      for (let i = 0; i < 60; i++) {
        const m = (await bob.messages.history(chatId, { limit: 5 })).messages.find((x) => x.ok && x.text === 'a message to take back');
        if (m) return m.messageId;
        await new Promise((r) => setTimeout(r, 500));
      }
      throw new Error('Bob never read it');
    })();
    await row.getByRole('button', { name: 'Message actions' }).click();
    await row.getByRole('button', { name: 'Delete for everyone' }).click();
    const tomb = page.locator(`.message[data-message-id="${id}"]`, { hasText: 'Message deleted' });
    await tomb.waitFor({ timeout: 30_000 });
    // Bob's SDK verified Alice's signed tombstone.
    await expect.poll(async () => (await bob.messages.history(chatId, { limit: 10 })).messages.find((m) => m.messageId === id), { timeout: 30_000 }).toMatchObject({ ok: false, error: 'deleted_by_sender' });
    // Bob deletes one of his: it turns into "Message deleted" live on Alice's page.
    const his = await bob.messages.send(chatId, 'Bob will take this back');
    await page.locator('.message.theirs', { hasText: 'Bob will take this back' }).waitFor({ timeout: 30_000 });
    await bob.chats.deleteForEveryone(chatId, his.messageId);
    await page.locator(`.message[data-message-id="${his.messageId}"]`, { hasText: 'Message deleted' }).waitFor({ timeout: 30_000 });

    // The timer, in the chat's panel.
    await page.getByRole('button', { name: 'Safety number' }).click();
    const put = page.waitForResponse((r) => r.request().method() === 'PUT' && r.url().endsWith('/timer'), { timeout: 30_000 });
    await page.getByLabel('Disappearing messages').selectOption({ label: '1 hour' });
    expect((await put).status()).toBe(200);
    await page.getByRole('status').filter({ hasText: 'New messages disappear after 1 hour.' }).waitFor();
    await axe(page, 'deleted message and timer');
    expect(alice.problems).toEqual([]);
  });
});
