// Command and query handlers of the digest API process: the published key,
// per-chat policy, accepting sealed requests (checks → limits → append →
// enqueue) and reading results. It never opens a sealed box: it checks only
// what the headers say (kind, context, key id, signer), the worker does the rest.
//
// Size: just past 400 lines; the handlers are short and share the directory
// reads and the request checks. When it grows, split it by use case as chat
// and identity are (app/commands/*, app/queries/*, a repository).
import {
  AppError,
  ConcurrencyError,
  failedPrecondition,
  stateVersionOf,
  invalidArgument,
  notFound,
  unauthenticated,
  type Database,
  type EventStore,
  type IncomingEvent,
  type Logger,
  type Sql,
  type StoredEvent,
  type Tx,
} from '@bil/runtime';
import { decodeChatEvent, decodeIdentityEvent } from '@bil/proto/events';
import { isUuid } from '@bil/crypto';
import { REQUEST_KIND, digestContext } from '@bil/summarizer';
import { digestDecider, digestStream, type FailureReason } from '../domain/digest/digest.js';
import { policyDecider, policyStream, type PolicyCommand } from '../domain/policy/policy.js';
import type { DigestQueue } from '../infra/queue.js';
import type { DigestLimits } from '../infra/rate-limit.js';
import type { KeyRing } from './key-ring.js';
import { readRequestChecks } from './request-checks.js';

export interface Actor {
  userId: string;
  deviceId: string;
  sessionId: string;
}

export interface DigestSettings {
  minUnread: number;
  maxChatsPerRequest: number;
  maxTranscriptBytes: number;
  resultTtlMs: number;
  pendingTimeoutMs: number;
  modelConfigured: boolean;
}

export type DigestStatus = 'pending' | 'ready' | 'failed' | 'expired';

export interface DigestView {
  requestId: string;
  status: DigestStatus;
  failureReason: FailureReason | '';
  deviceId: string;
  chatIds: string[];
  results: Array<{ chatId: string; sealed: string }>;
  requestedAt: string;
  completedAt: string;
  expiresAt: string;
  method: string;
}

export interface PolicyView {
  chatId: string;
  enabled: boolean;
  disabledByMe: boolean;
  disabledByCount: number;
}

export interface DigestRow {
  request_id: string;
  user_id: string;
  device_id: string;
  chat_ids: string[];
  status: DigestStatus;
  failure_reason: FailureReason | '';
  method: string;
  requested_at: Date | string;
  completed_at: Date | string | null;
  expires_at: Date | string | null;
}

const iso = (d: Date | string | null) => (d ? new Date(d).toISOString() : '');

export function requireActor(a: Partial<Actor> | null | undefined): Actor {
  if (!a || !isUuid(a.userId ?? '') || !isUuid(a.deviceId ?? '') || !a.sessionId) throw unauthenticated('missing_actor', 'the request has no signed-in actor');
  return { userId: a.userId!, deviceId: a.deviceId!, sessionId: a.sessionId };
}

function uuid(value: unknown, field: 'chat_id' | 'request_id'): string {
  if (typeof value !== 'string' || !isUuid(value)) throw invalidArgument(`invalid_${field}`, `${field} must be a lowercase UUID`, { field });
  return value;
}

/** The sealed-box header fields the API checks without opening the box. */
function sealedHeader(sealed: string, chatId: string): { kind: unknown; context: unknown; key_id: unknown; signer_key: unknown } {
  const bad = () => invalidArgument('invalid_sealed_transcript', 'sealed must be a SealedBox (docs/protocol.md) as JSON', { field: 'transcripts', chat_id: chatId });
  let box: unknown;
  try {
    box = JSON.parse(sealed);
  } catch {
    throw bad();
  }
  const header = (box as { header?: unknown })?.header;
  if (typeof header !== 'object' || header === null) throw bad();
  return header as { kind: unknown; context: unknown; key_id: unknown; signer_key: unknown };
}

export class DigestApp {
  constructor(
    private readonly db: Database,
    private readonly store: EventStore,
    private readonly keys: KeyRing,
    private readonly queue: DigestQueue,
    private readonly limits: DigestLimits,
    readonly settings: DigestSettings,
    private readonly logger: Logger,
  ) {}

  // --- key and policy -------------------------------------------------------------

