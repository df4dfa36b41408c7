// A delivery node: the registry of its sockets, presence, and routing. A
// frame for a set of users is routed with one presence lookup (one Redis
// round trip) and one NATS message per node that holds any of their devices
// (`<prefix>delivery.node.<node id>`, schema in docs/delivery.md); each node
// writes the frame, encoded once, to its local sockets.
//
// Size: just past 400 lines: it is the one ConnectionHost (what every socket
// asks of its node) besides the registry and routing; the catch-up sharing
// itself is shared-pages.ts.
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import { AppError, OutageLog, type Logger, type RevocationList, type VerifiedActor } from '@bil/runtime';
import type { WebSocket } from 'ws';
import { CloseCodes, errorFrame, presenceFrame, receiptFrame, typingFrame, withWrappedKey } from '../domain/frames.js';
import type { Actor, ChatBackend } from '../infra/backends.js';
import type { AckStore, MembershipCache, Routed } from '../infra/membership.js';
import type { DeviceLocation, Presence } from '../infra/presence.js';
import { Connection, type ConnectionHost, type ConnectionSettings } from './connection.js';
import { Slots } from './slots.js';
import type { LiveFrame } from './sequencer.js';
import { SHARED_PAGES_DEFAULTS, SharedPages, withRetries, type DeviceActor, type SharedPage } from './shared-pages.js';
import type { DeliveryCounter, DeliveryMetrics } from './metrics.js';

/** Node-to-node message on `delivery.node.<id>` (JSON; docs/delivery.md). */
export type NodeMessage =
  | {
      v: 1;
      kind: 'frames';
      /** Target devices on the receiving node. */
      devices: string[];
      /** The frame, encoded once. */
      frame: string;
      /** Personal chats: each device's own wrapped key, spliced into the frame. */
      keys?: Record<string, string>;
      chat_id?: string;
      seq?: number;
    }
  | { v: 1; kind: 'kick'; device_id: string; node: string };

export interface Outgoing {
  frame: string;
  keys?: Record<string, string>;
  chatId?: string;
  seq?: number;
}

export interface HubDeps {
  nodeId: string;
  nc: NatsConnection;
  prefix: string;
  presence: Presence;
  membership: MembershipCache;
  acks: AckStore;
  chat: ChatBackend;
  revocations: RevocationList;
  verify: (token: string) => Promise<VerifiedActor>;
  settings: ConnectionSettings & { heartbeatMs: number; revocationCheckMs: number; catchUpConcurrency: number };
  metrics: DeliveryMetrics;
  logger: Logger;
}

/** Gap fills (calls to chat on behalf of sockets) one node runs at once. */
const GAP_FILLS_AT_ONCE = 16;

export class Hub implements ConnectionHost {
  private readonly fills = new Slots(GAP_FILLS_AT_ONCE);
  /** Catch-up reads from chat (a page of chats or of history each), DELIVERY_CATCHUP_CONCURRENCY at once. */
  private readonly catchUps: Slots;
  /** Group chats' catch-up pages, one read from chat for the devices catching up together. */
  private readonly shared: SharedPages;
  private readonly byDevice = new Map<string, Connection>();
  private readonly byUser = new Map<string, Set<Connection>>();
  private readonly presenceWatchers = new Map<string, Set<Connection>>();
  private readonly subs: Subscription[] = [];
  private readonly timers: NodeJS.Timeout[] = [];
  readonly chat: ChatBackend;
  private readonly presenceOutage: OutageLog;

  constructor(private readonly deps: HubDeps) {
    this.chat = deps.chat;
    this.catchUps = new Slots(deps.settings.catchUpConcurrency);
    this.shared = new SharedPages(deps.chat, this.catchUps, SHARED_PAGES_DEFAULTS, (kind) => deps.metrics.catchUpReads.inc({ kind }));
    this.presenceOutage = new OutageLog(deps.logger, 'presence heartbeat');
  }

  get nodeId(): string {
    return this.deps.nodeId;
  }

  nodeSubject(nodeId: string): string {
    return `${this.deps.prefix}delivery.node.${nodeId}`;
  }

  private get presenceSubject(): string {
    return `${this.deps.prefix}delivery.presence`;
  }

