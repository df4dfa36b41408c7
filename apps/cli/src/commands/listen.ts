// bil listen: the live connection. Messages missed while away that are still
// unread come first, then what arrives live, decrypted on this device, with
// typing, read receipts and membership changes. With --chat it is also a chat
// session: each line typed (or piped) is sent there, and typing shows.
import { clearLine, createInterface, cursorTo } from 'node:readline';
import type { DecryptedMessage, HistoryMessage, LiveClient } from '@bil/sdk';
import type { App } from '../app.js';
import { ExitCode, usage } from '../errors.js';
import { chatLabel, continuation, formatTime, messageBody, messageJson, safe, userLabel, visibleLength } from '../format.js';
import { stdinIsTty, stdinLines } from '../prompt.js';

export interface ListenOptions {
  chat?: string;
  count?: string;
  timeout?: string;
  receipts?: boolean;
}

const TYPING_REFRESH_MS = 3000;
const TYPING_IDLE_MS = 5000;
const READ_DEBOUNCE_MS = 300;

function count(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 1) throw usage(`${name}: expected a whole number of at least 1`);
  return n;
}

export async function listen(app: App, o: ListenOptions): Promise<number> {
  const wanted = count(o.count, '--count');
  const timeoutS = o.timeout === undefined ? undefined : Number(o.timeout);
  if (timeoutS !== undefined && !(Number.isFinite(timeoutS) && timeoutS > 0)) throw usage('--timeout: expected seconds, more than 0');
  const receipts = o.receipts !== false;
  const { client, account } = await app.open();
  const only = o.chat !== undefined ? await app.chat(o.chat) : undefined;
  // Read markers at start: catch-up skips what was read already (elsewhere, or by an earlier listen).
  const readUpTo = new Map((await app.chats()).map((c) => [c.chatId, c.lastReadSeq]));
  const s = app.out.style;
  const json = app.out.json;
  const live = client.live({ start: false });
  let synced = false;
  let onSynced: () => void = () => undefined;
  const ready = new Promise<void>((resolve) => (onSynced = resolve));
  let shown = 0;
  let finish: (code: number) => void = () => undefined;
  const finished = new Promise<number>((resolve) => (finish = resolve));

  // Events print in arrival order; naming a chat may need a server call.
  let queue: Promise<void> = Promise.resolve();
  const later = (fn: () => Promise<void> | void) => {
    queue = queue.then(fn).catch((err: unknown) => app.out.warn(safe(err instanceof Error ? err.message : String(err))));
  };
  // Event lines; an interactive prompt (listen --chat on a terminal) redraws itself under them.
  const printer = { line: (text: string) => app.out.line(text) };
  const inScope = (chatId: string) => !only || only.chatId === chatId;
  const stamp = () => s.dim(`[${formatTime(Date.now())}]`);

  const pendingRead = new Map<string, number>();
  let readTimer: NodeJS.Timeout | undefined;
  const flushReads = async () => {
    readTimer = undefined;
    const batch = [...pendingRead];
    pendingRead.clear();
    for (const [chatId, seq] of batch) await client.messages.markRead(chatId, seq).catch(() => undefined);
  };
  const markRead = (chatId: string, seq: number) => {
    if (!receipts) return;
    live.read(chatId, seq);
    pendingRead.set(chatId, Math.max(pendingRead.get(chatId) ?? 0, seq));
    readTimer ??= setTimeout(() => void flushReads(), READ_DEBOUNCE_MS);
  };

  const onMessage = (m: HistoryMessage) =>
    later(async () => {
      if (!inScope(m.chatId)) return;
      if (m.ok && m.outgoing) return; // sent from this process (--chat)
      if (!synced && m.seq <= (readUpTo.get(m.chatId) ?? 0)) return;
      const label = await app.label(m.chatId);
      const names = app.names();
      if (json) {
        app.out.event({ event: 'message', live: synced, label, ...messageJson(m, names) });
      } else if (m.ok) {
        const who = userLabel(m.senderUserId, names);
        const head = `${stamp()} ${s.bold(safe(label))}  ${m.senderUserId === account.userId ? s.green(who) : s.cyan(who)}: `;
        printer.line(`${head}${messageBody(m as DecryptedMessage, s, continuation(visibleLength(head) - 2))}`);
      } else {
        printer.line(`${stamp()} ${s.bold(safe(label))}  ${s.red('[cannot decrypt]')} ${s.dim(`seq ${m.seq}, claimed sender ${userLabel(m.senderUserId, names)}`)}`);
      }
      markRead(m.chatId, m.seq);
      shown++;
      if (wanted !== undefined && shown >= wanted) finish(ExitCode.ok);
    });

  live.on('message', onMessage);
  live.on('undecryptable', onMessage);
  // A reaction or an edit of a message this session has shown (or caught up on).
  live.on('updated', (u) =>
    later(async () => {
      if (!inScope(u.chatId)) return;
      const label = await app.label(u.chatId);
      const names = app.names();
      if (json) return app.out.event({ event: 'updated', label, ...u, user: names[u.by.senderUserId] ?? null });
      const who = userLabel(u.by.senderUserId, names);
      const head = `${stamp()} ${s.bold(safe(label))}  ${s.dim(`${who} ${u.by.kind === 'edit' ? 'edited' : 'reacted'}:`)} `;
      const reactions = Object.entries(u.reactions).map(([e, users]) => `${safe(e)} ${users.length}`).join('  ');
      printer.line(u.by.kind === 'edit' ? `${head}${safe(u.text, continuation(visibleLength(head) - 2))}` : `${head}${reactions || s.dim('(none left)')} ${s.dim(`on "${safe([...u.text].slice(0, 40).join(''))}"`)}`);
    }),
  );
  live.on('ignored', (i) =>
    later(async () => {
      if (!inScope(i.chatId)) return;
      const label = await app.label(i.chatId);
      if (json) return app.out.event({ event: 'ignored', label, ...i, user: app.names()[i.senderUserId] ?? null });
      app.out.warn(`${safe(label)}: ignored an edit by ${userLabel(i.senderUserId, app.names())} of a message that is ${i.reason === 'not_own_message' ? 'not theirs' : 'not a text message'}`);
    }),
  );
  live.on('synced', () =>
    later(() => {
      synced = true;
      onSynced();
      if (json) app.out.event({ event: 'synced' });
      else app.out.note(`Listening as ${safe(account.username)}${only ? ` in ${safe(chatLabel(only, app.names()))}; type to send` : ''} (Ctrl-C to stop)…`);
    }),
  );
  live.on('typing', (t) =>
    later(async () => {
      if (!inScope(t.chatId) || t.userId === account.userId) return;
      const label = await app.label(t.chatId);
      const who = userLabel(t.userId, app.names());
      if (json) app.out.event({ event: 'typing', label, chatId: t.chatId, userId: t.userId, deviceId: t.deviceId, active: t.active, user: app.names()[t.userId] ?? null });
      else if (t.active) printer.line(`${stamp()} ${s.bold(safe(label))}  ${s.dim(`${who} is typing…`)}`);
    }),
  );
  // A live receipt and the stored read marker usually say the same: show each position once.
  const receiptShown = new Map<string, number>();
  live.on('receipt', (r) =>
    later(async () => {
      if (!inScope(r.chatId) || r.userId === account.userId) return;
      const key = `${r.chatId}:${r.userId}`;
      if (r.seq <= (receiptShown.get(key) ?? 0)) return;
      receiptShown.set(key, r.seq);
      const label = await app.label(r.chatId);
      const who = userLabel(r.userId, app.names());
      if (json) app.out.event({ event: 'receipt', label, ...r, user: app.names()[r.userId] ?? null });
      else printer.line(`${stamp()} ${s.bold(safe(label))}  ${s.dim(`${who} read up to ${r.seq}`)}`);
    }),
  );
  live.on('membership', (e) =>
    later(async () => {
      if (!inScope(e.chatId)) return;
      const label = await app.label(e.chatId);
      const who = e.userId ? userLabel(e.userId, app.names()) : '';
      if (json) {
        app.out.event({ event: 'membership', label, chatId: e.chatId, type: e.event, userId: e.userId ?? null, user: e.userId ? (app.names()[e.userId] ?? null) : null, data: e.data });
        return;
      }
      // data follows docs/ws-protocol.md ("chat_event data"): reason and role are lower-case REST values.
      const reason = typeof e.data.reason === 'string' ? e.data.reason : '';
      const role = typeof e.data.role === 'string' && e.data.role ? e.data.role : '';
      const gone = reason === 'left' ? 'left' : reason === 'account_deleted' ? 'deleted their account' : reason === 'removed' ? 'was removed' : 'left or was removed';
      const what: Record<string, string> = {
        chat_created: 'chat created',
        member_added: `${who} joined`,
        member_removed: e.userId === account.userId ? (reason === 'left' ? 'you left' : 'you were removed') : `${who} ${gone}`,
        role_changed: role ? `${who} is now ${role}` : `${who}'s role changed`,
        chat_deleted: 'chat deleted',
      };
      printer.line(`${stamp()} ${s.bold(safe(label))}  ${s.magenta(what[e.event] ?? safe(e.event))}`);
    }),
  );
  live.on('epoch', (e) =>
    later(async () => {
      if (!inScope(e.chatId) || e.event !== 'epoch_published') return;
      const label = await app.label(e.chatId);
      if (json) app.out.event({ event: 'epoch', label, chatId: e.chatId, epoch: e.epoch ?? null });
      else printer.line(`${stamp()} ${s.bold(safe(label))}  ${s.dim(`new group key, epoch ${e.epoch ?? '?'}`)}`);
    }),
  );
  live.on('safety-number-changed', (e) =>
    later(() => app.out.warn(`${userLabel(e.userId, app.names())} has a new identity key: their messages are not trusted until you compare safety numbers (bil contacts verify) and accept it`)),
  );
  live.on('error', (e) => later(() => app.out.warn(`server: ${safe(e.message)} [${safe(e.code)}]`)));
  live.on('reconnecting', (r) => later(() => app.out.note(`connection lost; reconnecting in ${Math.round(r.delayMs / 100) / 10} s (attempt ${r.attempt})…`)));
  let closing = false;
  live.on('disconnected', (d) => {
    if (d.reconnect || closing) return;
    later(() => {
      app.out.warn(`the server ended the live connection (${d.code}${d.reason ? ` ${safe(d.reason)}` : ''}): sign in again with bil login`);
      finish(ExitCode.auth);
    });
  });
  client.on('session-ended', (e) => {
    app.out.warn(`the session has ended [${safe(e.code)}]: bil login`);
    finish(ExitCode.auth);
  });

  const stop = () => finish(ExitCode.ok);
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  let timer: NodeJS.Timeout | undefined;
  if (timeoutS !== undefined) {
    timer = setTimeout(() => {
      if (wanted === undefined) finish(ExitCode.ok);
      else {
        app.out.warn(`timed out after ${timeoutS} s with ${shown} of ${wanted} messages [timeout]`);
        finish(ExitCode.error);
      }
    }, timeoutS * 1000);
  }

  live.start();
  if (only) {
    void ready
      .then(() => chatInput(app, live, only, { printer, finished, stop }))
      .catch((err: unknown) => {
        app.out.warn(`chat input: ${safe(err instanceof Error ? err.message : String(err))}`);
        finish(ExitCode.error);
      });
  }

  const code = await finished;
  if (timer) clearTimeout(timer);
  await queue;
  if (readTimer) clearTimeout(readTimer);
  await flushReads();
  const closed = new Promise<void>((resolve) => {
    live.once('disconnected', () => resolve());
    setTimeout(resolve, 1000);
  });
  closing = true;
  live.close();
  await closed;
  return code;
}

