// Catch-up for many devices of one chat at once (CatchUpMessages): delivery
// batches the devices that reconnect to a group at about the same time, and
// one page read here serves them all, each message once, with the devices
// that may see it. A device gets a message after its own cursor that was
// posted while its user was a member (the same intervals as ListMessages);
// the page itself is ListMessages' query (history.ts readPage) without the
// per-member filter, from the lowest cursor.
import { failedPrecondition, invalidArgument, notFound, permissionDenied } from '@bil/runtime';
import { validateLimit, validateSeq, validateUuid } from '../../domain/validation.js';
import { chatNotFound, type ChatDeps } from '../context.js';
import { maxPageBytes } from './paging.js';
import { messageView, readPage, type MessageView } from './history.js';

/** Devices one request may name (delivery batches at most 500). */
export const MAX_CATCH_UP_DEVICES = 1000;
/** What a recipient adds to a page's size besides its key (index and framing). */
const RECIPIENT_BYTES = 8;

export interface CatchUpDeviceInput {
  userId: unknown;
  deviceId: unknown;
  afterSeq: unknown;
}

export interface CatchUpRecipientView {
  deviceIndex: number;
  wrappedKey: string;
}

export interface CatchUpPage {
  /** Each message with `wrappedKey` "" and the request's devices that get it. */
  messages: Array<{ message: MessageView; recipients: CatchUpRecipientView[] }>;
  hasMore: boolean;
  /** Read the next page after this seq (the last message's when `hasMore`, else the chat's last seq). */
  throughSeq: number;
  lastSeq: number;
}

interface Device {
  userId: string;
  deviceId: string;
  after: number;
  /** The user's membership intervals: messages with joined < seq <= left (left null: still a member). */
  intervals: Array<[number, number | null]>;
}

function validateDevices(raw: unknown): Array<{ userId: string; deviceId: string; after: number }> {
  if (!Array.isArray(raw) || raw.length === 0 || raw.length > MAX_CATCH_UP_DEVICES) {
    throw invalidArgument('invalid_argument', `devices must list 1 to ${MAX_CATCH_UP_DEVICES} devices`, { field: 'devices' });
  }
  const seen = new Set<string>();
  return raw.map((d: CatchUpDeviceInput) => {
    const deviceId = validateUuid(d?.deviceId, 'devices.device_id');
    if (seen.has(deviceId)) throw invalidArgument('invalid_argument', 'a device is listed twice', { field: 'devices', device_id: deviceId });
    seen.add(deviceId);
    return { userId: validateUuid(d.userId, 'devices.user_id'), deviceId, after: validateSeq(d.afterSeq, 'devices.after_seq') };
  });
}

/**
 * Every device must be an active device of its user in the directory, and
 * that user a current member of the chat; otherwise the whole request is
 * refused, naming the devices (delivery then serves them one by one).
 */
