// The WebSocket frame protocol, version 1 (docs/ws-protocol.md): every frame
// is one JSON object in a text message with a `type`. This module is pure: it
// checks client frames at the entry point and builds server frames.

import { chatEventData, type ChatEventKind } from './chat-events.js';

export const PROTOCOL_VERSION = 1;
/** The subprotocol a browser offers (with `bil.token.<jwt>`); the server selects it. */
export const SUBPROTOCOL = 'bil.v1';
export const TOKEN_SUBPROTOCOL_PREFIX = 'bil.token.';

/** Close codes (RFC 6455 §7.4.2: 4000-4999 are the application's). */
export const CloseCodes = {
  normal: 1000,
  goingAway: 1001,
  tooBig: 1009,
  tokenExpired: 4001,
  revoked: 4003,
  authMismatch: 4004,
  slowConsumer: 4008,
  syncTimeout: 4009,
  tooManyErrors: 4010,
  replaced: 4011,
  unavailable: 4013,
} as const;

export const CloseReasons: Record<keyof typeof CloseCodes, string> = {
  normal: 'bye',
  goingAway: 'node_shutting_down',
  tooBig: 'frame_too_big',
  tokenExpired: 'token_expired',
  revoked: 'revoked',
  authMismatch: 'auth_mismatch',
  slowConsumer: 'slow_consumer',
  syncTimeout: 'sync_timeout',
  tooManyErrors: 'too_many_errors',
  replaced: 'replaced',
  unavailable: 'backend_unavailable',
};

/** The frame types a client may send (docs/ws-protocol.md, "Client → server"). */
export const CLIENT_FRAME_TYPES = ['sync', 'ack', 'auth', 'typing', 'read', 'presence_subscribe', 'ping'] as const;

/** The frame types the server sends (docs/ws-protocol.md, "Server → client"). */
export const SERVER_FRAME_TYPES = ['hello', 'message', 'synced', 'receipt', 'typing', 'presence', 'chat_event', 'digest', 'auth_ok', 'pong', 'error'] as const;

/**
 * Every `code` of an `error` frame. Errors of the services delivery calls are
 * passed on only when their code is listed here; any other becomes `internal`
 * (or `service_unavailable` / `timeout` for an unreachable or slow backend).
 */
