// The send path (issue #18): sendMessage's writes, group-committed.
//
// Concurrent sends, across chats and within one hot chat, are collected
// while a commit is in flight (and for the rest of the current tick when
// none is) and written by ONE transaction: one fsync serves the whole batch,
// each chat's row lock is taken once per batch, and every statement is
// set-based over the batch (a fixed number of round trips per batch, not
// per message):
//
//   1. ONE statement (SEND_SQL.read, three branches of a UNION ALL, one
//      round trip): the batch's (sender device, message id) pairs already
//      stored (idempotent resends); the directory rows it needs (both users'
//      active devices of each personal chat, each sender device's own row);
//      and the batch's chat rows locked in chat_id order (so two batches
//      never deadlock) with their last_seq and chat_version;
//   2. each chat's decider state from memory at that chat_version
//      (ChatStates); only a chat whose state changed since, or not seen
//      before, costs one more statement (the batch's misses together);
//   3. in memory: each send decided by the pure decider on that state, seqs
//      taken per chat in arrival order for the accepted sends only (a refused
//      send takes no number: gap-free);
//   4. the MessagePosted events appended to the chats' message logs at
//      version = seq (EventStore.appendOwned: no stream state row rewritten)
//      and, in the same statement (the projection's inline CTEs), messages,
//      keys, read markers and the chats' last_seq.
//   5. only when a send of the batch references attachments: ONE more
//      statement (MESSAGE_BLOBS_SQL) recording the (chat, seq, blob) rows
//      in message_blobs, before the write that commits.
//
// BEGIN, the read, the write, COMMIT: four statements per batch when every
// chat's state is known, in two round trips (Database.pipelined: BEGIN goes
// with the read, COMMIT with the write; each statement prepared once per
// connection and planned generically, the parameters bound as values).
//
// A refused send (chat_not_found, device_revoked, mismatched devices, …)
// fails alone: it is decided in memory and left out. A statement error fails
// the transaction, and then every member of the batch is retried in a batch
// of its own, so one bad send never fails the others; a unique violation on
// (sender device, message id) alone is a concurrent resend and answers with
// the stored result. Nothing is acknowledged before its commit.
import {
  failedPrecondition,
  isUniqueViolation,
  notFound,
  permissionDenied,
  currentContext,
  systemClock,
  type Clock,
  type Database,
  type EventMetadata,
  type EventStore,
  type PipelinedTx,
  type Sql,
} from '@bil/runtime';
import { chatDecider, messageLogStream, type ChatEvent, type Directory } from '../../domain/chat/chat.js';
import type { Envelope, WrappedKeyInput } from '../../domain/validation.js';
import { ChatStates } from './chat-states.js';

export interface SendRequest {
  userId: string;
  deviceId: string;
  chatId: string;
  messageId: string;
  envelope: Envelope;
  wrappedKeys: WrappedKeyInput[];
  /** Blobs the message references (validated: the sender's own completed blobs); written to message_blobs with it. */
  attachmentIds?: readonly string[];
}

export interface SendResult {
  seq: number;
  createdAt: string;
  duplicate: boolean;
}

interface Pending {
  req: SendRequest;
  metadata: EventMetadata;
  resolve: (r: SendResult) => void;
  reject: (err: unknown) => void;
}

type Outcome = { ok: SendResult } | { err: unknown } | { later: true };

export interface MessageWriterOptions {
  /** Most sends in one transaction (default 256). */
  maxBatch?: number;
  /** Batches committing at once (default 2): the next batch collects while one commits. */
  maxInFlight?: number;
  /** The time a batch's messages are stamped with (default the system clock). */
  clock?: Clock;
  /** Most chat state kept in memory, about one unit per member (default 200,000). */
  stateCacheWeight?: number;
}

const chatNotFound = () => notFound('chat_not_found', 'no such chat');
const deviceRevoked = () => permissionDenied('device_revoked', 'this device was revoked');
const iso = (d: Date | string) => new Date(d).toISOString();
/** A PostgreSQL array literal of uuids (validated upstream), one parameter whatever the length. */
const uuidArray = (ids: Iterable<string>) => `{${[...new Set(ids)].join(',')}}`;

