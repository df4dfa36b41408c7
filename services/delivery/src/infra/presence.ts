// Presence in Redis: which delivery node holds each device's socket. One hash
// per user, `presence:<user id>`, field = device id, value = `<node>|<deadline
// ms>`. Nodes rewrite their devices' deadlines on every heartbeat; readers
// ignore entries past their deadline, so a dead node's devices go offline by
// themselves, and the key expires once all its entries have. Redis 7.0 has
// no per-field TTL, hence the deadline in the value.
import type { Redis } from 'ioredis';

export interface DeviceLocation {
  deviceId: string;
  nodeId: string;
}

// KEYS[1] hash; ARGV: device, node, deadline, key ttl ms, now.
// Returns the node that held the device before (if still live), or ''.
const REGISTER = `
local old = redis.call('HGET', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. '|' .. ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
if old then
  local sep = string.find(old, '|', 1, true)
  local node = string.sub(old, 1, sep - 1)
  if tonumber(string.sub(old, sep + 1)) > tonumber(ARGV[5]) then return node end
end
return ''
`;

// Refreshes the deadline only while the entry still names this node (a newer
// socket of the device on another node wins). ARGV: device, node, deadline, ttl.
const HEARTBEAT = `
local old = redis.call('HGET', KEYS[1], ARGV[1])
if old and string.sub(old, 1, string.len(ARGV[2]) + 1) ~= ARGV[2] .. '|' then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. '|' .. ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1
`;

// Removes the entry only if it names this node. ARGV: device, node.
const UNREGISTER = `
local old = redis.call('HGET', KEYS[1], ARGV[1])
if old and string.sub(old, 1, string.len(ARGV[2]) + 1) == ARGV[2] .. '|' then redis.call('HDEL', KEYS[1], ARGV[1]) return 1 end
return 0
`;

// Every hash of KEYS in one reply (one command instead of one HGETALL each:
// a 1,000-member fan-out is one script call, not 1,000 pipelined commands).
const LOCATE = `
local out = {}
for i, k in ipairs(KEYS) do out[i] = redis.call('HGETALL', k) end
return out
`;

/** Users per locate script call (a pipeline of several calls beyond that). */
export const LOCATE_BATCH = 1000;

type ScriptRedis = Redis & {
  presenceLocate(numKeys: number, ...keys: string[]): Promise<string[][]>;
  presenceRegister(key: string, ...args: (string | number)[]): Promise<string>;
  presenceHeartbeat(key: string, ...args: (string | number)[]): Promise<number>;
  presenceUnregister(key: string, ...args: (string | number)[]): Promise<number>;
};

export class Presence {
  private readonly redis: ScriptRedis;

  constructor(
    redis: Redis,
    readonly nodeId: string,
    private readonly ttlMs: number,
    private readonly now: () => number = Date.now,
  ) {
    redis.defineCommand('presenceRegister', { numberOfKeys: 1, lua: REGISTER });
    redis.defineCommand('presenceHeartbeat', { numberOfKeys: 1, lua: HEARTBEAT });
    redis.defineCommand('presenceUnregister', { numberOfKeys: 1, lua: UNREGISTER });
    redis.defineCommand('presenceLocate', { lua: LOCATE });
    this.redis = redis as ScriptRedis;
  }

  private key(userId: string): string {
    return presenceKey(userId);
  }

  /** Marks the device as connected here; returns the other live node that held it before, if any. */
  async register(userId: string, deviceId: string): Promise<string | undefined> {
    const now = this.now();
    const old = await this.redis.presenceRegister(this.key(userId), deviceId, this.nodeId, now + this.ttlMs, this.ttlMs * 2, now);
    return old && old !== this.nodeId ? old : undefined;
  }

  async heartbeat(devices: Array<{ userId: string; deviceId: string }>): Promise<void> {
    const deadline = this.now() + this.ttlMs;
    for (let i = 0; i < devices.length; i += 1000) {
      const p = this.redis.pipeline();
      for (const d of devices.slice(i, i + 1000)) {
        (p as unknown as ScriptRedis).presenceHeartbeat(this.key(d.userId), d.deviceId, this.nodeId, deadline, this.ttlMs * 2);
      }
      await p.exec();
    }
  }

  async unregister(userId: string, deviceId: string): Promise<void> {
    await this.redis.presenceUnregister(this.key(userId), deviceId, this.nodeId);
  }

  /** Every live device of these users with its node: one round trip (one script call per 1,000 users). */
  async locate(userIds: string[]): Promise<Map<string, DeviceLocation[]>> {
    if (userIds.length === 0) return new Map();
    const batches: Array<Promise<string[][]>> = [];
    for (let i = 0; i < userIds.length; i += LOCATE_BATCH) {
      const keys = userIds.slice(i, i + LOCATE_BATCH).map((u) => this.key(u));
      batches.push(this.redis.presenceLocate(keys.length, ...keys));
    }
    return this.live(userIds, (await Promise.all(batches)).flat());
  }

  /** The live devices in these users' presence hashes (HGETALL replies, in the same order). */
  live(userIds: readonly string[], hashes: ReadonlyArray<string[] | undefined>): Map<string, DeviceLocation[]> {
    const out = new Map<string, DeviceLocation[]>();
    const now = this.now();
    userIds.forEach((userId, i) => {
      const flat = hashes[i];
      if (!flat || flat.length === 0) return;
      const live: DeviceLocation[] = [];
      for (let j = 0; j + 1 < flat.length; j += 2) {
        const value = flat[j + 1]!;
        const sep = value.lastIndexOf('|');
        if (Number(value.slice(sep + 1)) > now) live.push({ deviceId: flat[j]!, nodeId: value.slice(0, sep) });
      }
      if (live.length > 0) out.set(userId, live);
    });
    return out;
  }
}

/** A user's presence hash. */
export function presenceKey(userId: string): string {
  return `presence:${userId}`;
}
