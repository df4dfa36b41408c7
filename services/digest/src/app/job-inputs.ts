// Everything a digest job reads before it opens a transcript, in ONE prepared
// statement (one round trip, planned once per connection): the request's
// stream state, which of its chats have digests switched off, the requesting
// device's directory row (if it and its account are active) and who opted out
// of each chat. Before, these were four statements per job.
import type { Database, LoadedStream } from '@bil/runtime';
import { stateVersionOf } from '@bil/runtime';
import { digestDecider, digestStream, type DigestState } from '../domain/digest/digest.js';

export interface DeviceRow {
  encryption_key: string;
  signing_key: string;
  certificate: string;
  certificate_issued_at: string;
  identity_key: string;
}

export interface JobInputs {
  /** The request's stream as load() gives it, or undefined when its state row is of another state version (load it then). */
  stream: LoadedStream<DigestState> | undefined;
  /** Chats of the request whose digests a member turned off. */
  off: string[];
  device: DeviceRow | undefined;
  /** Chat id (as given) → users who opted out of its digests. */
  excluded: Map<string, Set<string>>;
}

// $1 stream id, $2 chat ids (text[], as the job spells them), $3 device id, $4 user id.
const JOB_INPUTS_SQL = `SELECT
  (SELECT json_build_object('version', s.version, 'state', s.state, 'state_version', s.state_version)
     FROM digest.streams s WHERE s.stream_id = $1) AS stream,
  (SELECT coalesce(json_agg(DISTINCT x), '[]'::json)
     FROM unnest($2::text[]) AS x WHERE EXISTS (SELECT 1 FROM digest.policy_opt_outs o WHERE o.chat_id = x::uuid)) AS off,
  (SELECT json_build_object('encryption_key', d.encryption_key, 'signing_key', d.signing_key, 'certificate', d.certificate,
                            'certificate_issued_at', d.certificate_issued_at::text, 'identity_key', u.identity_key)
     FROM digest.directory_devices d JOIN digest.directory_users u ON u.user_id = d.user_id AND u.status = 'active'
     WHERE d.device_id = $3::uuid AND d.user_id = $4::uuid AND d.status = 'active') AS device,
  (SELECT coalesce(json_agg(json_build_array(x, c.user_id)), '[]'::json)
     FROM unnest($2::text[]) AS x JOIN digest.consents c ON c.chat_id = x::uuid AND c.include = false) AS excluded`;

interface Row {
  stream: { version: number; state: DigestState; state_version: number } | null;
  off: string[];
  device: DeviceRow | null;
  excluded: Array<[string, string]>;
}

/** Reads a job's inputs in one statement. */
export async function readJobInputs(db: Database, job: { requestId: string; userId: string; deviceId: string; chatIds: readonly string[] }): Promise<JobInputs> {
  const streamId = digestStream(job.requestId);
  const [row] = await db.prepared<Row>('digest_job_inputs', JOB_INPUTS_SQL, [streamId, job.chatIds, job.deviceId, job.userId]);
  const stateVersion = stateVersionOf(digestDecider);
  let stream: LoadedStream<DigestState> | undefined;
  if (!row?.stream) stream = { streamId, version: 0, state: digestDecider.initialState(), stateVersion };
  else if (Number(row.stream.state_version) === stateVersion) stream = { streamId, version: Number(row.stream.version), state: row.stream.state, stateVersion };
  const excluded = new Map<string, Set<string>>();
  for (const [chatId, userId] of row?.excluded ?? []) {
    const set = excluded.get(chatId) ?? new Set<string>();
    set.add(userId);
    excluded.set(chatId, set);
  }
  return { stream, off: row?.off ?? [], device: row?.device ?? undefined, excluded };
}