async function authorise(deps: ChatDeps, chatId: string, devices: ReturnType<typeof validateDevices>): Promise<{ lastSeq: number; devices: Device[] }> {
  const rows = await deps.db.query<{
    idx: number;
    last_seq: string | null;
    device_user: string | null;
    device_status: string | null;
    intervals: Array<[string | number, string | number | null]>;
  }>(
    `SELECT r.idx, c.last_seq, d.user_id AS device_user, d.status AS device_status,
            COALESCE((SELECT json_agg(json_build_array(i.joined_seq, i.left_seq) ORDER BY i.joined_seq)
                      FROM chat.chat_members i WHERE i.chat_id = c.chat_id AND i.user_id = r.user_id), '[]'::json) AS intervals
     FROM jsonb_to_recordset(?::jsonb) AS r(idx int, user_id uuid, device_id uuid)
     LEFT JOIN chat.chats c ON c.chat_id = ? AND c.status = 'active'
     LEFT JOIN chat.directory_devices d ON d.device_id = r.device_id
     ORDER BY r.idx`,
    [JSON.stringify(devices.map((d, idx) => ({ idx, user_id: d.userId, device_id: d.deviceId }))), chatId],
  );
  if (rows.length === 0 || rows[0]!.last_seq === null) throw chatNotFound();
  const unknown: string[] = [];
  const revoked: string[] = [];
  const outsiders: string[] = [];
  const out = rows.map((r) => {
    const d = devices[r.idx]!;
    if (r.device_status === null) unknown.push(d.deviceId);
    else if (r.device_status !== 'active' || r.device_user !== d.userId) revoked.push(d.deviceId);
    const intervals = r.intervals.map(([j, l]) => [Number(j), l === null ? null : Number(l)] as [number, number | null]);
    if (!intervals.some(([, l]) => l === null)) outsiders.push(d.deviceId);
    return { ...d, intervals };
  });
  if (revoked.length) throw permissionDenied('device_revoked', 'a device was revoked or is not its user’s', { device_ids: revoked });
  if (unknown.length) throw failedPrecondition('unknown_device', 'a device is not (yet) an active device in the directory', { device_ids: unknown });
  if (outsiders.length) throw notFound('chat_not_found', 'no such chat', { device_ids: outsiders });
  return { lastSeq: Number(rows[0]!.last_seq), devices: out };
}

const sees = (d: Device, seq: number): boolean => seq > d.after && d.intervals.some(([j, l]) => seq > j && (l === null || seq <= l));

export async function catchUpMessages(deps: ChatDeps, input: { chatId: unknown; devices: unknown; limit: unknown }): Promise<CatchUpPage> {
  const chatId = validateUuid(input.chatId, 'chat_id');
  const limit = validateLimit(input.limit, 200, 200);
  const { lastSeq, devices } = await authorise(deps, chatId, validateDevices(input.devices));
  // Nothing before a user first joined is theirs: a new device of a late member does not page through the group's past.
  const from = Math.min(...devices.map((d) => Math.max(d.after, d.intervals[0]?.[0] ?? d.after)));
  if (from >= lastSeq) return { messages: [], hasMore: false, throughSeq: lastSeq, lastSeq };
  const budget = maxPageBytes(deps.settings);
  const page = await readPage(deps, { chatId, after: from, before: lastSeq + 1, forwards: true, limit, maxBytes: budget });
  const keys = new Map<string, string>();
  if (page.rows.length > 0) {
    const rows = await deps.db.query<{ seq: string; device_id: string; wrapped_key: string }>(
      `SELECT seq, device_id, wrapped_key FROM chat.message_keys
       WHERE chat_id = ? AND seq >= ? AND seq <= ? AND device_id IN (SELECT (jsonb_array_elements_text(?::jsonb))::uuid)`,
      [chatId, page.rows[0]!.seq, page.rows.at(-1)!.seq, JSON.stringify(devices.map((d) => d.deviceId))],
    );
    for (const r of rows) keys.set(`${Number(r.seq)}:${r.device_id}`, r.wrapped_key);
  }
  // The page's rows fit the budget by their envelopes; recipients and keys count too (the first row always goes).
  const messages: CatchUpPage['messages'] = [];
  let bytes = 0;
  let cut = false;
  let through = from;
  for (const [n, row] of page.rows.entries()) {
    const message = messageView(chatId, row);
    const recipients: CatchUpRecipientView[] = [];
    for (const [deviceIndex, d] of devices.entries()) {
      if (sees(d, message.seq)) recipients.push({ deviceIndex, wrappedKey: keys.get(`${message.seq}:${d.deviceId}`) ?? '' });
    }
    bytes += message.envelope.length + recipients.reduce((s, r) => s + RECIPIENT_BYTES + r.wrappedKey.length, 0);
    if (n > 0 && bytes > budget) {
      cut = true;
      break;
    }
    through = message.seq;
    if (recipients.length > 0) messages.push({ message, recipients });
  }
  const hasMore = page.hasMore || cut;
  return { messages, hasMore, throughSeq: hasMore ? through : lastSeq, lastSeq };
}
