// Fixed-window rate limits in Redis for the password-guessable endpoints
// (registration, device registration, login). One Lua script increments every
// counter of an attempt and sets each new window's expiry atomically, so a
// crash between INCR and EXPIRE can't leave a counter that never resets.
import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import { AppError } from '@bil/runtime';

const SCRIPT = `
local out = {}
for i, key in ipairs(KEYS) do
  local n = redis.call('INCR', key)
  if n == 1 then redis.call('PEXPIRE', key, ARGV[1]) end
  local ttl = redis.call('PTTL', key)
  if ttl < 0 then
    redis.call('PEXPIRE', key, ARGV[1])
    ttl = tonumber(ARGV[1])
  end
  out[#out + 1] = n
  out[#out + 1] = ttl
end
return out
`;

type ScriptRedis = Redis & {
  bilRateLimitHit(numKeys: number, ...args: Array<string | number>): Promise<number[]>;
};

export interface RateRule {
  /** Redis key of the counter (the connection's prefix is added). */
  key: string;
  /** Attempts allowed per window. */
  limit: number;
}

export interface RateDecision {
  allowed: boolean;
  /** Seconds until the exhausted window(s) reset; 0 when allowed. */
  retryAfterSeconds: number;
}

/** Decides from counter values and window ttls whether an attempt may proceed. */
export function decide(rules: readonly RateRule[], counts: readonly number[]): RateDecision {
  let limited = false;
  let retryMs = 0;
  rules.forEach((rule, i) => {
    const n = counts[2 * i] ?? 0;
    const ttl = counts[2 * i + 1] ?? 0;
    if (n > rule.limit) {
      limited = true;
      retryMs = Math.max(retryMs, ttl);
    }
  });
  if (!limited) return { allowed: true, retryAfterSeconds: 0 };
  return { allowed: false, retryAfterSeconds: Math.max(1, Math.ceil(retryMs / 1000)) };
}

/** Counter key part for a username: case-folded, hashed (keeps keys short and plain). */
export function usernameBucket(username: string): string {
  return createHash('sha256').update(username.normalize('NFKC').toLowerCase()).digest('base64url').slice(0, 22);
}

export class RateLimiter {
  private readonly redis: ScriptRedis;

  constructor(
    redis: Redis,
    private readonly windowSeconds: number,
  ) {
    const r = redis as unknown as Partial<ScriptRedis>;
    if (typeof r.bilRateLimitHit !== 'function') redis.defineCommand('bilRateLimitHit', { lua: SCRIPT });
    this.redis = redis as unknown as ScriptRedis;
  }

  /** Counts one attempt against every rule. */
  async hit(rules: readonly RateRule[]): Promise<RateDecision> {
    if (rules.length === 0) return { allowed: true, retryAfterSeconds: 0 };
    let counts: number[];
    try {
      counts = await this.redis.bilRateLimitHit(rules.length, ...rules.map((r) => r.key), this.windowSeconds * 1000);
    } catch {
      // Fail closed: without counters, password guessing would be unlimited.
      throw new AppError('unavailable', 'service_unavailable', 'a backend service is unavailable, try again');
    }
    return decide(rules, counts.map(Number));
  }
}

export interface AuthLimits {
  perIp: number;
  perUsername: number;
  /** GET /v1/users lookups per account per window (username enumeration); default 60. */
  lookupsPerUser?: number;
}

/** How many times `perUsername` one username may be tried from all addresses together in a window. */
export const ALL_ADDRESSES_FACTOR = 10;

/**
 * The rules for a sign-in or registration attempt by `ip` for `username`:
 * `perIp` from one address (whatever the usernames), `perUsername` for one
 * username from one address, and ALL_ADDRESSES_FACTOR × `perUsername` for
 * one username from every address together. An outsider guessing at an
 * account holds back their own address, not the owner's: locking the owner
 * out takes that many attempts a window, from more than that many ÷ `perIp`
 * addresses (was: `perUsername`, 10, from anywhere, held the owner back for
 * up to a window).
 */
export function authRules(limits: AuthLimits, ip: string, username: string): RateRule[] {
  const user = usernameBucket(username);
  return [
    { key: `gw:rl:auth:ip:${ip}`, limit: limits.perIp },
    { key: `gw:rl:auth:user:${user}:ip:${ip}`, limit: limits.perUsername },
    { key: `gw:rl:auth:user:${user}`, limit: limits.perUsername * ALL_ADDRESSES_FACTOR },
  ];
}

/** Throws 429 rate_limited when the attempt is over a limit. */
export async function enforceAuthLimit(limiter: Pick<RateLimiter, 'hit'>, limits: AuthLimits, ip: string, username: string): Promise<void> {
  const d = await limiter.hit(authRules(limits, ip, username));
  if (!d.allowed) {
    throw new AppError('rate_limited', 'rate_limited', `too many attempts, retry in ${d.retryAfterSeconds} s`, {
      retry_after_seconds: d.retryAfterSeconds,
    });
  }
}

/** Throws 429 rate_limited when `userId` looked up more users than allowed this window. */
export async function enforceLookupLimit(limiter: Pick<RateLimiter, 'hit'>, limits: AuthLimits, userId: string): Promise<void> {
  const d = await limiter.hit([{ key: `gw:rl:lookup:user:${userId}`, limit: limits.lookupsPerUser ?? 60 }]);
  if (!d.allowed) {
    throw new AppError('rate_limited', 'rate_limited', `too many lookups, retry in ${d.retryAfterSeconds} s`, {
      retry_after_seconds: d.retryAfterSeconds,
    });
  }
}