/**
 * The writer's statements, exported for the plan tests. Every lookup is
 * index-bound whatever the planner statistics (the local PostgreSQL may run
 * without autovacuum): each is a LATERAL subquery on one key that OFFSET 0
 * keeps from being flattened into a join, which without statistics may hash
 * a scan of every device (issue #18: 1,010 rows read per send).
 */
export const SEND_SQL = {
  /** (sender device ids, message ids): the stored messages of those pairs, one probe of messages_sender_message_key each. */
  stored: `SELECT m.sender_device_id, m.message_id, m.chat_id, m.seq, m.created_at
       FROM unnest(?::uuid[], ?::uuid[]) AS x(device_id, message_id)
       CROSS JOIN LATERAL (SELECT m.sender_device_id, m.message_id, m.chat_id, m.seq, m.created_at FROM chat.messages m
                           WHERE m.sender_device_id = x.device_id AND m.message_id = x.message_id OFFSET 0) m`,
  /** (chat ids, sender device ids): both users' active devices per personal chat (chat_id set), each sender device's own row (chat_id null). */
  directory: `SELECT c.chat_id, d.user_id, d.device_id, d.signing_key, d.status
       FROM unnest(?::uuid[]) AS x(chat_id)
       CROSS JOIN LATERAL (SELECT c.chat_id, c.pair_key FROM chat.chats c WHERE c.chat_id = x.chat_id AND c.pair_key IS NOT NULL OFFSET 0) c
       CROSS JOIN LATERAL unnest(string_to_array(c.pair_key, ':')::uuid[]) AS u(user_id)
       CROSS JOIN LATERAL (SELECT d.user_id, d.device_id, d.signing_key, d.status FROM chat.directory_devices d
                           WHERE d.user_id = u.user_id AND d.status = 'active' OFFSET 0) d
       UNION ALL
       SELECT NULL, d.user_id, d.device_id, d.signing_key, d.status
       FROM unnest(?::uuid[]) AS y(device_id)
       CROSS JOIN LATERAL (SELECT d.user_id, d.device_id, d.signing_key, d.status FROM chat.directory_devices d WHERE d.device_id = y.device_id OFFSET 0) d`,
  /** (chat ids): locks the active chats in chat_id order; each with the version of its stream (ChatStates). */
  lockChats: `SELECT c.chat_id, c.last_seq, c.chat_version
       FROM (SELECT DISTINCT chat_id FROM unnest(?::uuid[]) AS i(chat_id) ORDER BY chat_id) x
       CROSS JOIN LATERAL (SELECT c.chat_id, c.last_seq, c.chat_version FROM chat.chats c WHERE c.chat_id = x.chat_id AND c.status = 'active' OFFSET 0 FOR UPDATE) c`,
};

/** (chat ids, seqs, blob ids), one row per attachment of the batch's accepted sends: what each message references. */
export const MESSAGE_BLOBS_SQL = `INSERT INTO chat.message_blobs (chat_id, seq, blob_id)
     SELECT x.chat_id, x.seq, x.blob_id FROM unnest(?::uuid[], ?::bigint[], ?::uuid[]) AS x(chat_id, seq, blob_id)
     ON CONFLICT DO NOTHING`;

/**
 * The three reads of a batch as one statement, one round trip (each branch
 * planned on its own, as the plan tests check them): rows `{ k, r }` with k
 * 's' (SEND_SQL.stored), 'd' (SEND_SQL.directory) or 'c' (SEND_SQL.lockChats)
 * and r the row as jsonb. Parameters: stored's, directory's, lockChats'.
 */
export const SEND_READ_SQL = `SELECT 's' AS k, to_jsonb(q) AS r FROM (${SEND_SQL.stored}) q
     UNION ALL SELECT 'd', to_jsonb(q) FROM (${SEND_SQL.directory}) q
     UNION ALL SELECT 'c', to_jsonb(q) FROM (${SEND_SQL.lockChats}) q`;

