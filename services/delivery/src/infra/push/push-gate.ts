// Per-device collapse and rate limit in Redis, shared by every delivery node:
// `push:pending:<device>` is the set of chats with new messages since the
// device's last push, `push:gate:<device>` exists for PUSH_MIN_INTERVAL_MS
// after a push. A message either takes the gate (push now, with the number
// of pending chats) or only joins the pending set, which the next push
// (when the gate opens) reports. One script: no two nodes push the same
// device within the interval.
import type { Redis } from 'ioredis';

// KEYS: pending, gate. ARGV: chat id ('' to only try the gate), interval ms, pending ttl ms.
// Returns N > 0: push now with N chats; 0: nothing pending; -ms: the gate opens in ms.
const TAKE = `
if ARGV[1] ~= '' then
  redis.call('SADD', KEYS[1], ARGV[1])
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
end
local n = redis.call('SCARD', KEYS[1])
if n == 0 then return 0 end
if redis.call('SET', KEYS[2], '1', 'NX', 'PX', ARGV[2]) then
  redis.call('DEL', KEYS[1])
  return n
end
local ttl = redis.call('PTTL', KEYS[2])
if ttl < 1 then ttl = 1 end
return -ttl
`;

type GateRedis = Redis & { pushTake(pending: string, gate: string, chatId: string, intervalMs: number, pendingTtlMs: number): Promise<number> };

export type GateDecision = { send: number } | { waitMs: number } | { nothing: true };

export class PushGate {
  private readonly redis: GateRedis;

  constructor(
    redis: Redis,
    private readonly intervalMs: number,
    /** How long an unreported chat stays pending (the push service keeps a push for TTL anyway). */
    private readonly pendingTtlMs: number,
  ) {
    redis.defineCommand('pushTake', { numberOfKeys: 2, lua: TAKE });
    this.redis = redis as GateRedis;
  }

  /** Records a new message in `chatId` for the device (none: only retries the gate) and says whether to push now. */
  async take(deviceId: string, chatId = ''): Promise<GateDecision> {
    const r = Number(await this.redis.pushTake(`push:pending:${deviceId}`, `push:gate:${deviceId}`, chatId, this.intervalMs, this.pendingTtlMs));
    if (r > 0) return { send: r };
    if (r < 0) return { waitMs: -r };
    return { nothing: true };
  }
}
