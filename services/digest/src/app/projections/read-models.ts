// Read models of the digest context, updated in the append transaction and
// rebuilt from the events: `digests` (one row per request, what GetDigest and
// the sweeper read), `policy_opt_outs` (who switched digests off where) and
// `consents` (each member's newest signed digest consent per chat).
// Keys are read from their stream's state row (a handful of rows).
import type { Projection, Sql, StoredEvent } from '@bil/runtime';
import type { DigestEvent } from '../../domain/digest/digest.js';
import type { PolicyEvent } from '../../domain/policy/policy.js';
import type { KeysEvent } from '../../domain/keys/keys.js';
import type { ConsentEvent } from '../../domain/consent/consent.js';

type Event = DigestEvent | PolicyEvent | KeysEvent | ConsentEvent;

async function applyOne(q: Sql, stored: StoredEvent): Promise<void> {
  const e = { type: stored.type, data: stored.data } as Event;
  switch (e.type) {
    case 'DigestRequested': {
      const d = e.data;
      await q.query(
        `INSERT INTO digest.digests (request_id, user_id, device_id, chat_ids, status, requested_at)
         VALUES (?, ?, ?, (SELECT array_agg(x::uuid) FROM jsonb_array_elements_text(?::jsonb) AS x), 'pending', ?)`,
        [d.requestId, d.userId, d.deviceId, JSON.stringify(d.chatIds), d.occurredAt],
      );
      return;
    }
    case 'DigestCompleted': {
      const d = e.data;
      await q.query(`UPDATE digest.digests SET status = 'ready', method = ?, completed_at = ?, expires_at = ? WHERE request_id = ?`, [
        d.method,
        d.occurredAt,
        d.expiresAt,
        d.requestId,
      ]);
      return;
    }
    case 'DigestFailed': {
      const d = e.data;
      await q.query(`UPDATE digest.digests SET status = 'failed', failure_reason = ?, completed_at = ? WHERE request_id = ?`, [d.reason, d.occurredAt, d.requestId]);
      return;
    }
    case 'DigestExpired':
      await q.query(`UPDATE digest.digests SET status = 'expired' WHERE request_id = ?`, [e.data.requestId]);
      return;
    case 'DigestsSwitchedOff': {
      const d = e.data;
      await q.query(`INSERT INTO digest.policy_opt_outs (chat_id, user_id, switched_off_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`, [d.chatId, d.userId, d.occurredAt]);
      return;
    }
    case 'DigestsSwitchedOn':
      await q.query(`DELETE FROM digest.policy_opt_outs WHERE chat_id = ? AND user_id = ?`, [e.data.chatId, e.data.userId]);
      return;
    case 'DigestConsentChanged': {
      const d = e.data;
      await q.query(
        `INSERT INTO digest.consents (chat_id, user_id, device_id, include, version, consent, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (chat_id, user_id) DO UPDATE SET device_id = excluded.device_id, include = excluded.include, version = excluded.version,
           consent = excluded.consent, updated_at = excluded.updated_at
         WHERE excluded.version > digest.consents.version`,
        [d.chatId, d.userId, d.deviceId, d.include, d.version, d.consent, d.occurredAt],
      );
      return;
    }
    case 'DigestKeyIssued':
      return;
    default: {
      const unknown: never = e;
      return unknown;
    }
  }
}

export const digestReadModels: Projection = {
  name: 'digest-read-models',
  tables: ['digests', 'policy_opt_outs', 'consents'],
  async apply(q, events) {
    for (const e of events) await applyOne(q, e);
  },
};
