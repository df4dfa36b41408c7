// Chat membership cached in Redis and shared by every delivery node, kept
// current from chat's own events (created, member added/removed, deleted) by
// whichever node handles them. On a miss it is fetched from chat (GetChat)
// as a device known to be a member (the sender of the event at hand), so the
// cache never widens what chat itself would answer.
// Hash `members:<chat id>`: field = user id, value = the seq they joined at;
// the field `:type` holds `personal` or `group`, the field `:v` a token that
// every write of the hash replaces (a version).
//
// Each node also keeps the lists it used in memory with their token. A
// message's fan-out then needs ONE round trip (route): the script checks the
// token and, while it still matches, answers the presence of the members
// the node already knows; only a changed (or absent) list costs another.
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { WeightedLru } from '@bil/runtime';
import type { Actor, ChatBackend } from './backends.js';
import { LOCATE_BATCH, presenceKey, type DeviceLocation, type Presence } from './presence.js';

const TYPE_FIELD = ':type';
const VERSION_FIELD = ':v';

export interface Membership {
  type: 'personal' | 'group';
  /** User id → the chat's last seq when they joined. */
  members: Map<string, number>;
}

// Applies a change only to a list that is cached: an absent list is fetched
// whole on the next miss, never built from a partial update.
// ARGV: add|remove, user id, joined seq, ttl ms, the new version token.
const UPDATE_IF_CACHED = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if ARGV[1] == 'add' then redis.call('HSET', KEYS[1], ARGV[2], ARGV[3]) else redis.call('HDEL', KEYS[1], ARGV[2]) end
redis.call('HSET', KEYS[1], '${VERSION_FIELD}', ARGV[5])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1
`;

// KEYS[1] the members hash, KEYS[2..] the presence hashes of the members the
// caller holds for version ARGV[1]. {0}: no list (fetch it); {1, hash}: the
// list changed, here it is; {2, presence…}: still current, with presence.
const ROUTE = `
local v = redis.call('HGET', KEYS[1], '${VERSION_FIELD}')
if not v then return {0} end
if v ~= ARGV[1] then return {1, redis.call('HGETALL', KEYS[1])} end
local out = {2}
for i = 2, #KEYS do out[i] = redis.call('HGETALL', KEYS[i]) end
return out
`;

type ScriptRedis = Redis & {
  membershipUpdate(key: string, ...args: (string | number)[]): Promise<number>;
  membershipRoute(numKeys: number, ...args: string[]): Promise<[0] | [1, string[]] | [2, ...string[][]]>;
};

/** A list this node used: its version token, the members in order, and route's keys (the members hash, then each member's presence hash). */
interface Known {
  version: string;
  membership: Membership;
  users: string[];
  keys: string[];
}

/** A chat's members and where their devices are connected. */
export interface Routed {
  membership: Membership;
  located: Map<string, DeviceLocation[]>;
}

export class MembershipCache {
  private readonly redis: ScriptRedis;
  /** The lists this node used, with their version token and route's keys (bounded by total members). */
  private readonly known = new WeightedLru<string, Known>(200_000);

  constructor(
    redis: Redis,
    private readonly chat: Pick<ChatBackend, 'getMembers'>,
    private readonly ttlMs: number,
  ) {
    redis.defineCommand('membershipUpdate', { numberOfKeys: 1, lua: UPDATE_IF_CACHED });
    redis.defineCommand('membershipRoute', { lua: ROUTE });
    this.redis = redis as ScriptRedis;
  }

  /**
   * The chat's members (from the cache, or on a miss from chat as `actor`)
   * and their live devices: one round trip while this node's copy of the
   * list is current.
   */
  async route(chatId: string, actor: Actor, presence: Pick<Presence, 'live' | 'locate'>): Promise<Routed> {
    let known = this.known.get(chatId);
    for (let attempt = 0; attempt < 3; attempt++) {
      if (known && known.users.length > LOCATE_BATCH) break; // a list this long: its presence in batches (locate)
      const keys = known?.keys ?? [this.key(chatId)];
      const res = await this.redis.membershipRoute(keys.length, ...keys, known?.version ?? '');
      if (res[0] === 2 && known) return { membership: known.membership, located: presence.live(known.users, res.slice(1) as string[][]) };
      if (res[0] === 1) {
        known = this.remember(chatId, res[1]);
        continue;
      }
      const fetched = await this.chat.getMembers(actor, chatId);
      known = await this.write(chatId, fetched);
    }
    const membership = known?.membership ?? (await this.get(chatId, actor));
    return { membership, located: await presence.locate([...membership.members.keys()]) };
  }

  private remember(chatId: string, flat: string[]): Known {
    const hash: Record<string, string> = {};
    for (let i = 0; i + 1 < flat.length; i += 2) hash[flat[i]!] = flat[i + 1]!;
    return this.keep(chatId, hash[VERSION_FIELD] ?? '', decode(hash));
  }

  /** Keeps a list with what route() sends for it, computed once per version rather than per message. */
  private keep(chatId: string, version: string, membership: Membership): Known {
    const users = [...membership.members.keys()];
    const entry: Known = { version, membership, users, keys: [this.key(chatId), ...users.map(presenceKey)] };
    this.known.set(chatId, entry, 1 + users.length);
    return entry;
  }

  private key(chatId: string): string {
    return membersKey(chatId);
  }

  /** The chat's members, from the cache or (on a miss) from chat as `actor`. */
  async get(chatId: string, actor: Actor): Promise<Membership> {
    const hash = await this.redis.hgetall(this.key(chatId));
    if (hash[TYPE_FIELD]) return decode(hash);
    const fetched = await this.chat.getMembers(actor, chatId);
    await this.put(chatId, fetched);
    return fetched;
  }

  /** The cached members, without a fallback (undefined on a miss). */
  async peek(chatId: string): Promise<Membership | undefined> {
    const hash = await this.redis.hgetall(this.key(chatId));
    return hash[TYPE_FIELD] ? decode(hash) : undefined;
  }

  /** Whether `actor`'s user is a member: one round trip on a cached list; on a miss the list is fetched from chat as `actor`. */
  async isMember(chatId: string, actor: Actor & { userId: string }): Promise<boolean> {
    const [cached, member] = await this.redis.hmget(this.key(chatId), TYPE_FIELD, actor.userId);
    if (cached) return member !== null;
    return (await this.get(chatId, actor)).members.has(actor.userId);
  }

  /** Stores the whole list under a new version token; returns the token. */
  async put(chatId: string, m: Membership): Promise<string> {
    return (await this.write(chatId, m)).version;
  }

  private async write(chatId: string, m: Membership): Promise<Known> {
    const key = this.key(chatId);
    const version = randomUUID();
    const fields: string[] = [TYPE_FIELD, m.type, VERSION_FIELD, version];
    for (const [u, seq] of m.members) fields.push(u, String(seq));
    await this.redis.multi().del(key).hset(key, ...fields).pexpire(key, this.ttlMs).exec();
    return this.keep(chatId, version, m);
  }

  async added(chatId: string, userId: string, joinedSeq: number): Promise<void> {
    await this.redis.membershipUpdate(this.key(chatId), 'add', userId, String(joinedSeq), this.ttlMs, randomUUID());
  }

  async removed(chatId: string, userId: string): Promise<void> {
    await this.redis.membershipUpdate(this.key(chatId), 'remove', userId, '', this.ttlMs, randomUUID());
  }

  async deleted(chatId: string): Promise<void> {
    this.known.delete(chatId);
    await this.redis.del(this.key(chatId));
  }
}

/** A chat's cached membership hash. */
export function membersKey(chatId: string): string {
  return `members:${chatId}`;
}

function decode(hash: Record<string, string>): Membership {
  const members = new Map<string, number>();
  for (const [k, v] of Object.entries(hash)) if (k !== TYPE_FIELD && k !== VERSION_FIELD) members.set(k, Number(v));
  return { type: hash[TYPE_FIELD] === 'group' ? 'group' : 'personal', members };
}

/**
 * A device's acknowledged position per chat (`acks:<device id>`), moved only
 * forwards. Catch-up starts there for every chat the device sent no cursor for.
 */
// KEYS[1] the device's acks, KEYS[2] the chat's cached members; ARGV: chat,
// seq, ttl s, user. -1: the list is not cached (ask chat, then ackMax);
// 0: the user is not a member (nothing stored); 1: stored (forwards only).
const ACK_IF_MEMBER = `
if not redis.call('HGET', KEYS[2], '${TYPE_FIELD}') then return -1 end
if not redis.call('HGET', KEYS[2], ARGV[4]) then return 0 end
local cur = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '-1')
if tonumber(ARGV[2]) > cur then redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end
redis.call('EXPIRE', KEYS[1], ARGV[3])
return 1
`;

export class AckStore {
  private readonly redis: Redis & {
    ackMax(key: string, ...args: (string | number)[]): Promise<number>;
    ackIfMember(acksKey: string, membersKey: string, ...args: (string | number)[]): Promise<number>;
  };

  constructor(
    redis: Redis,
    private readonly ttlSeconds: number,
  ) {
    redis.defineCommand('ackMax', {
      numberOfKeys: 1,
      lua: `local cur = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '-1')
