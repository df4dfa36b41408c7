// Disappearing-message timers from signed data only (docs/protocol.md
// "Disappearing messages", docs/sdk.md "Disappearing messages"): a personal
// chat's from the statement one of its two people signed (verified under a
// device certified by their pinned identity key, and pinned here so that an
// older one replayed later is noticed), a group's from the metadata of its
// verified head record. The server's `disappearing_ms` is only compared with
// it: a difference is an alert, never the value shown.
import { isDisappearingMs, parseChatTimer, signChatTimer, verifyChatTimer, type ChatTimerPayload, type SignedChatTimer } from '@bil/crypto';
import type { ChatJson } from '../wire.js';
import type { DeviceState } from './device-state.js';
import type { Directory } from './directory.js';
import type { GroupState, GroupStates } from './group-state.js';

/**
 * Why a chat's timer needs the user's attention:
 * - `server_differs`: the server enforces another timer than the verified one
 *   (it deletes earlier or later than the people chose);
 * - `statement_invalid`: the server returned a statement that doesn't verify;
 * - `statement_replayed`: it returned an older statement than one this device
 *   verified before (or another one of the same version);
 * - `statement_missing`: it returned none although this device verified one.
 */
export type TimerAlertReason = 'server_differs' | 'statement_invalid' | 'statement_replayed' | 'statement_missing';

/** A chat's disappearing-message timer as this device verified it. */
export interface ChatTimer {
  /** The timer to apply, in ms (0 = off): from the verified statement or record; the pinned one when the server's fails; 0 when nothing was signed. */
  readonly ms: number;
  /** `ms` comes from a signed statement or group record this device verified (false: nothing signed, or the group's head can't be opened here). */
  readonly verified: boolean;
  /** What the server says it enforces (unsigned). */
  readonly serverMs: number;
  /** `serverMs` differs from `ms`. */
  readonly mismatch: boolean;
  /** What is wrong, if anything. */
  readonly alert: TimerAlertReason | null;
}

/** The `timer-alert` event (live client and `client.on`): a chat's timer needs attention. */
export interface TimerAlertEvent {
  readonly chatId: string;
  readonly reason: TimerAlertReason;
  readonly ms: number;
  readonly serverMs: number;
}

export interface ChatTimersDeps {
  now(): number;
  /** Reports an alert (the client's `timer-alert` event). */
  alert(event: TimerAlertEvent): void;
}

export class ChatTimers {
  /** Per chat, the verified timer last seen and since when it applies (for filtering messages). */
  readonly #known = new Map<string, { ms: number; since: number }>();
  /** Per chat, the alert last reported (reported again only when it changes). */
  readonly #alerted = new Map<string, string>();

  constructor(
    private readonly deps: ChatTimersDeps,
    private readonly device: DeviceState,
    private readonly directory: Directory,
    private readonly groups: GroupStates,
  ) {}

  /** The verified timer last seen for a chat (undefined: not looked at in this run). */
  known(chatId: string): number | undefined {
    return this.#known.get(chatId)?.ms;
  }

  /** A personal chat's timer from the statement the server returned, checked against the pinned one (pins a newer one). */
  async personal(c: ChatJson, members: readonly [string, string]): Promise<ChatTimer> {
    await this.device.me();
    const pinned = this.device.state.timers?.[c.chat_id];
    let current: ChatTimerPayload | undefined;
    let alert: TimerAlertReason | null = null;
    const statement = (c as { timer_statement?: unknown }).timer_statement;
    if (statement !== undefined) {
      const p = await this.#verify(statement, c.chat_id, members);
      if (!p) alert = 'statement_invalid';
      else if (pinned && (p.version < pinned.payload.version || (p.version === pinned.payload.version && (statement as SignedChatTimer).signature !== pinned.signature))) {
        alert = 'statement_replayed';
      } else {
        current = p;
        if (!pinned || p.version > pinned.payload.version) await this.#pin(c.chat_id, statement as SignedChatTimer);
      }
    } else if (pinned) alert = 'statement_missing';
    current ??= pinned?.payload;
    return this.#settle(c.chat_id, current?.disappearing_ms ?? 0, current?.created_at ?? 0, current !== undefined, c.disappearing_ms, alert);
  }