  start(): void {
    const { nc, prefix } = this.deps;
    this.subs.push(
      nc.subscribe(this.nodeSubject(this.nodeId), {
        callback: (err, msg) => {
          if (err) return;
          try {
            this.onNodeMessage(msg.json<NodeMessage>());
          } catch (e) {
            this.deps.logger.warn({ err: (e as Error).message }, 'bad node message');
          }
        },
      }),
      nc.subscribe(this.presenceSubject, {
        callback: (err, msg) => {
          if (err) return;
          const { user_id: userId, online } = msg.json<{ user_id: string; online: boolean }>();
          const watchers = this.presenceWatchers.get(userId);
          if (!watchers) return;
          const data = presenceFrame(userId, online);
          for (const c of watchers) c.deliver({ data });
        },
      }),
      // Identity's events reach every node as plain NATS messages too (the
      // subject is also captured by the IDENTITY stream): revocations act at once.
      nc.subscribe(`${prefix}identity.v1.device.revoked`, {
        callback: (err, msg) => {
          if (err) return;
          const { deviceId } = msg.json<{ deviceId?: string }>();
          if (deviceId) this.byDevice.get(deviceId)?.close('revoked');
        },
      }),
      nc.subscribe(`${prefix}identity.v1.user.deleted`, {
        callback: (err, msg) => {
          if (err) return;
          const { userId } = msg.json<{ userId?: string }>();
          for (const c of [...(this.byUser.get(userId ?? '') ?? [])]) c.close('revoked');
        },
      }),
    );
    void this.watchNats();
    this.timers.push(
      setInterval(() => void this.heartbeat(), this.deps.settings.heartbeatMs),
      setInterval(() => void this.checkRevocations(), this.deps.settings.revocationCheckMs),
      // One timer pings every socket of the node (a timer per socket cost memory per idle socket).
      setInterval(() => {
        for (const c of this.byDevice.values()) c.pingTick();
      }, this.deps.settings.pingIntervalMs),
    );
  }

  /**
   * Frames routed between nodes are plain NATS messages: while this node was
   * cut off from NATS (or before its subscriptions were back on a restarted
   * server) the ones sent to it are gone. Once the connection is back and the
   * server has our subscriptions (flush), every live socket reads what it
   * missed from chat (Connection.resync), through the node's gap-fill slots.
   */
  private async watchNats(): Promise<void> {
    const { nc, logger } = this.deps;
    for await (const s of nc.status()) {
      if (s.type !== 'reconnect') continue;
      try {
        await nc.flush();
      } catch {
        continue; // gone again; the next reconnect resyncs
      }
      logger.info({ devices: this.byDevice.size }, 'NATS is back: live sockets read what they may have missed');
      for (const c of this.byDevice.values()) c.resync();
    }
  }

  /** Closes every socket (1001: the client reconnects elsewhere and catches up). */
  async stop(): Promise<void> {
    for (const t of this.timers) clearInterval(t);
    for (const s of this.subs) s.unsubscribe();
    const all = [...this.byDevice.values()];
    for (const c of all) c.close('goingAway');
    await Promise.allSettled(all.map((c) => this.deps.presence.unregister(c.userId, c.deviceId)));
  }

  get size(): number {
    return this.byDevice.size;
  }

  /** Registers an authenticated socket: presence first, so no live frame is missed, then hello. */
  async accept(ws: WebSocket, actor: VerifiedActor): Promise<void> {
    const conn = new Connection(ws, actor, this, this.deps.settings, this.deps.logger);
    const previous = this.byDevice.get(actor.deviceId);
    if (previous) {
      this.forget(previous);
      previous.close('replaced');
    }
    this.byDevice.set(actor.deviceId, conn);
    let set = this.byUser.get(actor.userId);
    if (!set) this.byUser.set(actor.userId, (set = new Set()));
    set.add(conn);
    this.deps.metrics.connections.set(this.byDevice.size);
    try {
      const oldNode = await this.deps.presence.register(actor.userId, actor.deviceId);
      if (oldNode) this.publish(oldNode, { v: 1, kind: 'kick', device_id: actor.deviceId, node: this.nodeId });
    } catch (err) {
      this.deps.logger.warn({ err: (err as Error).message }, 'presence unavailable');
      this.forget(conn);
      ws.close(CloseCodes.unavailable, 'backend_unavailable');
      return;
    }
    conn.start();
    this.deps.nc.publish(this.presenceSubject, JSON.stringify({ user_id: actor.userId, online: true }));
  }

  private forget(conn: Connection): boolean {
    if (this.byDevice.get(conn.deviceId) !== conn) return false;
    this.byDevice.delete(conn.deviceId);
    const set = this.byUser.get(conn.userId);
    set?.delete(conn);
    if (set?.size === 0) this.byUser.delete(conn.userId);
    for (const [userId, watchers] of this.presenceWatchers) {
      watchers.delete(conn);
      if (watchers.size === 0) this.presenceWatchers.delete(userId);
    }
    this.deps.metrics.connections.set(this.byDevice.size);
    return true;
  }

