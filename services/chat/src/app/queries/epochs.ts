// The group epochs read model: a chat's epoch records in order, each with the
// calling device's own epoch key (ListEpochs).
import { validateLimit, validateSeq, validateUuid } from '../../domain/validation.js';
import type { Actor, ChatDeps } from '../context.js';
import { access } from '../repository.js';
import { ROW_OVERHEAD_BYTES, iso, maxPageBytes } from './paging.js';

export interface EpochView {
  epoch: number;
  recordHash: string;
  record: string;
  wrappedKey: string;
  signerUserId: string;
  signerDeviceId: string;
  createdAt: string;
}

export async function listEpochs(
  deps: ChatDeps,
  actor: Actor,
  input: { chatId: unknown; afterEpoch: unknown; limit: unknown },
): Promise<{ epochs: EpochView[]; currentEpoch: number; hasMore: boolean }> {
  const chatId = validateUuid(input.chatId, 'chat_id');
  const after = validateSeq(input.afterEpoch ?? 0, 'after_epoch');
  const limit = validateLimit(input.limit, 100, 100);
  const caller = await access(deps.db, actor, chatId);
  // Sized by bytes as well as count, as ListMessages (MAX_PAGE_BYTES): a 1,000-member record is megabytes,
  // so rows are taken in epoch order while their running size fits, the first always.
  const rows = await deps.db.query<{
    epoch: number;
    record_hash: string;
    record: unknown;
    signer_user_id: string;
    signer_device_id: string;
    created_at: Date;
    wrapped_key: string | null;
    fetched: string;
  }>(
    `SELECT p.epoch, p.record_hash, p.record, p.signer_user_id, p.signer_device_id, p.created_at, p.wrapped_key, p.fetched
     FROM (
       SELECT y.*, sum(y.bytes) OVER (ORDER BY y.epoch ROWS UNBOUNDED PRECEDING) AS running,
              row_number() OVER (ORDER BY y.epoch) AS rn, count(*) OVER () AS fetched
       FROM (
         SELECT g.epoch, g.record_hash, g.record, g.signer_user_id, g.signer_device_id, g.created_at, k.wrapped_key,
                octet_length(g.record::text) + COALESCE(octet_length(k.wrapped_key), 0) + ${ROW_OVERHEAD_BYTES} AS bytes
         FROM chat.group_epochs g
         LEFT JOIN chat.group_keys k ON k.chat_id = g.chat_id AND k.epoch = g.epoch AND k.device_id = ?
         WHERE g.chat_id = ? AND g.epoch > ? ORDER BY g.epoch LIMIT ?
       ) y
     ) p
     WHERE p.rn = 1 OR p.running <= ?
     ORDER BY p.epoch`,
    [actor.deviceId, chatId, after, limit + 1, maxPageBytes(deps.settings)],
  );
  const page = rows.slice(0, limit);
  const fetched = rows.length > 0 ? Number(rows[0]!.fetched) : 0;
  return {
    epochs: page.map((r) => ({
      epoch: r.epoch,
      recordHash: r.record_hash,
      record: JSON.stringify(r.record),
      wrappedKey: r.wrapped_key ?? '',
      signerUserId: r.signer_user_id,
      signerDeviceId: r.signer_device_id,
      createdAt: iso(r.created_at),
    })),
    currentEpoch: caller.epoch,
    // More exist when a row was left out, by the count (limit + 1 fetched) or by the byte budget.
    hasMore: fetched > page.length,
  };
}
