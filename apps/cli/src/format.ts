// Human output: colour (only on a terminal, never with NO_COLOR), aligned
// tables, and how messages, chats and digests read. Pure functions, so the
// formatting is tested without a server.
import type { DecryptedMessage, DigestDisabled, DigestOutcome, DigestSummary, HistoryGap, HistoryMessage } from '@bil/sdk';

export interface Style {
  bold(s: string): string;
  dim(s: string): string;
  red(s: string): string;
  green(s: string): string;
  yellow(s: string): string;
  cyan(s: string): string;
  magenta(s: string): string;
}

const sgr = (open: number, close: number) => (s: string) => `\u001b[${open}m${s}\u001b[${close}m`;

export const plain: Style = { bold: (s) => s, dim: (s) => s, red: (s) => s, green: (s) => s, yellow: (s) => s, cyan: (s) => s, magenta: (s) => s };
export const colours: Style = {
  bold: sgr(1, 22),
  dim: sgr(2, 22),
  red: sgr(31, 39),
  green: sgr(32, 39),
  yellow: sgr(33, 39),
  cyan: sgr(36, 39),
  magenta: sgr(35, 39),
};

/** Colour only when writing to a terminal, NO_COLOR is unset (https://no-color.org) and --no-color wasn't given. */
export function useColour(isTty: boolean | undefined, env: Record<string, string | undefined>, flag: boolean): boolean {
  return Boolean(isTty) && flag && (env.NO_COLOR === undefined || env.NO_COLOR === '') && env.TERM !== 'dumb';
}

// eslint-disable-next-line no-control-regex
const ANSI = /\u001b\[[0-9;]*m/g;

// Text from others (messages, digests, names, titles, server messages) must
// not drive the terminal: an escape sequence can set the clipboard (OSC 52),
// move the cursor or clear the screen, a carriage return or newline can forge
// a line that looks like the CLI's own ("bob: ...", "✔ The numbers match"),
// and bidi overrides or invisible characters can disguise what is shown.
// eslint-disable-next-line no-control-regex
const LINE_BREAK = /\r\n|[\r\n\u000b\u000c\u0085\u2028\u2029]/g;
// C0 controls (tab and line breaks are handled above), DEL, C1 controls; bidi
// embeddings, overrides and isolates; zero-width and other invisible formatting.
// eslint-disable-next-line no-control-regex
const UNSAFE = /[\u0000-\u0008\u000e-\u001f\u007f-\u009f\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb]/g;

/**
 * Untrusted text made safe to print in HUMAN output (never applied to --json,
 * which escapes everything itself): control characters, bidi controls and
 * invisible formatting are removed, a tab becomes spaces. A line break becomes
 * `lineBreak` (for text that may span lines: a newline and an indent that
 * no line of the CLI's own starts with), else a space, so a name or title
 * stays on its line.
 */
export function safe(text: string, lineBreak?: string): string {
  return String(text)
    .replace(/\t/g, '    ')
    .replace(LINE_BREAK, lineBreak ?? ' ')
    .replace(UNSAFE, '');
}

/** The continuation for multi-line text: a new line indented `width` columns, with a gutter mark. */
export const continuation = (width: number): string => `\n${' '.repeat(Math.max(0, width))}│ `;
export const stripAnsi = (s: string): string => s.replace(ANSI, '');
export const visibleLength = (s: string): number => stripAnsi(s).length;

/** Columns padded to the widest cell; the last column is not padded. */
export function table(rows: readonly (readonly string[])[], gap = 2): string[] {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, visibleLength(cell))));
  return rows.map((row) =>
    row
      .map((cell, i) => (i === row.length - 1 ? cell : cell + ' '.repeat(widths[i]! - visibleLength(cell) + gap)))
      .join('')
      .trimEnd(),
  );
}

