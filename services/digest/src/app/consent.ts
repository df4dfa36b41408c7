// Signed digest consent (docs/digest.md, "Consent"): a member's
// `bil.digest-consent.v1` statement for one chat, checked and stored by the
// digest service. The service is the second line: honest clients already leave
// opted-out members' messages out of their transcripts; the worker drops what
// a client left in (read with the job's inputs, app/job-inputs.ts), and GetDigestPolicy lists the current
// members' statements so that clients can verify and pin them.
import { MAX_CONSENT_CHARS } from '@bil/proto/limits';
import { CannotDecryptError, isUuid, parseDigestConsent, verifyDigestConsent, type DigestConsentPayload } from '@bil/crypto';
import { failedPrecondition, invalidArgument, type Database, type EventStore } from '@bil/runtime';
import { consentDecider, consentStream } from '../domain/consent/consent.js';
import type { Actor } from './digest-app.js';

/** Largest statement accepted (a real one is about 400 characters). */
export { MAX_CONSENT_CHARS } from '@bil/proto/limits';

const invalid = (why: string) => invalidArgument('invalid_consent', `consent must be a bil.digest-consent.v1 statement ${why}`, { field: 'consent' });

export class DigestConsents {
  constructor(
    private readonly db: Database,
    private readonly store: EventStore,
  ) {}

  /**
   * Checks and stores the actor's statement for a chat; returns it (JSON).
   * Refusals: INVALID_ARGUMENT `invalid_chat_id`, `invalid_consent` (not the
   * statement's shape, another chat, user or device than the caller's, or a
   * signature that does not verify under the device's signing key from the
   * directory); FAILED_PRECONDITION `device_unknown`, `consent_stale` (a
   * statement with this or a higher version is stored); NOT_FOUND `chat_not_found`.
   */
  async set(actor: Actor, chatIdRaw: unknown, consentRaw: unknown): Promise<string> {
    if (typeof chatIdRaw !== 'string' || !isUuid(chatIdRaw)) throw invalidArgument('invalid_chat_id', 'chat_id must be a lowercase UUID', { field: 'chat_id' });
    const chatId = chatIdRaw;
    if (typeof consentRaw !== 'string' || consentRaw.length === 0 || consentRaw.length > MAX_CONSENT_CHARS) throw invalid(`as JSON of at most ${MAX_CONSENT_CHARS} characters`);
    let statement: unknown;
    let payload: DigestConsentPayload;
    try {
      statement = JSON.parse(consentRaw);
      payload = parseDigestConsent(statement);
    } catch {
      throw invalid('({"payload": {…}, "signature": "…"}, docs/protocol.md "Digest consent")');
    }
    if (payload.chat_id !== chatId) throw invalid('for this chat (payload.chat_id differs from the path)');
    if (payload.user_id !== actor.userId || payload.device_id !== actor.deviceId) throw invalid('signed by the calling device (payload.user_id / device_id)');

    const device = await this.db.query<{ signing_key: string }>(
      `SELECT signing_key FROM digest.directory_devices WHERE device_id = ? AND user_id = ? AND status = 'active'`,
      [actor.deviceId, actor.userId],
    );
    if (!device[0]) throw failedPrecondition('device_unknown', 'this device is not (yet) in the key directory; try again shortly');
    try {
      await verifyDigestConsent({ consent: statement, chatId, userId: actor.userId, signingKey: device[0].signing_key });
    } catch (err) {
      if (err instanceof CannotDecryptError) throw invalid('whose signature verifies under the signing key of the calling device');
      throw err;
    }

    // Stored as the client sent it (canonical re-encoding is the client's concern; the signature covers the payload).
    const consent = JSON.stringify(statement);
    const isMember = (await this.db.query(`SELECT 1 FROM digest.chat_members WHERE chat_id = ? AND user_id = ?`, [chatId, actor.userId])).length > 0;
    const { state } = await this.store.handle(
      consentDecider,
      consentStream(chatId, actor.userId),
      {
        type: 'SetConsent',
        statement: { chatId, userId: actor.userId, deviceId: actor.deviceId, include: payload.include, version: payload.version, consent },
        isMember,
        now: new Date().toISOString(),
      },
      { metadata: { actorUserId: actor.userId, actorDeviceId: actor.deviceId } },
    );
    return state.current?.consent ?? consent;
  }

  /** The newest statement of each current member, per chat, oldest first (what GetDigestPolicy lists). */
  async ofCurrentMembers(chatIds: string[]): Promise<Map<string, string[]>> {
    const out = new Map<string, string[]>();
    if (chatIds.length === 0) return out;
    const rows = await this.db.query<{ chat_id: string; consent: string }>(
      `SELECT c.chat_id, c.consent FROM digest.consents c
       JOIN digest.chat_members m ON m.chat_id = c.chat_id AND m.user_id = c.user_id
       WHERE c.chat_id = ANY (SELECT x::uuid FROM jsonb_array_elements_text(?::jsonb) AS x)
       ORDER BY c.updated_at, c.user_id`,
      [JSON.stringify(chatIds)],
    );
    for (const r of rows) out.set(r.chat_id, [...(out.get(r.chat_id) ?? []), r.consent]);
    return out;
  }
}