  async getKey() {
    const key = await this.keys.current();
    if (!key) throw new AppError('unavailable', 'digest_key_unavailable', 'the digest service has no current key yet; try again shortly');
    return { key, serviceIdentityKey: this.keys.identityKey, settings: this.settings };
  }

  async getPolicy(actor: Actor, chatIds: unknown[]): Promise<PolicyView[]> {
    if (!Array.isArray(chatIds) || chatIds.length === 0 || chatIds.length > 500) {
      throw invalidArgument('invalid_chat_ids', 'chat_ids must list 1 to 500 chats', { field: 'chat_ids' });
    }
    const ids = chatIds.map((c) => uuid(c, 'chat_id'));
    const rows = await this.db.query<{ chat_id: string; count: string; mine: boolean }>(
      `SELECT m.chat_id, count(o.user_id) AS count, bool_or(o.user_id = ?::uuid) AS mine
       FROM digest.chat_members m
       LEFT JOIN digest.policy_opt_outs o ON o.chat_id = m.chat_id
       WHERE m.user_id = ? AND m.chat_id = ANY (SELECT x::uuid FROM jsonb_array_elements_text(?::jsonb) AS x)
       GROUP BY m.chat_id`,
      [actor.userId, actor.userId, JSON.stringify(ids)],
    );
    const byId = new Map(rows.map((r) => [r.chat_id, r]));
    return ids.flatMap((chatId) => {
      const r = byId.get(chatId);
      return r ? [{ chatId, enabled: Number(r.count) === 0, disabledByMe: r.mine === true, disabledByCount: Number(r.count) }] : [];
    });
  }

  async setPolicy(actor: Actor, chatIdRaw: unknown, enabled: boolean): Promise<PolicyView> {
    const chatId = uuid(chatIdRaw, 'chat_id');
    const isMember = await this.isMember(this.db, chatId, actor.userId);
    const { state } = await this.store.handle(
      policyDecider,
      policyStream(chatId),
      { type: 'SetPolicy', chatId, userId: actor.userId, enabled: Boolean(enabled), isMember, now: new Date().toISOString() },
      { metadata: { actorUserId: actor.userId, actorDeviceId: actor.deviceId } },
    );
    return { chatId, enabled: state.disabledBy.length === 0, disabledByMe: state.disabledBy.includes(actor.userId), disabledByCount: state.disabledBy.length };
  }

  // --- requests -----------------------------------------------------------------

