// bil chat timer <chat> [duration|off]: the chat's disappearing-message timer,
// as this device verified it (a personal chat's signed statement, a group's
// signed record; docs/cli.md), with a warning when the server's differs.
import type { ChatTimer } from '@bil/sdk';
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

const ALERTS: Record<NonNullable<ChatTimer['alert']>, string> = {
  server_differs: 'the server applies another timer than the one set in this chat',
  statement_invalid: "the server's timer statement does not verify",
  statement_replayed: 'the server showed an older timer statement than one verified before',
  statement_missing: 'the server showed no timer statement although one was verified before',
};

export async function chatTimer(app: App, ref: string, duration: string | undefined): Promise<void> {
  const { client } = await app.open();
  const chat = await app.chat(ref);
  const ms = duration === undefined ? undefined : parseDuration(duration);
  const timer = (ms === undefined ? await client.chats.get(chat.chatId) : await client.chats.setTimer(chat.chatId, ms)).timer;
  const verified = timer?.ms ?? 0;
  if (timer?.alert) {
    app.out.warn(`${ALERTS[timer.alert]} (server: ${formatDuration(timer.serverMs)}, verified: ${formatDuration(verified)}).`);
  }
  app.out.result({ chatId: chat.chatId, disappearingMs: verified, verified: timer?.verified ?? false, serverMs: timer?.serverMs ?? 0, alert: timer?.alert ?? null }, () => [
    verified === 0
      ? 'Disappearing messages are off.'
      : `${ms === undefined ? 'Messages disappear' : 'Messages sent from now on disappear'} ${formatDuration(verified)} after they are stored${timer?.verified ? ' (verified)' : ''}.`,
  ]);
}
