// Chat membership cached in Redis and shared by every delivery node, kept
// current from chat's own events (created, member added/removed, deleted) by
// whichever node handles them. On a miss it is fetched from chat (GetChat)
// as a device known to be a member (the sender of the event at hand), so the
// cache never widens what chat itself would answer.
// Hash `members:<chat id>`: field = user id, value = the seq they joined at;
// the field `:type` holds `personal` or `group`.
import type { Redis } from 'ioredis';
import type { Actor, ChatBackend } from './backends.js';

const TYPE_FIELD = ':type';

export interface Membership {
  type: 'personal' | 'group';
  /** User id → the chat's last seq when they joined. */
  members: Map<string, number>;
}

// Applies a change only to a list that is cached: an absent list is fetched
// whole on the next miss, never built from a partial update.
const UPDATE_IF_CACHED = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if ARGV[1] == 'add' then redis.call('HSET', KEYS[1], ARGV[2], ARGV[3]) else redis.call('HDEL', KEYS[1], ARGV[2]) end
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1
`;

type ScriptRedis = Redis & { membershipUpdate(key: string, ...args: (string | number)[]): Promise<number> };

export class MembershipCache {
  private readonly redis: ScriptRedis;

  constructor(
    redis: Redis,
    private readonly chat: Pick<ChatBackend, 'getMembers'>,
    private readonly ttlMs: number,
  ) {
    redis.defineCommand('membershipUpdate', { numberOfKeys: 1, lua: UPDATE_IF_CACHED });
    this.redis = redis as ScriptRedis;
  }

  private key(chatId: string): string {
    return `members:${chatId}`;
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

  async put(chatId: string, m: Membership): Promise<void> {
    const key = this.key(chatId);
    const fields: string[] = [TYPE_FIELD, m.type];
    for (const [u, seq] of m.members) fields.push(u, String(seq));
    await this.redis.multi().del(key).hset(key, ...fields).pexpire(key, this.ttlMs).exec();
  }

  async added(chatId: string, userId: string, joinedSeq: number): Promise<void> {
    await this.redis.membershipUpdate(this.key(chatId), 'add', userId, String(joinedSeq), this.ttlMs);
  }

  async removed(chatId: string, userId: string): Promise<void> {
    await this.redis.membershipUpdate(this.key(chatId), 'remove', userId, '', this.ttlMs);
  }

  async deleted(chatId: string): Promise<void> {
    await this.redis.del(this.key(chatId));
  }
}

function decode(hash: Record<string, string>): Membership {
  const members = new Map<string, number>();
  for (const [k, v] of Object.entries(hash)) if (k !== TYPE_FIELD) members.set(k, Number(v));
  return { type: hash[TYPE_FIELD] === 'group' ? 'group' : 'personal', members };
}

/**
 * A device's acknowledged position per chat (`acks:<device id>`), moved only
 * forwards. Catch-up starts there for every chat the device sent no cursor for.
 */
export class AckStore {
  private readonly redis: Redis & { ackMax(key: string, ...args: (string | number)[]): Promise<number> };

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
    this.redis = redis as AckStore['redis'];
  }

  async ack(deviceId: string, chatId: string, seq: number): Promise<void> {
    await this.redis.ackMax(`acks:${deviceId}`, chatId, seq, this.ttlSeconds);
  }

  async cursors(deviceId: string): Promise<Record<string, number>> {
    const hash = await this.redis.hgetall(`acks:${deviceId}`);
    const out: Record<string, number> = {};
    for (const [k, v] of Object.entries(hash)) out[k] = Number(v);
    return out;
  }
}
