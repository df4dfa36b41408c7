// chat create|list|members|add|remove|leave|rename|resolve-fork; send, history, unread (digests: digest.ts).
import { OUTAGE_RETRY_BUDGET_MS, type Chat, type ConnectionEvent, type HistoryGap, type SendResult } from '@bil/sdk';
import type { App } from '../app.js';
import { sendFile } from './attachments.js';
import { usage } from '../errors.js';
import { chatLabel, formatTime, gapLine, messageJson, messageLine, safe, shortId, table, userLabel } from '../format.js';
import { readAllStdin, stdinIsTty } from '../prompt.js';
import { messageRef } from './content.js';

function chatJson(chat: Chat, label: string): Record<string, unknown> {
  return { ...chat, label };
}

function splitList(values: readonly string[] | undefined): string[] {
  return (values ?? []).flatMap((v) => v.split(',')).map((v) => v.trim()).filter(Boolean);
}

export async function chatCreate(app: App, o: { personal?: string; group?: string; members?: string[]; admins?: string[] }): Promise<void> {
  if ((o.personal === undefined) === (o.group === undefined)) throw usage('give either --personal <user> or --group <title>');
  const { client } = await app.open();
  let chat: Chat;
  if (o.personal !== undefined) {
    if (o.members?.length || o.admins?.length) throw usage('--members and --admins are for groups');
    const user = await app.user(o.personal);
    chat = await client.chats.createPersonal(user.userId);
  } else {
    const title = o.group!.trim();
    if (!title) throw usage('the group needs a title');
    const members = await Promise.all(splitList(o.members).map(async (m) => ({ userId: (await app.user(m)).userId, role: 'member' as const })));
    const admins = await Promise.all(splitList(o.admins).map(async (m) => ({ userId: (await app.user(m)).userId, role: 'admin' as const })));
    app.out.note(`Creating "${title}": verifying the members' devices and wrapping the first group key to each…`);
    chat = await client.chats.createGroup({ title, members: [...members, ...admins] });
  }
  const label = chatLabel(chat, app.names());
  const s = app.out.style;
  app.out.result(chatJson(chat, label), () => [
    `${s.green(chat.type === 'group' ? 'Created group' : 'Opened personal chat')} ${s.bold(safe(label))} ${s.dim(chat.chatId)}`,
    ...(chat.type === 'group' ? [s.dim(`${chat.memberCount} members, key epoch ${chat.epoch}`)] : []),
  ]);
}

export async function chatList(app: App, o: { type?: string }): Promise<void> {
  if (o.type !== undefined && o.type !== 'personal' && o.type !== 'group') throw usage('--type is personal or group');
  let chats = await app.chats();
  if (o.type) chats = chats.filter((c) => c.type === o.type);
  const names = app.names();
  const s = app.out.style;
  app.out.result(
    chats.map((c) => chatJson(c, chatLabel(c, names))),
    () =>
      chats.length === 0
        ? ['No chats yet: bil chat create --personal <user>, or --group <title> --members <users>']
        : table([
            [s.dim('ID'), s.dim('CHAT'), s.dim('UNREAD'), s.dim('LAST ACTIVITY'), s.dim('ROLE')],
            ...chats.map((c) => [
              shortId(c.chatId),
              s.bold(safe(chatLabel(c, names))),
              c.unreadCount ? s.yellow(String(c.unreadCount)) : s.dim('0'),
              formatTime(Date.parse(c.lastActivityAt)),
              c.type === 'group' ? c.myRole : '',
            ]),
          ]),
  );
}

