// What RequestDigest reads before it accepts a request, in ONE prepared
// statement (one round trip, planned once per connection): the request if it
// is already known, the requesting device's signing key (if it is active in
// the key directory), which of the chats the user is a member of, and which
// have digests switched off. Before, these were four statements in a row.
import type { Database } from '@bil/runtime';
import type { DigestRow } from './digest-app.js';

export interface RequestChecks {
  /** The request's row if it is known (row_to_json: its times come as ISO strings). */
  known: DigestRow | null;
  /** The device's signing key, or null when it is not (yet) active in the directory. */
  signing_key: string | null;
  /** The chats (as given) the user is a member of. */
  member_of: string[];
  /** The chats (as given) whose digests a member switched off. */
  disabled: string[];
}

// $1 request id, $2 device id, $3 user id, $4 chat ids (text[], lowercase UUIDs as checked by the caller).
const REQUEST_CHECKS_SQL = `SELECT
  (SELECT row_to_json(d) FROM digest.digests d WHERE d.request_id = $1::uuid) AS known,
  (SELECT d.signing_key FROM digest.directory_devices d WHERE d.device_id = $2::uuid AND d.user_id = $3::uuid AND d.status = 'active') AS signing_key,
  (SELECT coalesce(json_agg(x), '[]'::json) FROM unnest($4::text[]) AS x
     WHERE EXISTS (SELECT 1 FROM digest.chat_members m WHERE m.chat_id = x::uuid AND m.user_id = $3::uuid)) AS member_of,
  (SELECT coalesce(json_agg(x), '[]'::json) FROM unnest($4::text[]) AS x
     WHERE EXISTS (SELECT 1 FROM digest.policy_opt_outs o WHERE o.chat_id = x::uuid)) AS disabled`;

export async function readRequestChecks(db: Database, q: { requestId: string; deviceId: string; userId: string; chatIds: readonly string[] }): Promise<RequestChecks> {
  const [row] = await db.prepared<RequestChecks>('digest_request_checks', REQUEST_CHECKS_SQL, [q.requestId, q.deviceId, q.userId, q.chatIds]);
  return row ?? { known: null, signing_key: null, member_of: [], disabled: [] };
}
