// Frames made from what the backends answer: a message read from chat (for
// catch-up and gap fills) and the `error` code of a failed backend call.
import { AppError, isDependencyUnavailable } from '@bil/runtime';
import { ERROR_CODES, messageFrame, withWrappedKey, type ErrorCode } from '../domain/frames.js';
import type { StoredMessage } from '../infra/backends.js';
import type { PageMessage } from './sequencer.js';

/**
 * The `error` frame code for a failure of a backend call: a documented code
 * passes (`chat_not_found`, `token_expired`, ...); an unreachable or slow
 * backend (Redis, NATS too) is `service_unavailable` / `timeout`; else `internal`.
 */
export function frameErrorCode(err: unknown): ErrorCode {
  if (!(err instanceof AppError)) return isDependencyUnavailable(err) ? 'service_unavailable' : 'internal';
  if (err.kind === 'internal') return 'internal';
  if ((ERROR_CODES as readonly string[]).includes(err.code)) return err.code as ErrorCode;
  if (err.kind === 'unavailable') return 'service_unavailable';
  if (err.kind === 'deadline_exceeded') return 'timeout';
  return 'internal';
}

/** The `message` frame of a message read from chat (already the device's own key). */
export function storedFrame(m: StoredMessage): string {
  return withWrappedKey(
    messageFrame({
      chatId: m.chatId,
      seq: Number(m.seq),
      messageId: m.messageId,
      senderUserId: m.senderUserId,
      senderDeviceId: m.senderDeviceId,
      epoch: Number(m.epoch),
      envelope: m.envelope,
      createdAt: m.createdAt,
      ...(m.removed ? { removed: { tombstone: m.tombstone } } : {}),
    }),
    m.wrappedKey || undefined,
  );
}

/** A message of a page read from chat, for the sequencer: its frame is built only if it is sent. */
export function pageMessage(m: StoredMessage): PageMessage {
  return { seq: Number(m.seq), frame: () => storedFrame(m) };
}