export async function chatMembers(app: App, ref: string): Promise<void> {
  const { client } = await app.open();
  const chat = await client.chats.get((await app.chat(ref)).chatId);
  const names = app.names();
  const s = app.out.style;
  const label = chatLabel(chat, names);
  const mismatch = chat.memberListMismatch ?? null;
  const fork = chat.type === 'group' ? await client.chats.forkAlert(chat.chatId) : null;
  app.out.result(
    {
      chatId: chat.chatId,
      label,
      epoch: chat.epoch,
      // Groups: the members and roles of the verified epoch record, not the server's list.
      members: chat.members.map((m) => ({ ...m, username: names[m.userId] ?? null })),
      memberListMismatch: mismatch,
      forkAlert: fork,
    },
    () => [
      `${s.bold(safe(label))} ${s.dim(`${chat.chatId}${chat.type === 'group' ? `, key epoch ${chat.epoch}, members as the signed group record lists them` : ''}`)}`,
      ...table([
        [s.dim('MEMBER'), s.dim('ROLE'), s.dim('JOINED')],
        ...chat.members.map((m) => [userLabel(m.userId, names), safe(m.role), m.joinedAt ? formatTime(Date.parse(m.joinedAt)) : '']),
      ]),
      ...(mismatch
        ? [
            s.yellow('The server\'s member list differs from the signed record (the server may be hiding or adding someone):'),
            ...mismatch.extraOnServer.map((u) => s.yellow(`  listed by the server only: ${userLabel(u, names)} (nothing is encrypted to them)`)),
            ...mismatch.missingOnServer.map((u) => s.yellow(`  missing from the server's list: ${userLabel(u, names)} (still holds the group key)`)),
            ...mismatch.roleDiffers.map((u) => s.yellow(`  different role on the server: ${userLabel(u, names)}`)),
          ]
        : []),
      ...(fork ? [s.red(`History fork seen at epoch ${fork.epoch}: sending is blocked; compare with the members, then bil chat resolve-fork ${shortId(chat.chatId)}`)] : []),
    ],
  );
}

export async function chatRename(app: App, ref: string, title: string): Promise<void> {
  const { client } = await app.open();
  const chat = await app.chat(ref);
  const clean = title.trim();
  if (!clean) throw usage('the group needs a title');
  const res = await client.chats.rename(chat.chatId, clean);
  app.out.result({ chatId: chat.chatId, title: clean, epoch: res.epoch }, () => [
    `Renamed to ${safe(`#${clean}`)}; the title travels encrypted in key epoch ${res.epoch} (the server can't read it).`,
  ]);
}

export async function chatResolveFork(app: App, ref: string): Promise<void> {
  const { client } = await app.open();
  const chat = await app.chat(ref);
  const fork = await client.chats.forkAlert(chat.chatId);
  if (!fork) {
    app.out.result({ chatId: chat.chatId, resolved: false }, () => ['No fork to resolve.']);
    return;
  }
  await client.chats.resolveFork(chat.chatId);
  app.out.result({ chatId: chat.chatId, resolved: true, epoch: fork.epoch }, () => [
    `Accepted the server's current history of ${safe(chatLabel(chat, app.names()))} (it forked at epoch ${fork.epoch}); sending works again.`,
  ]);
}

export async function chatAdd(app: App, ref: string, users: string[], o: { admin?: boolean }): Promise<void> {
  const { client } = await app.open();
  const chat = await app.chat(ref);
  const members = await Promise.all(splitList(users).map(async (u) => ({ userId: (await app.user(u)).userId, role: o.admin ? ('admin' as const) : ('member' as const) })));
  if (members.length === 0) throw usage('name at least one user to add');
  const updated = await client.chats.members.add(chat.chatId, members);
  const names = app.names();
  const label = chatLabel(updated, names);
  app.out.result(chatJson(updated, label), () => [
    `Added ${members.map((m) => userLabel(m.userId, names)).join(', ')} to ${safe(label)}; new key epoch ${updated.epoch} (they read from here on).`,
  ]);
}

export async function chatRemove(app: App, ref: string, userRef: string): Promise<void> {
  const { client } = await app.open();
  const chat = await app.chat(ref);
  const user = await app.user(userRef);
  const res = await client.chats.members.remove(chat.chatId, user.userId);
  const label = chatLabel(chat, app.names());
  app.out.result({ chatId: chat.chatId, label, removed: user.userId, username: user.username, epoch: res.epoch }, () => [
    `Removed ${safe(user.username)} from ${safe(label)}; new key epoch ${res.epoch}: ${safe(user.username)} cannot read what follows.`,
  ]);
}