  closed(conn: Connection): void {
    if (!this.forget(conn)) return;
    void (async () => {
      try {
        await this.deps.presence.unregister(conn.userId, conn.deviceId);
        const live = await this.deps.presence.locate([conn.userId]);
        if (!live.has(conn.userId)) this.deps.nc.publish(this.presenceSubject, JSON.stringify({ user_id: conn.userId, online: false }));
      } catch {
        // The entry expires by itself.
      }
    })();
  }

  private publish(nodeId: string, msg: NodeMessage): void {
    if (nodeId === this.nodeId) this.onNodeMessage(msg);
    else this.deps.nc.publish(this.nodeSubject(nodeId), JSON.stringify(msg));
  }

  /** Routes a frame to every connected device of `userIds` (minus `exceptDevice`). */
  async dispatch(userIds: Iterable<string>, out: Outgoing, exceptDevice?: string): Promise<number> {
    return this.dispatchLocated(await this.deps.presence.locate([...new Set(userIds)]), out, exceptDevice);
  }

  /**
   * Routes a chat's message frame to every connected device of its members
   * (as of the membership cache, fetched from chat as `actor` on a miss):
   * one Redis round trip for the members and their presence together.
   * Returns the members and where their devices are live (push uses both).
   */
  async dispatchToChat(chatId: string, actor: Actor, out: Outgoing): Promise<Routed & { delivered: number }> {
    const routed = await this.deps.membership.route(chatId, actor, this.deps.presence);
    return { ...routed, delivered: this.dispatchLocated(routed.located, out) };
  }

  private dispatchLocated(located: Map<string, DeviceLocation[]>, out: Outgoing, exceptDevice?: string): number {
    const byNode = new Map<string, string[]>();
    for (const devices of located.values()) {
      for (const d of devices) {
        if (d.deviceId === exceptDevice) continue;
        let list = byNode.get(d.nodeId);
        if (!list) byNode.set(d.nodeId, (list = []));
        list.push(d.deviceId);
      }
    }
    let n = 0;
    for (const [nodeId, devices] of byNode) {
      n += devices.length;
      const keys = out.keys ? pick(out.keys, devices) : undefined;
      this.publish(nodeId, { v: 1, kind: 'frames', devices, frame: out.frame, keys, chat_id: out.chatId, seq: out.seq });
    }
    this.deps.metrics.nodeMessages.inc(byNode.size);
    return n;
  }

  /** Routes a frame to one device of a user, on whichever node holds it; false when it is offline. */
  async dispatchToDevice(userId: string, deviceId: string, out: Outgoing): Promise<boolean> {
    const located = await this.deps.presence.locate([userId]);
    const at = located.get(userId)?.find((d) => d.deviceId === deviceId);
    if (!at) return false;
    this.publish(at.nodeId, { v: 1, kind: 'frames', devices: [deviceId], frame: out.frame });
    this.deps.metrics.nodeMessages.inc(1);
    return true;
  }

  private onNodeMessage(msg: NodeMessage): void {
    if (msg.kind === 'kick') {
      const c = this.byDevice.get(msg.device_id);
      if (c) {
        this.forget(c);
        c.close('replaced');
      }
      return;
    }
    if (msg.kind !== 'frames' || !Array.isArray(msg.devices)) return;
    // Without per-device keys every socket gets the same bytes, encoded once here, in one frame object.
    const shared: LiveFrame | undefined = msg.keys ? undefined : { data: Buffer.from(msg.frame), chatId: msg.chat_id, seq: msg.seq };
    for (const deviceId of msg.devices) {
      const c = this.byDevice.get(deviceId);
      if (!c) continue;
      c.deliver(shared ?? { data: withWrappedKey(msg.frame, msg.keys?.[deviceId]), chatId: msg.chat_id, seq: msg.seq });
    }
  }

  private async heartbeat(): Promise<void> {
    try {
      await this.deps.presence.heartbeat([...this.byDevice.values()].map((c) => ({ userId: c.userId, deviceId: c.deviceId })));
      this.presenceOutage.ok();
    } catch (err) {
      this.presenceOutage.failed(err);
    }
  }

  /**
   * Writes this node's devices back into presence at once: called when the
   * Redis connection is ready again (a restarted Redis has lost them), so
   * fan-out finds them without waiting for the next heartbeat. The heartbeat
   * script re-creates a missing entry and leaves one that names another node.
   */
  async reregister(): Promise<void> {
    if (this.byDevice.size === 0) return;
    await this.heartbeat();
    this.deps.logger.info({ devices: this.byDevice.size }, 'presence re-registered after reconnecting to Redis');
  }

