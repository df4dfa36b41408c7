// A long chat in the browser: Bob (the SDK, from Node) writes N messages to
// Alice while her page is closed; she comes back, unlocks, and her page
// catches up (the rate it takes messages in is printed); she opens the chat
// and scrolls from the bottom to the very first message, the list paging
// history in above while the view stays on the message it showed. Frame
// times (requestAnimationFrame) while scrolling are printed as median and
// p95, and the number of message rows in the DOM must stay small: the list is
// virtualised. N is WEB_LONG_CHAT_MESSAGES (default 300, what CI affords;
// docs/web.md has the figures for 10,000).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BilClient, MemoryKeyStore } from '@bil/sdk';
import { closeAll, person, register, reopen, run, skipReason, startWebSystem, type Person, type WebSystem } from './browser.js';

const N = Number(process.env.WEB_LONG_CHAT_MESSAGES ?? 300);
const MAX_ROWS = 60;

const percentile = (sorted: number[], p: number): number => sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))] ?? 0;

describe.skipIf(skipReason !== null)(`a chat of ${N} messages in the browser`, () => {
  let system: WebSystem;
  let alice: Person;

  beforeAll(async () => {
    system = await startWebSystem('web-long');
    alice = await person('alice', system.url);
    await register(alice);
  });

  afterAll(async () => {
    await closeAll();
    await system?.stop();
  });

  it('catches up, then scrolls from the newest message to the first with a few rows in the DOM', { timeout: 30 * 60_000 }, async () => {
    const bob = new BilClient({ baseUrl: system.url.replace(/\/$/, ''), keyStore: new MemoryKeyStore() });
    await bob.register({ username: `bob-${run}`, password: 'bob correct horse battery' });
    const aliceUser = await bob.contacts.find(alice.username);
    const chat = await bob.chats.createPersonal(aliceUser.userId);

    // Alice's page is closed while Bob writes (a few lines, some long, so rows differ in height).
    await alice.page.goto('about:blank');
    const started = Date.now();
    const text = (i: number) => `message ${i} of ${N}${i % 7 === 0 ? `: ${'a longer line that wraps over more than one row of the chat. '.repeat(1 + (i % 3))}` : ''}`;
    for (let i = 1; i <= N; i += 8) {
      await Promise.all(Array.from({ length: Math.min(8, N - i + 1) }, (_, k) => bob.messages.send(chat.chatId, text(i + k))));
    }
    const sendSeconds = (Date.now() - started) / 1000;

    // Back: unlock; the live connection catches up on everything missed ("Catching up…" until "Connected").
    const back = Date.now();
    await reopen(alice);
    const catchUpSeconds = (Date.now() - back) / 1000;
    const item = alice.page.locator('.chat-item').first();
    await item.locator('.badge', { hasText: `${N} unread` }).waitFor({ timeout: 60_000 });

    // Live: Bob writes more while the page is open on the chat list; the page shows each as it comes.
    const M = Math.min(N, 200);
    const liveStart = Date.now();
    const consoleLines: string[] = [];
    alice.page.on('console', (m) => m.type() !== 'debug' && consoleLines.push(`${m.type()}: ${m.text()}`.slice(0, 300)));
    for (let i = 1; i <= M; i += 8) {
      await Promise.all(Array.from({ length: Math.min(8, M - i + 1) }, (_, k) => bob.messages.send(chat.chatId, `live ${i + k} of ${M}`)));
    }
    const liveSent = (Date.now() - liveStart) / 1000;
    await alice.page
      .waitForFunction((want) => document.querySelector('.chat-item .badge')?.textContent?.startsWith(want), `${N + M}`, { timeout: Math.max(180_000, (N + M) * 200), polling: 50 }) // a miss fails in minutes, not 20
      .catch(async (err: unknown) => {
        const metrics = await (await fetch(`http://127.0.0.1:${system.ports.DELIVERY_METRICS_PORT}/metrics`)).text().catch(() => '');
        const delivery = metrics.split('\n').filter((l) => /^bil_delivery_/.test(l) && !l.includes('_bucket'));
        console.log(`badge: ${await item.locator('.badge').textContent().catch(() => '?')}; page problems: ${JSON.stringify(alice.problems.slice(-5))}; console: ${JSON.stringify(consoleLines.slice(-20))}; delivery: ${delivery.join('; ')}`);
        throw err;
      });
    const liveSeconds = (Date.now() - liveStart) / 1000;
    // The page re-reads its chat list every 45 s (session.ts LIST_CHECK_MS): a badge that took that long was
    // repaired by it, i.e. live frames were missed. Said loudly, not failed: see the session notes.
    if (liveSeconds - liveSent > 40) {
      const m = await (await fetch(`http://127.0.0.1:${system.ports.DELIVERY_METRICS_PORT}/metrics`)).text().catch(() => '');
      const delivery = m.split('\n').filter((l) => /^bil_delivery_/.test(l) && !l.includes('_bucket'));
      console.warn(`long-chat: the badge reached ${N + M} only ${(liveSeconds - liveSent).toFixed(0)} s after the last send: live frames were missed, the list check repaired the count; delivery: ${delivery.join('; ')}`);
    }
    // The page stayed within delivery's frame limits all along (a presence_subscribe per message once
    // broke them, and more than 20 refused frames close the socket) and sent no malformed frame.
    const metrics = await (await fetch(`http://127.0.0.1:${system.ports.DELIVERY_METRICS_PORT}/metrics`)).text();
    const bad = metrics.split('\n').filter((l) => l.startsWith('bil_delivery_bad_frames_total') || l.startsWith('bil_delivery_rate_limited_frames_total'));
    expect(bad.map((l) => Number(l.split(' ').at(-1))).reduce((a, b) => a + b, 0), bad.join('; ')).toBe(0);

    // Open the chat: the newest messages, at the bottom.
    await item.click();
    await alice.page.locator('.message.theirs', { hasText: `live ${M} of ${M}` }).waitFor({ timeout: 60_000 });
    const scroller = alice.page.getByLabel(/^Messages with /);
    await scroller.hover();

    // Record frame times and the most message rows in the DOM while scrolling to the top.
    await alice.page.evaluate(() => {
      const w = window as unknown as { frames_: number[]; rows_: number; stop_: boolean };
      w.frames_ = [];
      w.rows_ = 0;
      w.stop_ = false;
      let prev = performance.now();
      const tick = (now: number) => {
        w.frames_.push(now - prev);
        prev = now;
        w.rows_ = Math.max(w.rows_, document.querySelectorAll('.messages li.row').length);
        if (!w.stop_) requestAnimationFrame(tick);
      };
      requestAnimationFrame(tick);
    });
    const scrollStart = Date.now();
    // Anchoring: with the view at the top, the message shown first stays where it is while the page before loads above it.
    await scroller.evaluate((el) => (el.scrollTop = 260)); // not yet near the top: nothing loads
    await alice.page.waitForTimeout(300);
    const before = await scroller.evaluate((el) => {
      const top = el.getBoundingClientRect().top;
      const row = [...el.querySelectorAll<HTMLElement>('li.row')].filter((r) => r.getBoundingClientRect().bottom > top).sort((x, y) => Number(x.dataset.seq) - Number(y.dataset.seq))[0]!;
      const rowTop = row.getBoundingClientRect().top;
      el.scrollTop = 100; // near the top: the page before loads above
      return { seq: row.dataset.seq!, top: rowTop + 160, height: el.scrollHeight };
    });
    await alice.page.waitForFunction((h) => document.querySelector('.messages')!.scrollHeight > h, before.height, { timeout: 60_000 });
    await alice.page.waitForTimeout(200);
    const after = await alice.page.evaluate((seq) => document.querySelector<HTMLElement>(`.messages li.row[data-seq="${seq}"]`)?.getBoundingClientRect().top ?? null, before.seq);
    expect(after, 'the message at the top is still in view after a page loaded above').not.toBeNull();
    expect(Math.abs(after! - before.top), 'the view stays on the same message when older ones load above').toBeLessThan(80);

    const first = alice.page.locator('.message.theirs', { hasText: `message 1 of ${N}` });
    while (!(await first.isVisible())) {
      await alice.page.mouse.wheel(0, -1500);
      await alice.page.waitForTimeout(30);
      if (Date.now() - scrollStart > 25 * 60_000) throw new Error('scrolling to the first message took too long');
    }
    const scrollSeconds = (Date.now() - scrollStart) / 1000;
    const { frames, rows } = await alice.page.evaluate(() => {
      const w = window as unknown as { frames_: number[]; rows_: number; stop_: boolean };
      w.stop_ = true;
      return { frames: w.frames_.slice(1), rows: w.rows_ };
    });
    const sorted = [...frames].sort((a, b) => a - b);
    const report = {
      messages: N,
      bobSentPerSecond: Math.round(N / sendSeconds),
      unlockAndCatchUpSeconds: Math.round(catchUpSeconds * 10) / 10,
      caughtUpPerSecond: Math.round(N / catchUpSeconds),
      live: M,
      liveSentPerSecond: Math.round(M / liveSent),
      liveShownPerSecond: Math.round(M / liveSeconds),
      scrollToFirstSeconds: Math.round(scrollSeconds * 10) / 10,
      frames: frames.length,
      frameMedianMs: Math.round(percentile(sorted, 50) * 10) / 10,
      frameP95Ms: Math.round(percentile(sorted, 95) * 10) / 10,
      maxRowsInDom: rows,
    };
    process.stdout.write(`long chat: ${JSON.stringify(report)}\n`);
    expect(rows).toBeGreaterThan(0);
    expect(rows).toBeLessThanOrEqual(MAX_ROWS);
    expect(alice.problems).toEqual([]);
  });
});

const why = skipReason;
if (why) {
  describe('a long chat in the browser', () => {
    it.skip(why, () => undefined);
  });
}