  /** A group's timer from the metadata of its verified head record (synced first). */
  async group(c: ChatJson): Promise<ChatTimer> {
    let metadata;
    let since = 0;
    try {
      let group = await this.groups.get(c.chat_id);
      if (c.epoch > group.chain.head.epoch) group = await this.groups.get(c.chat_id, true);
      metadata = await this.groups.metadata(group);
      since = await this.#groupSince(group, metadata?.disappearing_ms ?? 0);
    } catch {
      metadata = undefined;
    }
    const ms = metadata?.disappearing_ms ?? 0;
    return this.#settle(c.chat_id, ms, since, metadata !== undefined && metadata !== null, c.disappearing_ms, null);
  }

  /**
   * When a group's current timer was set: the `created_at` of the earliest
   * record in the run of verified records, back from the head, whose
   * metadata carries the same timer (a rotation carries it over; the record
   * that changed it starts the run). A record this device can't open ends
   * the run.
   */
  async #groupSince(group: GroupState, ms: number): Promise<number> {
    const epochs = group.chain.epochs;
    let since = group.chain.head.record.payload.created_at;
    if (ms === 0) return since;
    for (let e = group.chain.head.epoch - 1; e >= 1; e--) {
      const m = await this.groups.metadata(group, e);
      if (!m || (m.disappearing_ms ?? 0) !== ms) break;
      since = epochs[e - 1]!.record.payload.created_at;
    }
    return since;
  }

  /**
   * Signs this device's statement for a personal chat: version one above the
   * highest this device verified or the server shows (a stale one is refused
   * by the server, 409 `timer_statement_stale`).
   */
  async sign(chatId: string, ms: number, serverStatement: unknown): Promise<SignedChatTimer> {
    const me = await this.device.me();
    let shown = 0;
    try {
      if (serverStatement !== undefined) shown = parseChatTimer(serverStatement).version;
    } catch {
      shown = 0;
    }
    const version = Math.max(this.device.state.timers?.[chatId]?.payload.version ?? 0, shown) + 1;
    return signChatTimer({ chatId, disappearingMs: ms, version, device: me, createdAt: this.deps.now() });
  }

  /**
   * True when a message sent while its chat's verified timer was on has
   * outlived it (hidden even if the server still returns it). As in other
   * messengers the timer applies from when it was set: messages sent before
   * keep the lifetime they were sent with, which the server enforces from the
   * `expires_at` it stamped.
   */
  expired(chatId: string, sentAt: number): boolean {
    const t = this.#known.get(chatId);
    if (!t || t.ms === 0 || !Number.isFinite(sentAt) || sentAt < t.since) return false;
    return sentAt + t.ms <= this.deps.now();
  }

  async #verify(statement: unknown, chatId: string, members: readonly [string, string]): Promise<ChatTimerPayload | undefined> {
    try {
      const p = parseChatTimer(statement);
      if (!members.includes(p.set_by_user_id)) return undefined;
      const devices = await this.directory.verified(p.set_by_user_id);
      const listed = devices.some((d) => d.deviceId === p.set_by_device_id) ? devices : await this.directory.verified(p.set_by_user_id, true);
      return await verifyChatTimer({ statement, chatId, members, devices: listed });
    } catch {
      return undefined;
    }
  }

  async #pin(chatId: string, statement: SignedChatTimer): Promise<void> {
    await this.device.save({ timers: { ...this.device.state.timers, [chatId]: { payload: statement.payload, signature: statement.signature } } });
  }

  #settle(chatId: string, ms: number, since: number, verified: boolean, serverMs: number, problem: TimerAlertReason | null): ChatTimer {
    const server = isDisappearingMs(serverMs) ? serverMs : -1;
    const mismatch = server !== ms;
    const alert = problem ?? (mismatch ? 'server_differs' : null);
    this.#known.set(chatId, { ms, since });
    const key = alert ? `${alert}:${ms}:${serverMs}` : '';
    if (alert && this.#alerted.get(chatId) !== key) this.deps.alert({ chatId, reason: alert, ms, serverMs });
    this.#alerted.set(chatId, key);
    return { ms, verified, serverMs, mismatch, alert };
  }
}
