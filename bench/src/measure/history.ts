// 8. history: the 1:1 steps again after 100k+ stored events (10k in quick
// mode), against the same steps on the empty database (one-to-one, run first;
// run here when --only=history).
//
// Seeding goes through the API, not SQL, so it stays true whatever the write
// path's tables become: closed-loop sends (64 at once) of the world's
// template envelopes across its chats until BENCH_HISTORY_EVENTS sends are
// stored (or BENCH_HISTORY_SECONDS pass; the table says how many). The raw
// server's tables get the same number of messages (and two key rows each)
// with one INSERT … SELECT generate_series.
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { nextBody, post } from '../clients.js';
import type { Ctx, Outcome } from '../context.js';
import { fmt, ratio } from '../stats.js';
import { emptyRun, oneToOneRates, world } from './one-to-one.js';
import { highestHeld, sendRows, stepBoth } from './steps.js';

async function seedProject(ctx: Ctx, want: number, seconds: number): Promise<number> {
  const w = await world(ctx);
  const until = Date.now() + seconds * 1000;
  let stored = 0;
  let i = 0;
  let lastLog = Date.now();
  await Promise.all(
    Array.from({ length: 64 }, async () => {
      while (stored < want && Date.now() < until) {
        const t = w.targets[i++ % w.targets.length]!;
        const { body } = nextBody(t);
        if ((await post(`${ctx.stack.baseUrl}/v1/chats/${t.chatId}/messages`, t.sender.token, body)) === 201) stored++;
        if (Date.now() - lastLog > 15_000) {
          lastLog = Date.now();
          ctx.log(`history: ${stored} messages stored`);
        }
      }
    }),
  );
  return stored;
}

async function storedEvents(ctx: Ctx): Promise<number | undefined> {
  try {
    const r = await ctx.stack.db.query<{ n: string }>('SELECT count(*)::text AS n FROM chat.events');
    return Number(r.rows[0]!.n);
  } catch {
    return undefined; // the write path may have changed its tables
  }
}

async function seedRaw(ctx: Ctx, n: number): Promise<void> {
  const url = new URL(ctx.stack.env.databaseUrl);
  url.pathname = `${url.pathname}_raw`;
  const c = new pg.Client({ connectionString: url.toString() });
  await c.connect();
  const chat = randomUUID();
  await c.query(
    `INSERT INTO raw_messages (chat_id, seq, message_id, sender_device_id, envelope)
     SELECT $1, g, gen_random_uuid(), gen_random_uuid(), repeat('x', 2600) FROM generate_series(1, $2::int) g`,
    [chat, n],
  );
  await c.query(`INSERT INTO raw_keys (chat_id, seq, device_id, wrapped_key) SELECT $1, g, gen_random_uuid(), repeat('k', 512) FROM generate_series(1, $2::int) g, generate_series(1, 2)`, [chat, n]);
  await c.query('ANALYZE raw_messages; ANALYZE raw_keys');
  await c.end();
}

export async function history(ctx: Ctx): Promise<Outcome> {
  const w = await world(ctx);
  const rates = oneToOneRates(ctx.quick);
  const seconds = ctx.quick ? 4 : 6;
  const empty = emptyRun ?? (await stepBoth(ctx, w, w.targets, rates, seconds, '1:1 (empty)'));
  const want = Number(process.env.BENCH_HISTORY_EVENTS ?? (ctx.quick ? 10_000 : 100_000));
  const cap = Number(process.env.BENCH_HISTORY_SECONDS ?? (ctx.quick ? 60 : 180));
  const t0 = Date.now();
  const sent = await seedProject(ctx, want, cap);
  const seedSeconds = (Date.now() - t0) / 1000;
  await seedRaw(ctx, sent);
  const events = await storedEvents(ctx);
  ctx.log(`history: ${sent} messages seeded in ${seedSeconds.toFixed(0)} s (${(sent / seedSeconds).toFixed(0)}/s closed loop); chat.events holds ${events ?? '?'}`);
  const full = await stepBoth(ctx, w, w.targets, rates, seconds, `1:1 (${sent} stored)`);
  const { rows, notes } = sendRows(full, 100);
  const [he, hf, re, rf] = [highestHeld(empty.project), highestHeld(full.project), highestHeld(empty.raw), highestHeld(full.raw)];
  return {
    tables: [
      {
        name: 'history',
        title: `1:1 sends with history: ${sent.toLocaleString('en')} messages stored${events !== undefined ? ` (${events.toLocaleString('en')} events)` : ''} vs the empty database`,
        rows: [
          { label: 'highest rate held, empty database', project: `${he}/s`, raw: `${re}/s`, ratio: ratio(he, re) },
          ...rows.slice(0, 4).map((r) => ({ ...r, label: `with history: ${r.label}` })),
          { label: 'highest rate held: with history / empty', project: ratio(hf, he), raw: ratio(rf, re), ratio: '—' },
        ],
        notes: [
          `seeded through the API: ${sent} closed-loop sends (64 at once) in ${fmt(seedSeconds, 's')}; the raw tables got as many rows by INSERT … SELECT generate_series.`,
          ...notes,
        ],
      },
    ],
    data: { empty, full, sent, events, seedSeconds },
  };
}