if tonumber(ARGV[2]) > cur then redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end
redis.call('EXPIRE', KEYS[1], ARGV[3])
return 1`,
    });
    redis.defineCommand('ackIfMember', { numberOfKeys: 2, lua: ACK_IF_MEMBER });
    this.redis = redis as AckStore['redis'];
  }

  async ack(deviceId: string, chatId: string, seq: number): Promise<void> {
    await this.redis.ackMax(`acks:${deviceId}`, chatId, seq, this.ttlSeconds);
  }

  /**
   * Stores the ack if the cached member list has `userId` (one round trip):
   * 'stored', 'not_member', or 'unknown' when the list is not cached (the
   * caller asks chat, then calls ack()).
   */
  async ackIfMember(deviceId: string, userId: string, chatId: string, seq: number): Promise<'stored' | 'not_member' | 'unknown'> {
    const r = await this.redis.ackIfMember(`acks:${deviceId}`, membersKey(chatId), chatId, seq, this.ttlSeconds, userId);
    return r === 1 ? 'stored' : r === 0 ? 'not_member' : 'unknown';
  }

  async cursors(deviceId: string): Promise<Record<string, number>> {
    const hash = await this.redis.hgetall(`acks:${deviceId}`);
    const out: Record<string, number> = {};
    for (const [k, v] of Object.entries(hash)) out[k] = Number(v);
    return out;
  }
}