type StoredRow = { sender_device_id: string; message_id: string; chat_id: string; seq: string | number; created_at: Date | string };
type DirectoryRow = { chat_id: string | null; user_id: string; device_id: string; signing_key: string; status: string };
type ChatRow = { chat_id: string; last_seq: string | number; chat_version: number };

export class MessageWriter {
  private queue: Pending[] = [];
  private inFlight = 0;
  private scheduled = false;
  private readonly maxBatch: number;
  private readonly maxInFlight: number;
  private readonly clock: Clock;
  private readonly states: ChatStates;

  constructor(
    private readonly db: Database,
    private readonly store: EventStore,
    opts: MessageWriterOptions = {},
  ) {
    this.maxBatch = opts.maxBatch ?? 256;
    this.maxInFlight = opts.maxInFlight ?? 2;
    this.clock = opts.clock ?? systemClock;
    this.states = new ChatStates(store, opts.stateCacheWeight);
  }

  /** Writes one validated send; resolves after its commit. */
  send(req: SendRequest): Promise<SendResult> {
    const ctx = currentContext();
    const metadata: EventMetadata = { correlationId: ctx?.correlationId, causationId: ctx?.causationId, actorUserId: req.userId, actorDeviceId: req.deviceId };
    return new Promise((resolve, reject) => {
      this.queue.push({ req, metadata, resolve, reject });
      if (!this.scheduled) {
        // The rest of this tick's sends (one socket read can carry many) join the first.
        this.scheduled = true;
        setImmediate(() => {
          this.scheduled = false;
          this.pump();
        });
      }
    });
  }

  private pump(): void {
    while (this.inFlight < this.maxInFlight && this.queue.length > 0) {
      const batch = this.queue.splice(0, this.maxBatch);
      this.inFlight++;
      void this.commit(batch).finally(() => {
        this.inFlight--;
        this.pump();
      });
    }
  }

  /** One batch in one transaction; on a statement error, each member alone. */
  private async commit(batch: Pending[]): Promise<void> {
    let outcomes: Outcome[];
    try {
      outcomes = await this.db.pipelined((tx) => this.write(tx, batch));
    } catch (err) {
      if (batch.length > 1) {
        await Promise.all(batch.map((p) => this.commit([p])));
        return;
      }
      const p = batch[0]!;
      if (isUniqueViolation(err, 'messages_sender_message_key')) {
        // A concurrent resend (another batch) won the race: answer with its result.
        try {
          const [won] = await this.stored(this.db, [p]);
          if (won) return settle(p, won.chat_id === p.req.chatId ? { ok: sent(won) } : { err: messageIdTaken() });
        } catch (lookup) {
          return p.reject(lookup);
        }
      }
      p.reject(err);
      return;
    }
    const later: Pending[] = [];
    batch.forEach((p, i) => {
      const o = outcomes[i]!;
      if ('later' in o) later.push(p);
      else settle(p, o);
    });
    if (later.length > 0) {
      // Resends of a message id earlier in the same batch: the next batch answers them from the stored row.
      this.queue.unshift(...later);
    }
  }