  async requestDigest(
    actor: Actor,
    requestIdRaw: unknown,
    transcripts: Array<{ chatId: unknown; sealed: unknown }>,
  ): Promise<{ digest: DigestView; created: boolean }> {
    const requestId = uuid(requestIdRaw, 'request_id');
    const { maxChatsPerRequest, maxTranscriptBytes } = this.settings;
    if (!Array.isArray(transcripts) || transcripts.length === 0 || transcripts.length > maxChatsPerRequest) {
      throw invalidArgument('invalid_transcripts', `transcripts must hold 1 to ${maxChatsPerRequest} chats`, { field: 'transcripts', max: maxChatsPerRequest });
    }
    // Sealing adds a fixed header and ~4/3 for base64url; padding rounds up to a power-of-two bucket.
    const maxSealed = Math.ceil(maxTranscriptBytes * 2.75) + 4096;
    const chatIds: string[] = [];
    const boxes: Array<{ chatId: string; sealed: string; keyId: string }> = [];
    let invalid: unknown;
    try {
      for (const t of transcripts) {
        const chatId = uuid(t?.chatId, 'chat_id');
        if (chatIds.includes(chatId)) throw invalidArgument('duplicate_chat', 'each chat may appear once', { field: 'transcripts', chat_id: chatId });
        if (typeof t.sealed !== 'string' || t.sealed.length === 0) throw invalidArgument('invalid_sealed_transcript', 'sealed is required', { field: 'transcripts', chat_id: chatId });
        if (t.sealed.length > maxSealed) throw invalidArgument('transcript_too_large', `a transcript may hold at most ${maxTranscriptBytes} bytes`, { chat_id: chatId, max: maxTranscriptBytes });
        chatIds.push(chatId);
        boxes.push({ chatId, sealed: t.sealed, keyId: '' });
      }
    } catch (err) {
      invalid = err;
    }

    // Every read the checks need, in one statement (app/request-checks.ts).
    const checks = await readRequestChecks(this.db, { requestId, deviceId: actor.deviceId, userId: actor.userId, chatIds: invalid ? [] : chatIds });
    // A repeat of a known request answers with it, before any other check or limit.
    if (checks.known) return this.repeat(actor, checks.known);
    if (invalid) throw invalid;
    const signingKey = checks.signing_key;
    if (!signingKey) throw failedPrecondition('device_unknown', 'this device is not (yet) in the key directory; try again shortly');
    const memberOf = new Set(checks.member_of);
    const missing = chatIds.find((c) => !memberOf.has(c));
    if (missing) throw notFound('chat_not_found', 'no such chat', { chat_id: missing });
    const disabled = chatIds.filter((c) => checks.disabled.includes(c));
    if (disabled.length) throw failedPrecondition('digests_disabled', 'a member switched digests off for this chat', { chat_ids: disabled });

    for (const box of boxes) {
      const h = sealedHeader(box.sealed, box.chatId);
      // The context binds the box to this request: one sealed for an earlier request id is refused.
      if (h.kind !== REQUEST_KIND || h.context !== digestContext(requestId, box.chatId, actor.deviceId) || h.signer_key !== signingKey) {
        throw invalidArgument('invalid_sealed_transcript', `sealed must be of kind "${REQUEST_KIND}", context "<request_id>:<chat_id>:<device_id>", signed by this device`, {
          field: 'transcripts',
          chat_id: box.chatId,
        });
      }
      if (typeof h.key_id !== 'string' || !(await this.keys.isOpenable(h.key_id))) {
        throw failedPrecondition('digest_key_unknown', 'the transcript is sealed to a key that is not (or no longer) a digest key; fetch the current key', { chat_id: box.chatId });
      }
      box.keyId = h.key_id;
    }

    const verdict = await this.limits.take(actor.userId, chatIds.length);
    if (!verdict.ok) {
      throw new AppError('rate_limited', 'rate_limited', verdict.limit === 'daily' ? 'daily digest cap reached' : 'too many digest requests, slow down', {
        limit: verdict.limit,
        retry_after_seconds: Math.ceil(verdict.retryAfterMs / 1000),
      });
    }

    // The stream is new (the request was not known): appended at version 0 without a load; a request
    // with the same id accepted meanwhile wins, and this one answers as its repeat.
    const now = new Date().toISOString();
    const stream = { streamId: digestStream(requestId), version: 0, state: digestDecider.initialState(), stateVersion: stateVersionOf(digestDecider) };
    const command = { type: 'RequestDigest' as const, requestId, userId: actor.userId, deviceId: actor.deviceId, chatIds, keyIds: [...new Set(boxes.map((b) => b.keyId))], now };
    const decided = digestDecider.decide(command, stream.state);
    let events: StoredEvent[];
    try {
      events = await this.db.tx((tx) => this.store.append(tx, stream, decided, decided.reduce(digestDecider.evolve, stream.state), { actorUserId: actor.userId, actorDeviceId: actor.deviceId }));
    } catch (err) {
      const row = err instanceof ConcurrencyError ? await this.findDigest(this.db, requestId) : undefined;
      if (!row) throw err;
      return this.repeat(actor, row);
    }
    const created = events.length > 0;
    if (created) {
      try {
        await this.queue.enqueue({
          requestId,
          userId: actor.userId,
          deviceId: actor.deviceId,
          correlationId: events[0]?.metadata.correlationId,
          transcripts: boxes.map((b) => ({ chatId: b.chatId, sealed: b.sealed })),
        });
      } catch (err) {
        this.logger.error({ err: { message: (err as Error)?.message }, requestId }, 'could not enqueue a digest job');
        await this.fail(requestId, 'internal');
        throw new AppError('unavailable', 'queue_unavailable', 'the digest queue is unavailable; try again');
      }
      this.logger.info({ requestId, chats: chatIds.length }, 'digest requested');
    }
    const digest: DigestView = {
      requestId,
      status: 'pending',
      failureReason: '',
      deviceId: actor.deviceId,
      chatIds,
      results: [],
      requestedAt: now,
      completedAt: '',
      expiresAt: '',
      method: '',
    };
    return { digest, created };
  }

