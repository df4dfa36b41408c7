// One digest request (stream `digest-<request id>`): requested by a device for
// some chats, then ready (summaries stored sealed to that device, until they
// expire) or failed with a reason the client sees. Completion and failure are
// idempotent: a job run twice (a worker died mid-job and another took it
// over) decides nothing the second time, so the result is written once.
import { alreadyExists, type Decider } from '@bil/runtime/domain';

export const FAILURE_REASONS = [
  'summarizer_unavailable',
  'timeout',
  'summarizer_rejected',
  'undecryptable',
  'invalid_transcript',
  'device_unavailable',
  'abandoned',
  'digests_disabled',
  'internal',
] as const;
export type FailureReason = (typeof FAILURE_REASONS)[number];

export type SummaryMethod = 'llm' | 'extractive';

/** A stored result: only its digest (SHA-256 of the sealed box) is in the event; the sealed box sits in `digest.results` until it expires. */
export interface ResultRef {
  chatId: string;
  sealedSha256: string;
}

export type DigestEvent =
  | {
      type: 'DigestRequested';
      data: { requestId: string; userId: string; deviceId: string; chatIds: string[]; keyIds: string[]; occurredAt: string };
    }
  | {
      type: 'DigestCompleted';
      data: { requestId: string; userId: string; deviceId: string; chatIds: string[]; results: ResultRef[]; method: SummaryMethod; expiresAt: string; occurredAt: string };
    }
  | { type: 'DigestFailed'; data: { requestId: string; userId: string; deviceId: string; reason: FailureReason; occurredAt: string } }
  | { type: 'DigestExpired'; data: { requestId: string; occurredAt: string } };

export type DigestCommand =
  | { type: 'RequestDigest'; requestId: string; userId: string; deviceId: string; chatIds: string[]; keyIds: string[]; now: string }
  | { type: 'CompleteDigest'; results: ResultRef[]; method: SummaryMethod; expiresAt: string; now: string }
  | { type: 'FailDigest'; reason: FailureReason; now: string }
  | { type: 'ExpireDigest'; now: string };

interface Requested {
  requestId: string;
  userId: string;
  deviceId: string;
  chatIds: string[];
  requestedAt: string;
}

export type DigestState =
  | { status: 'none' }
  | ({ status: 'pending' } & Requested)
  | ({ status: 'ready'; completedAt: string; expiresAt: string; method: SummaryMethod } & Requested)
  | ({ status: 'failed'; completedAt: string; reason: FailureReason } & Requested)
  | ({ status: 'expired'; completedAt: string; expiresAt: string; method: SummaryMethod } & Requested);

export const digestStream = (requestId: string) => `digest-${requestId}`;

function requestDigest(c: Extract<DigestCommand, { type: 'RequestDigest' }>, s: DigestState): DigestEvent[] {
  if (s.status !== 'none') {
    // The same request again (a client retry) is a no-op; someone else's id is not theirs to reuse.
    if (s.userId === c.userId) return [];
    throw alreadyExists('request_id_taken', 'this request id belongs to another request', { field: 'request_id' });
  }
  const { requestId, userId, deviceId, chatIds, keyIds, now } = c;
  return [{ type: 'DigestRequested', data: { requestId, userId, deviceId, chatIds, keyIds, occurredAt: now } }];
}

function completeDigest(c: Extract<DigestCommand, { type: 'CompleteDigest' }>, s: DigestState): DigestEvent[] {
  if (s.status !== 'pending') return []; // already ready, failed or expired: the first outcome stands
  const { requestId, userId, deviceId, chatIds } = s;
  return [{ type: 'DigestCompleted', data: { requestId, userId, deviceId, chatIds, results: c.results, method: c.method, expiresAt: c.expiresAt, occurredAt: c.now } }];
}

function failDigest(c: Extract<DigestCommand, { type: 'FailDigest' }>, s: DigestState): DigestEvent[] {
  if (s.status !== 'pending') return [];
  return [{ type: 'DigestFailed', data: { requestId: s.requestId, userId: s.userId, deviceId: s.deviceId, reason: c.reason, occurredAt: c.now } }];
}

function expireDigest(c: Extract<DigestCommand, { type: 'ExpireDigest' }>, s: DigestState): DigestEvent[] {
  if (s.status !== 'ready' || Date.parse(c.now) < Date.parse(s.expiresAt)) return [];
  return [{ type: 'DigestExpired', data: { requestId: s.requestId, occurredAt: c.now } }];
}

export function decideDigest(command: DigestCommand, state: DigestState): DigestEvent[] {
  switch (command.type) {
    case 'RequestDigest':
      return requestDigest(command, state);
    case 'CompleteDigest':
      return completeDigest(command, state);
    case 'FailDigest':
      return failDigest(command, state);
    case 'ExpireDigest':
      return expireDigest(command, state);
    default: {
      const unknown: never = command;
      throw new Error(`unknown command ${String((unknown as { type: unknown }).type)}`);
    }
  }
}

export function evolveDigest(state: DigestState, event: DigestEvent): DigestState {
  switch (event.type) {
    case 'DigestRequested': {
      const d = event.data;
      return { status: 'pending', requestId: d.requestId, userId: d.userId, deviceId: d.deviceId, chatIds: d.chatIds, requestedAt: d.occurredAt };
    }
    case 'DigestCompleted':
      if (state.status !== 'pending') return state;
      return { ...state, status: 'ready', completedAt: event.data.occurredAt, expiresAt: event.data.expiresAt, method: event.data.method };
    case 'DigestFailed':
      if (state.status !== 'pending') return state;
      return { ...state, status: 'failed', completedAt: event.data.occurredAt, reason: event.data.reason };
    case 'DigestExpired':
      if (state.status !== 'ready') return state;
      return { ...state, status: 'expired' };
    default: {
      const unknown: never = event;
      return unknown;
    }
  }
}

export const digestDecider: Decider<DigestCommand, DigestEvent, DigestState> = {
  initialState: () => ({ status: 'none' }),
  decide: decideDigest,
  evolve: evolveDigest,
};
