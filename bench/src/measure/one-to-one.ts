// 1. 1:1 sends in many personal chats at stepped open-loop rates, and
// 2. one hot chat: the same steps with every send in a single chat.
// Both reuse the 1:1 world (world.ts), kept for the history measurement.
import type { Ctx, Outcome } from '../context.js';
import { sendRows, stepBoth, type Stepped } from './steps.js';
import { oneToOneWorld, type World } from './world.js';

let shared: World | undefined;
/** The 1:1 steps on the (nearly) empty database, for the history comparison. */
export let emptyRun: Stepped | undefined;

/** The 1:1 world, made once per run (accounts cost an scrypt each). */
export async function world(ctx: Ctx): Promise<World> {
  shared ??= await oneToOneWorld(ctx, ctx.quick ? 40 : 200);
  return shared;
}

/** The 1:1 world if a measurement made it already. */
export const existingWorld = (): World | undefined => shared;

export function closeWorld(): void {
  shared?.close();
  shared = undefined;
}

export const oneToOneRates = (quick: boolean) => (quick ? [50, 100, 200, 400] : [50, 100, 200, 300, 400, 600, 800]);

export async function oneToOne(ctx: Ctx): Promise<Outcome> {
  const w = await world(ctx);
  const r = await stepBoth(ctx, w, w.targets, oneToOneRates(ctx.quick), ctx.quick ? 4 : 10, '1:1');
  emptyRun = r;
  const { rows, notes } = sendRows(r, 100);
  return {
    tables: [{ name: 'one-to-one', title: `1:1 sends, ${w.targets.length} personal chats, recipients connected`, rows, notes }],
    data: r,
  };
}

export async function hotChat(ctx: Ctx): Promise<Outcome> {
  const w = await world(ctx);
  const rates = ctx.quick ? [50, 100, 200, 400] : [50, 100, 200, 300, 400, 500, 600, 800];
  const r = await stepBoth(ctx, w, [w.targets[0]!], rates, ctx.quick ? 4 : 5, 'hot chat');
  const { rows, notes } = sendRows(r, 100);
  return { tables: [{ name: 'hot-chat', title: 'one hot chat (every send in one personal chat)', rows: [rows[0]!, rows[1]!, rows[3]!], notes: notes.slice(1) }], data: r };
}