export const ERROR_CODES = [
  'bad_frame',
  'unknown_type',
  'chat_not_found',
  'already_synced',
  'auth_mismatch',
  'invalid_token',
  'token_expired',
  'presence_not_allowed',
  'rate_limited',
  'service_unavailable',
  'timeout',
  'payload_too_large',
  'internal',
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

/** The client frames that name a chat and are answered `chat_not_found` when the device's user is not a member. */
export const CHAT_NOT_FOUND_FRAMES = ['ack', 'typing', 'read'] as const;

export type ClientFrame =
  | { type: 'sync'; id?: string; cursors: Record<string, number> }
  | { type: 'ack'; id?: string; chatId: string; seq: number }
  | { type: 'auth'; id?: string; token: string }
  | { type: 'typing'; id?: string; chatId: string; active: boolean }
  | { type: 'read'; id?: string; chatId: string; seq: number }
  | { type: 'presence_subscribe'; id?: string; userIds: string[] }
  | { type: 'ping'; id?: string };

// The list and the parsed union name the same types (a compile error otherwise).
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
export const CLIENT_FRAME_TYPES_MATCH: Same<ClientFrame['type'], (typeof CLIENT_FRAME_TYPES)[number]> = true;

export class FrameError extends Error {
  constructor(
    readonly code: 'bad_frame' | 'unknown_type',
    message: string,
    readonly id?: string,
  ) {
    super(message);
    this.name = 'FrameError';
  }
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
export const MAX_CURSORS = 10_000;
export const MAX_PRESENCE_USERS = 200;

export function isUuid(v: unknown): v is string {
  return typeof v === 'string' && UUID.test(v);
}

function isSeq(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

/** Parses and checks one client frame; throws FrameError with a stable code. */
export function parseClientFrame(text: string): ClientFrame {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    throw new FrameError('bad_frame', 'a frame must be a JSON object');
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data)) throw new FrameError('bad_frame', 'a frame must be a JSON object');
  const f = data as Record<string, unknown>;
  const id = typeof f.id === 'string' && f.id.length <= 64 ? f.id : undefined;
  if (f.id !== undefined && id === undefined) throw new FrameError('bad_frame', 'id must be a string of at most 64 characters');
  const bad = (message: string) => new FrameError('bad_frame', message, id);
  const chatId = () => {
    if (!isUuid(f.chat_id)) throw bad('chat_id must be a lowercase UUID');
    return f.chat_id;
  };
  const seq = () => {
    if (!isSeq(f.seq)) throw bad('seq must be a non-negative integer');
    return f.seq;
  };
  switch (f.type) {
    case 'sync': {
      const raw = f.cursors ?? {};
      if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw bad('cursors must be an object of chat id to seq');
      const entries = Object.entries(raw as Record<string, unknown>);
      if (entries.length > MAX_CURSORS) throw bad(`at most ${MAX_CURSORS} cursors`);
      const cursors: Record<string, number> = {};
      for (const [k, v] of entries) {
        if (!isUuid(k) || !isSeq(v)) throw bad('cursors must map chat ids (lowercase UUIDs) to non-negative integers');
        cursors[k] = v;
      }
      return { type: 'sync', id, cursors };
    }
    case 'ack':
      return { type: 'ack', id, chatId: chatId(), seq: seq() };
    case 'read':
      return { type: 'read', id, chatId: chatId(), seq: seq() };
    case 'auth':
      if (typeof f.token !== 'string' || f.token.length === 0 || f.token.length > 4096) throw bad('token must be an access token');
      return { type: 'auth', id, token: f.token };
    case 'typing':
      if (typeof f.active !== 'boolean') throw bad('active must be a boolean');
      return { type: 'typing', id, chatId: chatId(), active: f.active };
    case 'presence_subscribe': {
      if (!Array.isArray(f.user_ids) || f.user_ids.length > MAX_PRESENCE_USERS || !f.user_ids.every(isUuid)) {
        throw bad(`user_ids must be at most ${MAX_PRESENCE_USERS} lowercase UUIDs`);
      }
      return { type: 'presence_subscribe', id, userIds: [...new Set(f.user_ids as string[])] };
    }
    case 'ping':
      return { type: 'ping', id };
    default:
      throw new FrameError('unknown_type', `unknown frame type ${JSON.stringify(String(f.type)).slice(0, 40)}`, id);
  }
}

/** A stored or live message as delivered to one device. */
export interface MessageData {
  chatId: string;
  seq: number;
  messageId: string;
  senderUserId: string;
  senderDeviceId: string;
  epoch: number;
  /** The envelope, JSON text, passed through untouched ("" for a removed message). */
  envelope: string;
  createdAt: string;
  /** Catch-up of a message deleted for everyone or erased on expiry: no envelope; the sender's tombstone (JSON text) if they deleted it. */
  removed?: { tombstone: string };
}

/**
 * The `message` frame without a wrapped key, encoded once per fan-out. A
 * device's own wrapped key is spliced in with withWrappedKey, so a personal
 * chat's frame is not re-encoded per device.
 */
export function messageFrame(m: MessageData): string {
  return JSON.stringify({
    type: 'message',
    chat_id: m.chatId,
    seq: m.seq,
    message_id: m.messageId,
    sender_user_id: m.senderUserId,
    sender_device_id: m.senderDeviceId,
    epoch: m.epoch,
    envelope: m.envelope,
    created_at: m.createdAt,
    ...(m.removed ? { removed: true, tombstone: m.removed.tombstone } : {}),
  });
}

/** Adds `wrapped_key` to an encoded object frame (the frame ends with `}`). */
export function withWrappedKey(frame: string, wrappedKey: string | undefined): string {
  if (!wrappedKey) return frame;
  return `${frame.slice(0, -1)},"wrapped_key":${JSON.stringify(wrappedKey)}}`;
}

export const helloFrame = (o: { node: string; userId: string; deviceId: string; expiresAt: number; maxFrameBytes: number }) =>
  JSON.stringify({
    type: 'hello',
    protocol: PROTOCOL_VERSION,
    node: o.node,
    user_id: o.userId,
    device_id: o.deviceId,
    expires_at: o.expiresAt,
    max_frame_bytes: o.maxFrameBytes,
  });

export const syncedFrame = (cursors: Record<string, number>) => JSON.stringify({ type: 'synced', cursors });

export const errorFrame = (code: ErrorCode, message: string, id?: string, details?: Record<string, unknown>) =>
  JSON.stringify({ type: 'error', code, message, ...(id ? { id } : {}), ...(details ? { details } : {}) });

export const authOkFrame = (expiresAt: number, id?: string) => JSON.stringify({ type: 'auth_ok', expires_at: expiresAt, ...(id ? { id } : {}) });

export const pongFrame = (id?: string) => JSON.stringify({ type: 'pong', ...(id ? { id } : {}) });

export const typingFrame = (o: { chatId: string; userId: string; deviceId: string; active: boolean }) =>
  JSON.stringify({ type: 'typing', chat_id: o.chatId, user_id: o.userId, device_id: o.deviceId, active: o.active });

/** A read marker: `durable` when it came from the chat service (MarkRead), false for a live-only receipt. */
export const receiptFrame = (o: { chatId: string; userId: string; seq: number; durable: boolean; deviceId?: string }) =>
  JSON.stringify({
    type: 'receipt',
    chat_id: o.chatId,
    user_id: o.userId,
    ...(o.deviceId ? { device_id: o.deviceId } : {}),
    seq: o.seq,
    durable: o.durable,
  });

export const presenceFrame = (userId: string, online: boolean) => JSON.stringify({ type: 'presence', user_id: userId, online });

/** A membership or key event of a chat; `data` follows the REST conventions (domain/chat-events.ts). */
export const chatEventFrame = (event: ChatEventKind, chatId: string, payload: object) =>
  JSON.stringify({ type: 'chat_event', event, chat_id: chatId, data: chatEventData(event, payload) });

/** `DIGEST_FAILURE_REASON_TIMEOUT` → `timeout` (the REST API's `failure_reason`). */
export function failureReasonCode(reason: string): string {
  const code = reason.replace(/^DIGEST_FAILURE_REASON_/, '').toLowerCase();
  return code === 'unspecified' || code === '' ? 'internal' : code;
}

/** A digest request's outcome, to the one device that asked (the sealed results are fetched with `GET /v1/digests/{id}`). */
export const digestFrame = (
  o:
    | { event: 'ready'; requestId: string; chatIds: string[]; method: string; expiresAt: string }
    | { event: 'failed'; requestId: string; reason: string },
) =>
  JSON.stringify(
    o.event === 'ready'
      ? { type: 'digest', event: 'ready', request_id: o.requestId, chat_ids: o.chatIds, method: o.method, expires_at: o.expiresAt }
      : { type: 'digest', event: 'failed', request_id: o.requestId, reason: failureReasonCode(o.reason) },
  );

/** A chat's digest policy changed: clients stop (or start) offering digests for it. */
export const digestPolicyFrame = (o: { chatId: string; userId: string; enabled: boolean; disabledByCount: number }) =>
  JSON.stringify({ type: 'digest', event: 'policy_changed', chat_id: o.chatId, user_id: o.userId, enabled: o.enabled, disabled_by_count: o.disabledByCount });