  /** A known request id again: its current view for its owner; someone else's id is refused. */
  private async repeat(actor: Actor, known: DigestRow): Promise<{ digest: DigestView; created: boolean }> {
    if (known.user_id !== actor.userId) throw new AppError('already_exists', 'request_id_taken', 'this request id belongs to another request', { field: 'request_id' });
    return { digest: await this.view(known), created: false };
  }

  async getDigest(actor: Actor, requestIdRaw: unknown): Promise<DigestView> {
    const requestId = uuid(requestIdRaw, 'request_id');
    const row = await this.findDigest(this.db, requestId);
    // Someone else's request is "not found", so request ids are no oracle.
    if (!row || row.user_id !== actor.userId) throw notFound('digest_not_found', 'no such digest request');
    return this.view(row);
  }

  // --- housekeeping ---------------------------------------------------------------

  /** Expires ready results past their expiry, and fails requests pending for too long. */
  async sweep(now = Date.now()): Promise<{ expired: number; abandoned: number }> {
    const at = new Date(now).toISOString();
    const ready = await this.db.query<{ request_id: string }>(
      `SELECT request_id FROM digest.digests WHERE status = 'ready' AND expires_at <= ? ORDER BY expires_at LIMIT 500`,
      [at],
    );
    for (const { request_id } of ready) {
      await this.db.tx(async (tx) => {
        await this.store.handleIn(tx, digestDecider, digestStream(request_id), { type: 'ExpireDigest', now: at });
        await tx.query(`DELETE FROM digest.results WHERE request_id = ?`, [request_id]);
      });
    }
    // Results are deleted at expiry even if the digest row lags behind.
    await this.db.query(`DELETE FROM digest.results WHERE expires_at <= ?`, [at]);
    const stuck = await this.db.query<{ request_id: string }>(
      `SELECT request_id FROM digest.digests WHERE status = 'pending' AND requested_at <= ? ORDER BY requested_at LIMIT 500`,
      [new Date(now - this.settings.pendingTimeoutMs).toISOString()],
    );
    for (const { request_id } of stuck) {
      await this.fail(request_id, 'abandoned');
      await this.queue.discard(request_id);
    }
    if (ready.length || stuck.length) this.logger.info({ expired: ready.length, abandoned: stuck.length }, 'digest sweep');
    return { expired: ready.length, abandoned: stuck.length };
  }

  private async fail(requestId: string, reason: FailureReason): Promise<void> {
    await this.store.handle(digestDecider, digestStream(requestId), { type: 'FailDigest', reason, now: new Date().toISOString() });
  }

  // --- consumers of identity and chat -------------------------------------------------

  /** Keeps the local key directory (users' identity keys, devices' keys) from identity.v1.>. */
  async applyIdentityEvent(tx: Tx, event: IncomingEvent, prefix: string): Promise<void> {
    const e = decodeIdentityEvent(event.subject.slice(prefix.length), event.payload);
    if (!e) return; // an identity event this build does not know
    switch (e.name) {
      case 'user.registered':
        await tx.query(`INSERT INTO digest.directory_users (user_id, status) VALUES (?, 'active') ON CONFLICT (user_id) DO NOTHING`, [e.payload.userId]);
        return;
      case 'user.identity_key_set':
        await tx.query(
          `INSERT INTO digest.directory_users (user_id, identity_key, status) VALUES (?, ?, 'active')
           ON CONFLICT (user_id) DO UPDATE SET identity_key = excluded.identity_key, updated_at = now()`,
          [e.payload.userId, e.payload.identityKey],
        );
        return;
      case 'user.deleted':
        await tx.query(
          `INSERT INTO digest.directory_users (user_id, status) VALUES (?, 'deleted')
           ON CONFLICT (user_id) DO UPDATE SET status = 'deleted', updated_at = now()`,
          [e.payload.userId],
        );
        await tx.query(`UPDATE digest.directory_devices SET status = 'revoked', updated_at = now() WHERE user_id = ?`, [e.payload.userId]);
        return;
      case 'device.registered': {
        const p = e.payload;
        await tx.query(
          `INSERT INTO digest.directory_devices (device_id, user_id, encryption_key, signing_key, certificate, certificate_issued_at, status)
           VALUES (?, ?, ?, ?, ?, ?, 'active') ON CONFLICT (device_id) DO NOTHING`,
          [p.deviceId, p.userId, p.encryptionKey, p.signingKey, p.certificate, p.certificateIssuedAt],
        );
        return;
      }
      case 'device.revoked':
        await tx.query(
          `INSERT INTO digest.directory_devices (device_id, user_id, encryption_key, signing_key, certificate, certificate_issued_at, status)
           VALUES (?, ?, '', '', '', 0, 'revoked')
           ON CONFLICT (device_id) DO UPDATE SET status = 'revoked', updated_at = now()`,
          [e.payload.deviceId, e.payload.userId],
        );
        return;
      default:
        return;
    }
  }