/**
 * `listen --chat`: each line of standard input is sent to the chat. On a
 * terminal it is a prompt: typing shows to the others while keys are pressed,
 * incoming lines print above it, Ctrl-C or Ctrl-D ends the session. From a
 * pipe, each line is sent with a typing signal before it.
 */
async function chatInput(
  app: App,
  live: LiveClient,
  chat: { chatId: string; type: string; title: string; peerUserId: string },
  ctx: { printer: { line(text: string): void }; finished: Promise<number>; stop: () => void },
): Promise<void> {
  const { client } = await app.open();
  const { chatId } = chat;
  const s = app.out.style;
  const send = async (text: string) => {
    try {
      const sent = await client.messages.send(chatId, text);
      if (app.out.json) app.out.event({ event: 'sent', chatId, seq: sent.seq, messageId: sent.messageId });
      else if (!interactive) ctx.printer.line(`${s.dim(`[${formatTime(Date.now())}]`)} ${s.green('you')}: ${safe(text)}`);
    } catch (err) {
      app.out.warn(`not sent: ${safe(err instanceof Error ? err.message : String(err))}`);
    }
  };
  const interactive = stdinIsTty() && Boolean(process.stdout.isTTY) && !app.out.json;

  if (!interactive) {
    let done = false;
    void ctx.finished.then(() => (done = true));
    for await (const line of stdinLines()) {
      if (done) break;
      const text = line.trim();
      if (!text) continue;
      live.typing(chatId, true);
      await send(text);
      live.typing(chatId, false);
    }
    return;
  }

  const label = await app.label(chatId);
  const rl = createInterface({ input: process.stdin, output: process.stdout, terminal: true, prompt: `${s.bold(safe(label))}> ` });
  ctx.printer.line = (text) => {
    clearLine(process.stdout, 0);
    cursorTo(process.stdout, 0);
    process.stdout.write(`${text}\n`);
    rl.prompt(true);
  };
  let typingSince = 0;
  let idle: NodeJS.Timeout | undefined;
  const stopTyping = () => {
    if (idle) clearTimeout(idle);
    idle = undefined;
    if (typingSince) live.typing(chatId, false);
    typingSince = 0;
  };
  // readline on a terminal emits keypress events on its input.
  process.stdin.on('keypress', (_ch: string, key: { name?: string } | undefined) => {
    if (key?.name === 'return' || key?.name === 'enter') return;
    const now = Date.now();
    if (now - typingSince > TYPING_REFRESH_MS) {
      live.typing(chatId, true);
      typingSince = now;
    }
    if (idle) clearTimeout(idle);
    idle = setTimeout(stopTyping, TYPING_IDLE_MS);
  });
  rl.on('line', (line) => {
    stopTyping();
    const text = line.trim();
    if (text) void send(text).then(() => rl.prompt(true));
    else rl.prompt(true);
  });
  rl.on('SIGINT', ctx.stop);
  rl.on('close', ctx.stop);
  void ctx.finished.then(() => {
    stopTyping();
    rl.close();
    process.stdout.write('\n');
  });
  rl.prompt();
}