export async function chatLeave(app: App, ref: string): Promise<void> {
  const { client } = await app.open();
  const chat = await app.chat(ref);
  await client.chats.members.leave(chat.chatId);
  const label = chatLabel(chat, app.names());
  app.out.result({ chatId: chat.chatId, label, left: true }, () => [`Left ${safe(label)}.`]);
}

export async function chatRotate(app: App, ref: string): Promise<void> {
  const { client } = await app.open();
  const chat = await app.chat(ref);
  const res = await client.chats.rotate(chat.chatId);
  const label = chatLabel(chat, app.names());
  app.out.result({ chatId: chat.chatId, label, epoch: res.epoch }, () => [`New group key for ${safe(label)}: epoch ${res.epoch}, wrapped to the members' current devices.`]);
}

// ---- messages ---------------------------------------------------------------------

/** One note when the server stops answering during a send, one when it is back. */
export function outageNotes(app: Pick<App, 'out'>): (e: ConnectionEvent) => void {
  let waiting = false;
  return (e) => {
    if (e.state === 'online') {
      if (waiting) app.out.note('The server is back; the message is going out.');
      waiting = false;
    } else if (!waiting) {
      waiting = true;
      const what = e.state === 'offline' ? 'does not answer' : 'is unavailable (503)';
      app.out.note(`The server ${what}; retrying for up to ${OUTAGE_RETRY_BUDGET_MS / 1000} s with the same message id, so it is sent once (Ctrl-C to stop).`);
    }
  };
}

export async function send(app: App, ref: string, words: string[], o: { lines?: boolean; reply?: string; file?: string }): Promise<void> {
  if (o.file !== undefined) {
    if (o.lines) throw usage('--file sends one message: leave out --lines');
    if (o.reply !== undefined) throw usage('--file and --reply: send the file, then reply with text');
    return sendFile(app, ref, o.file, words.join(' '));
  }
  let text: string;
  if (words.length === 0 || (words.length === 1 && words[0] === '-')) {
    if (stdinIsTty() && words.length === 0) throw usage('no message: give the text, or pipe it in (bil send <chat> - reads standard input)');
    text = await readAllStdin();
    if (!o.lines) text = text.replace(/\r?\n$/, '');
  } else {
    text = words.join(' ');
  }
  const texts = o.lines ? text.split(/\r?\n/).filter((l) => l.trim() !== '') : [text];
  if (texts.length === 0 || texts.every((t) => t === '')) throw usage('the message is empty');
  if (o.reply !== undefined && o.lines) throw usage('--reply sends one message: leave out --lines');
  const { client } = await app.open();
  const chat = await app.chat(ref);
  const replyTo = o.reply === undefined ? undefined : await messageRef(client, chat.chatId, o.reply);
  const sent: SendResult[] = [];
  // The SDK retries a send through an outage (same message id, up to OUTAGE_RETRY_BUDGET_MS): say so rather than wait silently.
  const off = client.on('connection', outageNotes(app));
  try {
    for (const t of texts) sent.push(await client.messages.send(chat.chatId, t, replyTo ? { replyTo } : {}));
  } finally {
    off();
  }
  const label = chatLabel(chat, app.names());
  const s = app.out.style;
  app.out.result(o.lines ? sent.map((r) => ({ ...r, label })) : { ...sent[0]!, label }, () =>
    sent.length === 1
      ? [`${s.green('Sent')} to ${safe(label)} ${s.dim(`(seq ${sent[0]!.seq}, encrypted on this device)`)}`]
      : [`${s.green('Sent')} ${sent.length} messages to ${safe(label)} ${s.dim(`(seq ${sent[0]!.seq}–${sent[sent.length - 1]!.seq})`)}`],
  );
}

