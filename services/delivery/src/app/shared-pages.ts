// Shared catch-up pages (issue 18, reconnect storm): the devices that catch up
// on the same group chat at about the same time are served by one read from
// chat (CatchUpMessages) per page instead of one ListMessages per device, and
// each message's frame is built once for all of them.
//
// A device asks for a page after its cursor; it joins an open batch of that
// chat whose cursors are within a page of its own (or opens one). A batch
// waits GATHER_MS for company, then its turn in the node's bounded queue of
// catch-up reads (Slots): it is sealed when the read starts, at most
// `maxDevices` devices. Each device gets the messages of the page that chat
// says are its, and where to read next. A failed read is tried again after
// 0.25, 0.5, 1 and 2 s (outside the queue), then given up (the connections
// close 4013); a batch chat refuses (a device no longer a member, revoked, not
// yet in chat's directory) is served device by device, each getting chat's
// own answer for itself.
import { AppError } from '@bil/runtime';
import type { Actor, ChatBackend, StoredMessage } from '../infra/backends.js';
import { storedFrame } from './backend-frames.js';
import type { PageMessage } from './sequencer.js';
import type { Slots } from './slots.js';
import { withWrappedKey } from '../domain/frames.js';

/** One device's view of a shared page. */
export interface SharedPage {
  /** The messages of the page this device gets, in seq order. */
  messages: PageMessage[];
  hasMore: boolean;
  /** The page covers the chat up to here: read the next page after it while `hasMore`. */
  throughSeq: number;
}

export interface SharedPagesSettings {
  /** Devices per read (CatchUpMessages takes up to 1,000). */
  maxDevices: number;
  /** Messages per page. */
  pageSize: number;
  /** Waits before each retry of a failed read; the read is given up after the last. */
  retryMs: readonly number[];
}

export const SHARED_PAGES_DEFAULTS: SharedPagesSettings = { maxDevices: 500, pageSize: 200, retryMs: [250, 500, 1000, 2000] };

/** How long a new batch waits for other devices of the chat before queueing for its read. */
const GATHER_MS = 5;
/** Failures of chat itself (down, slow, broken), tried again; any other answer is a refusal (about a device, or the request). */
const OUTAGES = new Set(['unavailable', 'deadline_exceeded', 'internal']);
const isOutage = (err: unknown): boolean => !(err instanceof AppError) || OUTAGES.has(err.kind);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Runs a read in the node's catch-up queue; an outage of chat (unavailable,
 * deadline, internal) is tried again after each of `retryMs` (the slot is
 * released while waiting), a refusal is not.
 */
export async function withRetries<T>(slots: Slots, retryMs: readonly number[], read: () => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await slots.run(read);
    } catch (err) {
      if (!isOutage(err) || attempt >= retryMs.length) throw err;
      await sleep(retryMs[attempt]!);
    }
  }
}

/** The device catching up, as its access token says. */
export type DeviceActor = Required<Pick<Actor, 'userId' | 'deviceId' | 'sessionId'>>;

interface Request {
  actor: DeviceActor;
  after: number;
  resolve(page: SharedPage): void;
  reject(err: unknown): void;
}

interface Batch {
  chatId: string;
  /** The cursor of the device that opened it: others join when within a page of it. */
  anchor: number;
  requests: Request[];
  sealed: boolean;
}

export class SharedPages {
  /** Batches still taking devices, per chat. */
  private readonly open = new Map<string, Batch[]>();

  constructor(
    private readonly chat: Pick<ChatBackend, 'catchUpMessages' | 'listMessagesAfter'>,
    private readonly slots: Slots,
    private readonly settings: SharedPagesSettings = SHARED_PAGES_DEFAULTS,
    /** Called once per read from chat (metrics, tests). */
    private readonly onRead: (kind: 'shared' | 'device') => void = () => undefined,
  ) {}

  /** The next page of a group chat after `after`, for one device. */
  read(chatId: string, actor: DeviceActor, after: number): Promise<SharedPage> {
    return new Promise<SharedPage>((resolve, reject) => {
      const batches = this.open.get(chatId) ?? [];
      let batch = batches.find((b) => Math.abs(b.anchor - after) < this.settings.pageSize);
      if (!batch) {
        batch = { chatId, anchor: after, requests: [], sealed: false };
        batches.push(batch);
        this.open.set(chatId, batches);
        const b = batch;
        setTimeout(() => void this.run(b), GATHER_MS);
      }
      batch.requests.push({ actor, after, resolve, reject });
      if (batch.requests.length >= this.settings.maxDevices) this.seal(batch);
    });
  }

  private seal(batch: Batch): void {
    if (batch.sealed) return;
    batch.sealed = true;
    const rest = this.open.get(batch.chatId)?.filter((b) => b !== batch) ?? [];
    if (rest.length > 0) this.open.set(batch.chatId, rest);
    else this.open.delete(batch.chatId);
  }

  private async run(batch: Batch): Promise<void> {
    const { chatId, requests } = batch;
    let page: Awaited<ReturnType<ChatBackend['catchUpMessages']>>;
    try {
      page = await withRetries(this.slots, this.settings.retryMs, () => {
        this.seal(batch); // devices that come from now on wait for the next read
        this.onRead('shared');
        const devices = requests.map((r) => ({ userId: r.actor.userId, deviceId: r.actor.deviceId, afterSeq: r.after }));
        return this.chat.catchUpMessages(chatId, devices, this.settings.pageSize);
      });
    } catch (err) {
      // Refused (a device revoked, unknown to chat, no longer a member): each device gets chat's answer for itself.
      if (!isOutage(err)) for (const r of requests) this.single(chatId, r);
      else for (const r of requests) r.reject(err);
      return;
    }
    const mine: PageMessage[][] = requests.map(() => []);
    for (const { message, recipients } of page.messages) {
      const frames = frameOnce(message);
      const seq = Number(message.seq);
      for (const { deviceIndex, wrappedKey } of recipients) {
        mine[deviceIndex]?.push({ seq, frame: () => frames.for(wrappedKey) });
      }
    }
    requests.forEach((r, i) => r.resolve({ messages: mine[i]!, hasMore: page.hasMore, throughSeq: page.throughSeq }));
  }

  /** One device's page through its own read (ListMessages), when chat refused the batch. */
  private single(chatId: string, r: Request): void {
    withRetries(this.slots, this.settings.retryMs, () => {
      this.onRead('device');
      return this.chat.listMessagesAfter(r.actor, chatId, r.after, this.settings.pageSize);
    }).then(
      (page) => {
        const messages = page.messages.map((m) => ({ seq: Number(m.seq), frame: () => storedFrame(m) }));
        r.resolve({ messages, hasMore: page.hasMore, throughSeq: messages.at(-1)?.seq ?? r.after });
      },
      (err: unknown) => r.reject(err),
    );
  }
}

/** A message's frame, built once: the same Buffer for every device without a key of its own, spliced per key otherwise. */
function frameOnce(m: StoredMessage): { for(wrappedKey: string): string | Buffer } {
  let text: string | undefined;
  let shared: Buffer | undefined;
  return {
    for(wrappedKey) {
      text ??= storedFrame({ ...m, wrappedKey: '' });
      if (wrappedKey) return withWrappedKey(text, wrappedKey);
      return (shared ??= Buffer.from(text));
    },
  };
}