  private async write(tx: PipelinedTx, batch: Pending[]): Promise<Outcome[]> {
    const chatIds = uuidArray(batch.map((p) => p.req.chatId));
    const read = await tx.query<{ k: 's' | 'd' | 'c'; r: StoredRow & DirectoryRow & ChatRow }>(SEND_READ_SQL, [
      ...this.storedParams(batch),
      chatIds,
      uuidArray(batch.map((p) => p.req.deviceId)),
      chatIds,
    ]);
    const found = new Map<string, StoredRow>();
    const chats: ChatRow[] = [];
    const devices = new Map<string, { user_id: string; status: string }>();
    const directories = new Map<string, Directory>();
    const seen = new Set<string>();
    for (const { k, r } of read) {
      if (k === 's') {
        found.set(`${r.sender_device_id}:${r.message_id}`, r);
        continue;
      }
      if (k === 'c') {
        chats.push(r);
        continue;
      }
      if (r.chat_id === null) {
        devices.set(r.device_id, r);
        continue;
      }
      const key = `${r.chat_id}:${r.device_id}`;
      if (seen.has(key)) continue;
      seen.add(key);
      const dir = directories.get(r.chat_id) ?? {};
      directories.set(r.chat_id, dir);
      (dir[r.user_id] ??= []).push({ deviceId: r.device_id, signingKey: r.signing_key });
    }
    // Under the row locks just taken: the states at the rows' chat_version (a state stored under an
    // older chatDecider.stateVersion is rebuilt from the chat's events on its way in, EventStore.loadMany).
    const states = await this.states.current(tx, chats.map((c) => ({ chatId: c.chat_id, version: Number(c.chat_version) })));
    const byChat = new Map(chats.map((c) => [c.chat_id, { lastSeq: Number(c.last_seq), state: states.get(c.chat_id)! }]));

    const now = this.clock.now().toISOString();
    const outcomes: Outcome[] = [];
    const entries: Array<{ streamId: string; streamVersion: number; event: ChatEvent; metadata: EventMetadata }> = [];
    const taken = new Set<string>();
    const blobs: { chatIds: string[]; seqs: number[]; blobIds: string[] } = { chatIds: [], seqs: [], blobIds: [] };
    for (const p of batch) {
      const r = p.req;
      const key = `${r.deviceId}:${r.messageId}`;
      const stored = found.get(key);
      if (stored) {
        outcomes.push(stored.chat_id === r.chatId ? { ok: sent(stored) } : { err: messageIdTaken() });
        continue;
      }
      if (taken.has(key)) {
        outcomes.push({ later: true });
        continue;
      }
      try {
        const device = devices.get(r.deviceId);
        if (device && (device.status !== 'active' || device.user_id !== r.userId)) throw deviceRevoked();
        const chat = byChat.get(r.chatId);
        if (!chat) throw chatNotFound();
        const seq = chat.lastSeq + 1;
        const events = chatDecider.decide(
          {
            type: 'PostMessage',
            seq,
            messageId: r.messageId,
            senderUserId: r.userId,
            senderDeviceId: r.deviceId,
            envelope: r.envelope,
            wrappedKeys: r.wrappedKeys,
            directory: directories.get(r.chatId) ?? {},
            now,
          },
          chat.state,
        );
        chat.lastSeq = seq;
        taken.add(key);
        for (const event of events) entries.push({ streamId: messageLogStream(r.chatId), streamVersion: seq, event, metadata: p.metadata });
        for (const blobId of r.attachmentIds ?? []) {
          blobs.chatIds.push(r.chatId);
          blobs.seqs.push(seq);
          blobs.blobIds.push(blobId);
        }
        outcomes.push({ ok: { seq, createdAt: now, duplicate: false } });
      } catch (err) {
        outcomes.push({ err });
      }
    }
    // Only a batch with attachments costs this one more statement (and round trip).
    if (blobs.blobIds.length > 0) {
      await tx.query(MESSAGE_BLOBS_SQL, [`{${blobs.chatIds.join(',')}}`, `{${blobs.seqs.join(',')}}`, `{${blobs.blobIds.join(',')}}`]);
    }
    // The write carries the COMMIT (nothing to write: the transaction ends after, as usual).
    await this.store.appendOwned(tx, entries, { commit: true });
    return outcomes;
  }

  /** The stored messages of these (sender device, message id) pairs: one index probe each. */
  private stored(q: Sql, batch: Pending[]) {
    return q.query<StoredRow>(SEND_SQL.stored, this.storedParams(batch));
  }

  private storedParams(batch: Pending[]): [string, string] {
    return [`{${batch.map((p) => p.req.deviceId).join(',')}}`, `{${batch.map((p) => p.req.messageId).join(',')}}`];
  }
}

function sent(row: Pick<StoredRow, 'seq' | 'created_at'>): SendResult {
  return { seq: Number(row.seq), createdAt: iso(row.created_at), duplicate: true };
}

function messageIdTaken() {
  return failedPrecondition('message_id_taken', 'this device already used this message id in another chat');
}

function settle(p: Pending, o: Outcome): void {
  if ('ok' in o) p.resolve(o.ok);
  else if ('err' in o) p.reject(o.err);
}