  /** Logout and revocations that came by no event: the revocation list is the truth. */
  private async checkRevocations(): Promise<void> {
    const all = [...this.byDevice.values()];
    for (let i = 0; i < all.length; i += 500) {
      const batch = all.slice(i, i + 500);
      const revoked = await Promise.all(
        batch.map((c) =>
          this.deps.revocations.isRevoked({ sub: c.actor.userId, did: c.actor.deviceId, sid: c.actor.sessionId }).catch(() => false),
        ),
      );
      batch.forEach((c, j) => revoked[j] && c.close('revoked'));
    }
  }

  // ConnectionHost

  verify(token: string): Promise<VerifiedActor> {
    return this.deps.verify(token);
  }

  storedCursors(deviceId: string): Promise<Record<string, number>> {
    return this.deps.acks.cursors(deviceId);
  }

  /** Stores an ack of a chat the device's user is a member of; any other is chat_not_found, and nothing is stored. */
  async ack(conn: Connection, chatId: string, seq: number): Promise<void> {
    // One round trip while the chat's member list is cached (checked and stored by one script).
    const r = await this.deps.acks.ackIfMember(conn.deviceId, conn.userId, chatId, seq);
    if (r === 'stored') return;
    const member = r === 'unknown' && (await this.deps.membership.isMember(chatId, { userId: conn.userId, deviceId: conn.deviceId, sessionId: conn.actor.sessionId }));
    if (!member) throw new AppError('not_found', 'chat_not_found', 'no such chat');
    await this.deps.acks.ack(conn.deviceId, chatId, seq);
  }

  /** The chat's members if the connection's user is one; else chat_not_found (no oracle). */
  private async membersFor(conn: Connection, chatId: string): Promise<string[]> {
    const m = await this.deps.membership.get(chatId, { userId: conn.userId, deviceId: conn.deviceId, sessionId: conn.actor.sessionId });
    if (!m.members.has(conn.userId)) throw new AppError('not_found', 'chat_not_found', 'no such chat');
    return [...m.members.keys()];
  }

  async typing(conn: Connection, chatId: string, active: boolean): Promise<void> {
    const members = await this.membersFor(conn, chatId);
    await this.dispatch(members, { frame: typingFrame({ chatId, userId: conn.userId, deviceId: conn.deviceId, active }) }, conn.deviceId);
  }

  async read(conn: Connection, chatId: string, seq: number): Promise<void> {
    const members = await this.membersFor(conn, chatId);
    const frame = receiptFrame({ chatId, userId: conn.userId, deviceId: conn.deviceId, seq, durable: false });
    await this.dispatch(members, { frame }, conn.deviceId);
  }

  /** Opt-in presence of users who share a chat with the caller. */
  async subscribePresence(conn: Connection, userIds: string[], id?: string): Promise<void> {
    const contacts = new Set<string>();
    for (const chatId of conn.chats) {
      const m = await this.deps.membership.get(chatId, { userId: conn.userId, deviceId: conn.deviceId, sessionId: conn.actor.sessionId }).catch(() => undefined);
      if (m?.members.has(conn.userId)) for (const u of m.members.keys()) contacts.add(u);
    }
    const allowed = userIds.filter((u) => contacts.has(u) && u !== conn.userId);
    const located = await this.deps.presence.locate(allowed);
    for (const u of allowed) {
      let set = this.presenceWatchers.get(u);
      if (!set) this.presenceWatchers.set(u, (set = new Set()));
      set.add(conn);
      conn.deliver({ data: presenceFrame(u, located.has(u)) });
    }
    const refused = userIds.filter((u) => !allowed.includes(u));
    if (refused.length > 0) {
      conn.deliver({ data: errorFrame('presence_not_allowed', 'presence is shared only between members of a common chat', id, { user_ids: refused }) });
    }
  }

  gapFillSlot(fill: () => Promise<void>): Promise<void> {
    return this.fills.run(fill);
  }

  catchUpSlot<T>(read: () => Promise<T>): Promise<T> {
    return withRetries(this.catchUps, SHARED_PAGES_DEFAULTS.retryMs, () => {
      this.deps.metrics.catchUpReads.inc({ kind: 'device' });
      return read();
    });
  }

  sharedPage(chatId: string, actor: DeviceActor, after: number): Promise<SharedPage> {
    return this.shared.read(chatId, actor, after);
  }

  count(metric: DeliveryCounter, n = 1): void {
    this.deps.metrics.counters[metric].inc(n);
  }
}

function pick(keys: Record<string, string>, devices: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const d of devices) if (keys[d] !== undefined) out[d] = keys[d];
  return out;
}