/** `2025-11-25 14:02` in local time (history), or `14:02:11` for today (live). */
export function formatTime(ms: number, now: number = Date.now()): string {
  const d = new Date(ms);
  const p = (n: number) => String(n).padStart(2, '0');
  const today = new Date(now);
  const hm = `${p(d.getHours())}:${p(d.getMinutes())}`;
  if (d.toDateString() === today.toDateString()) return `${hm}:${p(d.getSeconds())}`;
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${hm}`;
}

/** The first 8 hex digits of an id: enough to tell chats apart, and accepted as a chat reference. */
export const shortId = (id: string): string => id.slice(0, 8);

/** How a user is named in human output: the username if known (made safe to print), else `user:1a2b3c4d`. */
export function userLabel(userId: string, names: Readonly<Record<string, string>>): string {
  const name = names[userId];
  return name !== undefined ? safe(name) : `user:${safe(shortId(userId))}`;
}

/** `#title` for a group, `@username` for a personal chat: exact, as --json gives it (human output passes it through `safe`). */
export function chatLabel(chat: { type: string; title: string; peerUserId: string }, names: Readonly<Record<string, string>>): string {
  if (chat.type === 'group') return `#${chat.title}`;
  return chat.peerUserId ? `@${names[chat.peerUserId] ?? `user:${shortId(chat.peerUserId)}`}` : '@?';
}

/** One message as a line: `seq  time  sender: text`, or the uniform marker for what didn't decrypt. */
export function messageLine(m: HistoryMessage, names: Readonly<Record<string, string>>, style: Style, now?: number, indent = 0): string {
  const seq = style.dim(String(m.seq).padStart(4));
  if (!m.ok) {
    const when = formatTime(Date.parse(m.createdAt), now);
    const marker =
      m.error === 'out_of_date_epoch'
        ? '[not shown: sent by a member whose client is out of date (an old group key)]'
        : m.error === 'group_forked'
          ? '[not shown: sent in another history of this group (fork)]'
          : m.error === 'deleted_by_sender'
            ? '[deleted by its sender]'
            : m.error === 'removed_by_server'
              ? '[removed (expired, or by the server)]'
              : '[cannot decrypt]';
    return `${seq}  ${style.dim(when)}  ${style.red(marker)} ${style.dim(`claimed sender ${userLabel(m.senderUserId, names)}`)}`;
  }
  const who = m.outgoing ? style.green(`${userLabel(m.senderUserId, names)}`) : style.cyan(userLabel(m.senderUserId, names));
  const head = `${seq}  ${style.dim(formatTime(m.timestamp, now))}  ${who}: `;
  return `${head}${messageBody(m, style, continuation(visibleLength(head) - 2 + indent))}`;
}

/** Longest quote shown in front of a reply, in characters. */
const QUOTE_SHOWN = 40;

/**
 * A verified message's text as people read it: a reply's quote in front, its
 * attachments, "(edited)" and its reactions after; content this version can't
 * show or that is malformed as a marker. Everything from the sender is `safe`d.
 */
export function messageBody(m: DecryptedMessage, style: Style, lineBreak: string): string {
  const c = m.content;
  if (c?.kind === 'unsupported') return style.yellow('[a kind of message this version of bil can\'t show]');
  if (c?.kind === 'invalid') return style.red('[malformed message]');
  let prefix = '';
  let text = safe(m.text, lineBreak);
  if (c?.kind === 'text' && c.reply_to) {
    const q = [...safe(c.reply_to.quote ?? '')];
    prefix = style.dim(`↪ "${q.slice(0, QUOTE_SHOWN).join('')}${q.length > QUOTE_SHOWN ? '…' : ''}" `);
  }
  if (c?.kind === 'text' && c.attachments?.length) {
    const files = c.attachments.map((a) => `[file ${safe(a.name || a.blob_id)}, ${a.size} bytes]`).join(' ');
    text = text ? `${text} ${style.dim(files)}` : style.dim(files);
  }
  const edited = m.edited?.length ? style.dim(' (edited)') : '';
  const reactions = Object.entries(m.reactions ?? {}).map(([emoji, users]) => `${safe(emoji)} ${users.length}`);
  return `${prefix}${text}${edited}${reactions.length ? `  ${style.dim(reactions.join('  '))}` : ''}`;
}

/** A history gap as a line people read where the messages are. */
export function gapLine(g: HistoryGap, style: Style): string {
  const range = g.from === g.to ? `${g.from}` : `${g.from}–${g.to}`;
  if (g.kind === 'seq') return style.yellow(`   …  missing: message${g.from === g.to ? '' : 's'} ${range} not delivered by the server`);
  if (g.kind === 'own') return style.yellow(`   …  missing: ${g.to - g.from + 1} of your own message(s) the server had stored are gone`);
  return style.yellow(`   …  missing: messages number ${range} of device ${g.senderDeviceId.slice(0, 8)} never arrived (the server skipped them)`);
}

/** A message as JSON for --json output (the SDK's shape plus the sender's name when known). */
export function messageJson(m: HistoryMessage, names: Readonly<Record<string, string>>): Record<string, unknown> {
  return { ...m, sender: names[m.senderUserId] ?? null };
}

/** A digest outcome in human form. */
const DISABLED: Record<DigestDisabled['reason'], string> = {
  group_setting: 'the group\'s admins switched digests off (signed in the group record): nothing was sent; bil digest --on-device still works',
  group_setting_unverified: 'this device can\'t read the group\'s current record, so it can\'t tell whether digests are allowed: nothing was sent',
  server_policy: 'a member switched digests off at the digest service: nothing was sent; bil digest --on-device still works',
  members_opted_out: 'every unread message is from members who asked to be left out of digests: nothing was sent',
};

const MADE: Record<DigestSummary['on'], string> = { server: 'by the digest service', device: 'made on this device', model: 'by your model' };

export function digestLines(o: DigestOutcome, label: string, names: Readonly<Record<string, string>>, style: Style): string[] {
  const out: string[] = [style.bold(safe(label))];
  if (o.kind === 'disabled') {
    out.push(`  ${style.dim(DISABLED[o.reason] ?? `digests are switched off for this chat (${safe(o.reason)})`)}`);
  } else if (o.kind === 'messages') {
    out.push(`  ${style.dim(o.messages.length ? 'below the digest threshold; the unread messages:' : 'no unread messages')}`);
    for (const m of o.messages) out.push(`  ${messageLine(m, names, style, undefined, 2)}`);
  } else {
    // The summary is a summariser's (perhaps a language model's) output over what the members wrote: untrusted.
    const range = o.fromSeq === o.toSeq ? `seq ${o.fromSeq}` : `seq ${o.fromSeq}–${o.toSeq}`;
    const left = o.excludedCount ? `, ${o.excludedCount} left out (their senders opted out)` : '';
    out.push(
      `  ${style.dim(`summary of ${o.messageCount} messages (${o.method === 'llm' ? 'language model' : 'built-in summariser'}, ${safe(o.language)}) ${MADE[o.on] ?? safe(o.on)}; ${range}${left}`)}`,
    );
    out.push(`  Topic: ${safe(o.topic, continuation(4))}`);
    if (o.keyPoints.length) {
      out.push('  Key points:');
      for (const k of o.keyPoints) out.push(`    - ${safe(k, continuation(6))}`);
    }
    if (o.actions.length) {
      out.push('  Actions:');
      for (const a of o.actions) out.push(`    - ${a.owner ? `${style.bold(safe(a.owner))}: ` : ''}${safe(a.action, continuation(6))}`);
    }
  }
  return out;
}

/** Groups digits 5 by 5 in rows of 4, as people read them out. */
export function safetyNumberRows(digits: string): string[] {
  const groups = digits.replace(/\s+/g, '').match(/.{1,5}/g) ?? [];
  const rows: string[] = [];
  for (let i = 0; i < groups.length; i += 4) rows.push(groups.slice(i, i + 4).join(' '));
  return rows;
}