function positiveInt(value: string | undefined, name: string, max: number): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 0 || n > max) throw usage(`${name}: expected a whole number from 0 to ${max}`);
  return n;
}

export async function history(app: App, ref: string, o: { limit?: string; after?: string; before?: string; markRead?: boolean }): Promise<void> {
  const limit = positiveInt(o.limit, '--limit', 200) ?? 20;
  const after = positiveInt(o.after, '--after', Number.MAX_SAFE_INTEGER);
  const before = positiveInt(o.before, '--before', Number.MAX_SAFE_INTEGER);
  if (after !== undefined && before !== undefined) throw usage('give --after or --before, not both');
  const { client } = await app.open();
  const chat = await app.chat(ref);
  const page = await client.messages.history(chat.chatId, { limit: Math.max(1, limit), ...(after !== undefined ? { after } : {}), ...(before !== undefined ? { before } : {}) });
  const top = page.span?.to ?? 0;
  if (o.markRead !== false && top > 0) await client.messages.markRead(chat.chatId, top);
  const names = app.names();
  const label = chatLabel(chat, names);
  const s = app.out.style;
  app.out.result({ chatId: chat.chatId, label, lastSeq: page.lastSeq, hasMore: page.hasMore, gaps: page.gaps, messages: page.messages.map((m) => messageJson(m, names)) }, () => {
    const lines = [s.bold(safe(label)) + s.dim(`  ${chat.chatId}`)];
    if (page.messages.length === 0) lines.push(s.dim('  (no messages)'));
    // Gaps where they are: between the messages around them, or at the end.
    const placed = new Set<HistoryGap>();
    for (const m of page.messages) {
      for (const g of page.gaps) {
        if (g.kind !== 'seq' || g.to !== m.seq - 1 || placed.has(g)) continue;
        placed.add(g);
        lines.push(gapLine(g, s));
      }
      lines.push(messageLine(m, names, s));
    }
    for (const g of page.gaps) if (!placed.has(g)) lines.push(gapLine(g, s));
    const first = page.span?.from;
    if (page.hasMore && first !== undefined && after === undefined) lines.push(s.dim(`  older: bil history ${shortId(chat.chatId)} --before ${first}`));
    else if (page.hasMore) lines.push(s.dim(`  newer: bil history ${shortId(chat.chatId)} --after ${top}`));
    return lines;
  });
}

export async function unread(app: App, o: { messages?: string }): Promise<void> {
  const perChat = positiveInt(o.messages, '--messages', 50) ?? 0;
  const { client } = await app.open();
  const overview = await client.unread({ limit: 500, ...(perChat ? { messagesPerChat: perChat } : {}) });
  const names = app.names();
  const labels = new Map<string, string>();
  for (const c of overview.chats) labels.set(c.chatId, await app.label(c.chatId));
  const s = app.out.style;
  app.out.result(
    {
      total: overview.total,
      unreadChats: overview.unreadChats,
      chats: overview.chats.map((c) => ({ ...c, label: labels.get(c.chatId), messages: c.messages.map((m) => messageJson(m, names)) })),
    },
    () => {
      if (overview.total === 0) return ['No unread messages.'];
      const lines = [`${s.bold(String(overview.total))} unread in ${overview.unreadChats} chat${overview.unreadChats === 1 ? '' : 's'}`];
      if (perChat === 0) {
        lines.push(
          ...table([
            [s.dim('ID'), s.dim('CHAT'), s.dim('UNREAD'), s.dim('SINCE SEQ')],
            ...overview.chats.map((c) => [shortId(c.chatId), s.bold(safe(labels.get(c.chatId)!)), s.yellow(String(c.unreadCount)), String(c.firstUnreadSeq)]),
          ]),
        );
      } else {
        for (const c of overview.chats) {
          lines.push('', `${s.bold(safe(labels.get(c.chatId)!))} ${s.yellow(`${c.unreadCount} unread`)}`);
          for (const m of c.messages) lines.push(messageLine(m, names, s));
        }
      }
      return lines;
    },
  );
}
