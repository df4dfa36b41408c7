// Per-user digest limits in Redis, checked and counted atomically by one
// script: requests per minute (fixed window) and chats summarised per UTC
// day. A refused request counts for neither. Keys carry the service's Redis
// prefix (ioredis keyPrefix applies to KEYS).
import type { Redis } from '@bil/runtime';

const SCRIPT = `
local minute = redis.call('INCR', KEYS[1])
if minute == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
if minute > tonumber(ARGV[2]) then
  redis.call('DECR', KEYS[1])
  return {1, redis.call('PTTL', KEYS[1])}
end
local day = redis.call('INCRBY', KEYS[2], ARGV[3])
if day == tonumber(ARGV[3]) then redis.call('PEXPIRE', KEYS[2], ARGV[4]) end
if day > tonumber(ARGV[5]) then
  redis.call('DECRBY', KEYS[2], ARGV[3])
  redis.call('DECR', KEYS[1])
  return {2, redis.call('PTTL', KEYS[2])}
end
return {0, 0}`;

export type LimitVerdict = { ok: true } | { ok: false; limit: 'per_minute' | 'daily'; retryAfterMs: number };

export class DigestLimits {
  constructor(
    private readonly redis: Redis,
    private readonly perMinute: number,
    private readonly dailyChats: number,
  ) {}

  /** Counts one request of `chats` chats for `userId`, unless it would exceed a limit. */
  async take(userId: string, chats: number, now = Date.now()): Promise<LimitVerdict> {
    const minute = Math.floor(now / 60_000);
    const day = new Date(now).toISOString().slice(0, 10);
    const endOfDay = Date.parse(`${day}T00:00:00.000Z`) + 86_400_000;
    const [code, ttl] = (await this.redis.eval(
      SCRIPT,
      2,
      `digest:rate:${userId}:${minute}`,
      `digest:daily:${userId}:${day}`,
      60_000,
      this.perMinute,
      chats,
      endOfDay - now + 60_000,
      this.dailyChats,
    )) as [number, number];
    if (code === 0) return { ok: true };
    return { ok: false, limit: code === 1 ? 'per_minute' : 'daily', retryAfterMs: Math.max(1000, Number(ttl)) };
  }
}
