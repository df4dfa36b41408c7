// The 1:1 world shared by the 1:1, hot-chat and history measurements: N
// personal chats between 2N SDK accounts, each recipient connected to both
// systems' WebSockets, each chat's template envelope made by the SDK.
import type WebSocket from 'ws';
import { makeUsers, openSocket, pool, templateFor, type Target, type User } from '../clients.js';
import type { Ctx } from '../context.js';
import { delivered, type Tracker } from '../load.js';

export interface World {
  targets: Target[];
  senders: User[];
  recipients: User[];
  /** Receivers report here; set the tracker of the step that runs. */
  active: { t?: Tracker };
  /** Project sockets by user id (the storm closes and reopens them). */
  projectSockets: Map<string, WebSocket>;
  close(): void;
}

/** Text of about 2 KB: with header, wrapped keys and base64 the request body is ~3 KB as in issue #18. */
export const TEXT = 'bench '.repeat(150);

export async function oneToOneWorld(ctx: Ctx, chats: number): Promise<World> {
  const { stack, log } = ctx;
  const t0 = Date.now();
  log(`1:1 world: registering ${2 * chats} accounts with the SDK…`);
  const users = await makeUsers(stack.baseUrl, 2 * chats);
  const senders = users.slice(0, chats);
  const recipients = users.slice(chats);
  log(`1:1 world: ${chats} personal chats and template envelopes…`);
  const targets = await pool(senders, 4, async (s, i) => {
    const chat = await s.client.chats.createPersonal(recipients[i]!.userId);
    return templateFor(chat.chatId, s, TEXT);
  });
  await fetch(`${stack.raw.baseUrl}/raw/setup`, {
    method: 'POST',
    body: JSON.stringify({
      chats: targets.map((t, i) => ({ chat_id: t.chatId, members: [t.sender.userId, recipients[i]!.userId], devices: [t.sender.deviceId, recipients[i]!.deviceId] })),
    }),
  });
  const active: World['active'] = {};
  const onMessage = (id: string) => active.t && delivered(active.t, id);
  const sockets: WebSocket[] = [];
  sockets.push(...(await pool(recipients, 16, (r) => openSocket(stack.wsUrl, r.token, { onMessage, cursors: r.cursors.project }))));
  sockets.push(...(await pool(recipients, 16, (r) => openSocket(stack.raw.wsUrl, r.token, { onMessage, cursors: r.cursors.raw }))));
  log(`1:1 world ready in ${((Date.now() - t0) / 1000).toFixed(0)} s (body ${Buffer.byteLength(JSON.stringify(targets[0]!.template))} bytes)`);
  const projectSockets = new Map(recipients.map((r, i) => [r.userId, sockets[i]!]));
  return { targets, senders, recipients, active, projectSockets, close: () => sockets.forEach((s) => s.terminate()) };
}