  /** Keeps the local membership view from chat.v1.chat.>; a member leaving withdraws their digest switch-off. */
  async applyChatEvent(tx: Tx, event: IncomingEvent, prefix: string): Promise<void> {
    const e = decodeChatEvent(event.subject.slice(prefix.length), event.payload);
    if (!e) return; // a chat event this build does not know
    const now = e.payload.occurredAt || new Date().toISOString();
    switch (e.name) {
      case 'chat.created':
        await tx.query(
          `INSERT INTO digest.chat_members (chat_id, user_id)
           SELECT ?::uuid, u FROM unnest(?::uuid[]) AS u ON CONFLICT DO NOTHING`,
          [e.payload.chatId, `{${e.payload.members.map((m) => m.userId).join(',')}}`],
        );
        return;
      case 'chat.member_added':
        await tx.query(`INSERT INTO digest.chat_members (chat_id, user_id) VALUES (?, ?) ON CONFLICT DO NOTHING`, [e.payload.chatId, e.payload.userId]);
        return;
      case 'chat.member_removed': {
        const { chatId, userId } = e.payload;
        await tx.query(`DELETE FROM digest.chat_members WHERE chat_id = ? AND user_id = ?`, [chatId, userId]);
        await this.forget(tx, { type: 'ForgetMember', chatId, userId, now });
        return;
      }
      case 'chat.deleted': {
        const { chatId } = e.payload;
        await tx.query(`DELETE FROM digest.chat_members WHERE chat_id = ?`, [chatId]);
        const optOuts = await tx.query<{ user_id: string }>(`SELECT user_id FROM digest.policy_opt_outs WHERE chat_id = ?`, [chatId]);
        for (const o of optOuts) await this.forget(tx, { type: 'ForgetMember', chatId, userId: o.user_id, now });
        return;
      }
      default:
        return;
    }
  }

  private async forget(tx: Tx, command: Extract<PolicyCommand, { type: 'ForgetMember' }>): Promise<void> {
    await this.store.handleIn(tx, policyDecider, policyStream(command.chatId), command);
  }

  // --- helpers -----------------------------------------------------------------------

  private async isMember(q: Sql, chatId: string, userId: string): Promise<boolean> {
    const rows = await q.query(`SELECT 1 FROM digest.chat_members WHERE chat_id = ? AND user_id = ?`, [chatId, userId]);
    return rows.length > 0;
  }

  private async findDigest(q: Sql, requestId: string): Promise<DigestRow | undefined> {
    const rows = await q.query<DigestRow>(`SELECT * FROM digest.digests WHERE request_id = ?`, [requestId]);
    return rows[0];
  }

  private async view(row: DigestRow): Promise<DigestView> {
    const results =
      row.status === 'ready'
        ? await this.db.query<{ chat_id: string; sealed: string }>(`SELECT chat_id, sealed FROM digest.results WHERE request_id = ? AND expires_at > now()`, [row.request_id])
        : [];
    const byChat = new Map(results.map((r) => [r.chat_id, r.sealed]));
    return {
      requestId: row.request_id,
      status: row.status,
      failureReason: row.failure_reason,
      deviceId: row.device_id,
      chatIds: row.chat_ids,
      results: row.chat_ids.flatMap((chatId) => (byChat.has(chatId) ? [{ chatId, sealed: byChat.get(chatId)! }] : [])),
      requestedAt: iso(row.requested_at),
      completedAt: iso(row.completed_at),
      expiresAt: iso(row.expires_at),
      method: row.method,
    };
  }
}
