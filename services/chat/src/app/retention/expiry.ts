// The expiry job: erases the messages whose `expires_at` has passed, a batch
// per transaction, through the same eraseMessages as delete for everyone.
// Rows are claimed with FOR UPDATE SKIP LOCKED, so several replicas run it
// side by side without erasing a message twice or waiting on each other.
// Reads never return an expired message even before the job runs (history
// and unread filter on expires_at), so its interval bounds only how long the
// ciphertext stays on disk.
import type { Clock, Database, Logger } from '@bil/runtime';
import { eraseMessages } from './erase.js';

export const EXPIRY_BATCH = 500;

/** Erases one batch of expired messages; how many it erased. */
export async function eraseExpired(db: Database, clock: Clock, batch = EXPIRY_BATCH): Promise<number> {
  return db.tx(async (tx) => {
    const rows = await tx.query<{ chat_id: string; seq: string }>(
      `SELECT chat_id, seq FROM chat.messages
       WHERE expires_at <= ? AND expires_at IS NOT NULL AND NOT removed
       ORDER BY expires_at LIMIT ? FOR UPDATE SKIP LOCKED`,
      [clock.now().toISOString(), batch],
    );
    const byChat = new Map<string, number[]>();
    for (const r of rows) byChat.set(r.chat_id, [...(byChat.get(r.chat_id) ?? []), Number(r.seq)]);
    for (const [chatId, seqs] of byChat) await eraseMessages(tx, chatId, seqs);
    return rows.length;
  });
}

/** Runs eraseExpired every `intervalMs` (batch after batch while full); stop() ends it. */
export function startExpiryJob(db: Database, clock: Clock, logger: Logger, intervalMs: number): { stop: () => Promise<void> } {
  let stopped = false;
  let running: Promise<void> = Promise.resolve();
  const tick = async () => {
    try {
      let n: number;
      do {
        n = await eraseExpired(db, clock);
        if (n > 0) logger.info({ erased: n }, 'expired messages erased');
      } while (n === EXPIRY_BATCH && !stopped);
    } catch (err) {
      logger.error({ err }, 'expiry job failed; retrying at the next interval');
    }
  };
  const timer = setInterval(() => {
    running = running.then(tick);
  }, intervalMs);
  timer.unref();
  return {
    stop: async () => {
      stopped = true;
      clearInterval(timer);
      await running;
    },
  };
}
