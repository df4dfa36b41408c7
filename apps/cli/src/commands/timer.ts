// bil chat timer <chat> <duration|off>: the chat's disappearing-message timer.
import type { App } from '../app.js';
import { usage } from '../errors.js';
import { safe } from '../format.js';

const UNITS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/** `off` or 0 → 0; `30s`, `5m`, `12h`, `7d`, `2w` → ms. */
export function parseDuration(raw: string): number {
  const t = raw.trim().toLowerCase();
  if (t === 'off' || t === '0') return 0;
  const m = /^(\d{1,6})\s*([smhdw])$/.exec(t);
  if (!m) throw usage(`"${safe(raw)}" is not a duration`, 'e.g. 30s, 5m, 12h, 7d, 2w, or off');
  return Number(m[1]) * UNITS[m[2]!]!;
}

/** 90000 → `1m 30s` (largest units first). */
export function formatDuration(ms: number): string {
  if (ms === 0) return 'off';
  const parts: string[] = [];
  let rest = ms;
  for (const [u, size] of Object.entries(UNITS).reverse()) {
    if (rest >= size) {
      parts.push(`${Math.floor(rest / size)}${u}`);
      rest %= size;
    }
  }
  return parts.join(' ') || `${ms}ms`;
}

export async function chatTimer(app: App, ref: string, duration: string): Promise<void> {
  const { client } = await app.open();
  const chat = await app.chat(ref);
  const ms = parseDuration(duration);
  await client.chats.setTimer(chat.chatId, ms);
  app.out.result({ chatId: chat.chatId, disappearingMs: ms }, () => [
    ms === 0 ? 'Disappearing messages are off.' : `Messages sent from now on disappear ${formatDuration(ms)} after they are stored.`,
  ]);
}
