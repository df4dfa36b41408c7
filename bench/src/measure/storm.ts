import type { Ctx, Outcome } from '../context.js';

export async function storm(_ctx: Ctx): Promise<Outcome> {
  throw new Error('not implemented yet');
}
