// The revocation list mirrored in memory, for the gateway's per-request check
// (issue #18: one Redis round trip per request was ~12% of the gateway's CPU
// per send). Redis stays the record: RevocationList.revoke sets the keys and
// publishes them on `<prefix>revocations` in one MULTI, so a subscriber hears
// of a revocation when it is written, before the revoking call returns.
//
// The mirror answers alone only while it is known complete: after it
// subscribed and then scanned the keys already there (a revocation written
// between the two is heard on the channel, so none is lost). While the
// subscriber is not connected, or not yet synced, every check asks Redis
// (MGET), exactly as RevocationList does. When Redis can't be asked either,
// Redis is down for everyone, so nothing can be revoked meanwhile (identity's
// revoke fails with it): a mirror that was synced before answers from what it
// holds, and authenticated requests go on through a Redis outage; one that
// never synced fails (503 to clients).
import type { Redis } from 'ioredis';
import type { RevocationChecker } from './access-token.js';
import type { AccessClaims } from './tokens.js';
import { RevocationList, REVOCATIONS_CHANNEL, revocationKey } from './tokens.js';

/** Entries are kept this long past their Redis TTL (clock differences); a stale entry only refuses a dead token. */
const GRACE_MS = 60_000;

export class LiveRevocations implements RevocationChecker {
  private readonly entries = new Map<string, number>(); // key (unprefixed) → expiry (ms)
  private readonly fallback: RevocationList;
  private readonly sub: Redis;
  private readonly prefix: string;
  private synced = false;
  private everSynced = false;
  private generation = 0;
  private pruneAt = 0;

  constructor(private readonly redis: Redis) {
    this.fallback = new RevocationList(redis, 1);
    this.prefix = redis.options.keyPrefix ?? '';
    // A connection of its own: a subscribed connection can run no other command.
    this.sub = redis.duplicate({ keyPrefix: '' });
    this.sub.on('error', () => undefined); // reported by the main connection's outage log
    this.sub.on('message', (_channel: string, message: string) => this.heard(message));
    this.sub.on('ready', () => void this.sync());
    for (const lost of ['close', 'end', 'reconnecting']) this.sub.on(lost, () => this.unsync());
  }

  /** True once the mirror is complete (subscribed, then scanned); checks ask Redis until then. */
  get live(): boolean {
    return this.synced;
  }

  async isRevoked(claims: Pick<AccessClaims, 'sub' | 'did' | 'sid'>): Promise<boolean> {
    if (!this.synced && !(this.everSynced && this.redis.status !== 'ready')) {
      try {
        return await this.fallback.isRevoked(claims);
      } catch (err) {
        if (!this.everSynced) throw err;
      }
    }
    return this.held(claims);
  }

  private held(claims: Pick<AccessClaims, 'sub' | 'did' | 'sid'>): boolean {
    const now = Date.now();
    if (now >= this.pruneAt) this.prune(now);
    return [revocationKey('session', claims.sid), revocationKey('device', claims.did), revocationKey('user', claims.sub)].some(
      (k) => (this.entries.get(k) ?? 0) > now,
    );
  }

  async close(): Promise<void> {
    this.unsync();
    this.sub.disconnect();
  }

  private unsync(): void {
    this.synced = false;
    this.generation++;
  }

  private async sync(): Promise<void> {
    const generation = ++this.generation;
    try {
      await this.sub.subscribe(`${this.prefix}${REVOCATIONS_CHANNEL}`);
      // Subscribed first, scanned second: whatever is written meanwhile is heard on the channel.
      let cursor = '0';
      do {
        const [next, keys] = await this.redis.scan(cursor, 'MATCH', `${this.prefix}revoked:*`, 'COUNT', 1000);
        cursor = next;
        const names = keys.map((k) => k.slice(this.prefix.length));
        const ttls = names.length > 0 ? await this.redis.pipeline(names.map((k) => ['pttl', k])).exec() : [];
        names.forEach((k, i) => {
          const ttl = Number(ttls?.[i]?.[1] ?? -2);
          if (ttl !== -2) this.add(k, ttl < 0 ? Number.MAX_SAFE_INTEGER : ttl);
        });
      } while (cursor !== '0');
      if (generation === this.generation) this.synced = this.everSynced = true;
    } catch {
      // The connection went away mid-sync: 'ready' comes again when it is back.
    }
  }

  private heard(message: string): void {
    try {
      const m = JSON.parse(message) as { keys?: unknown; ttlSeconds?: unknown };
      if (!Array.isArray(m.keys) || typeof m.ttlSeconds !== 'number') return;
      for (const k of m.keys) if (typeof k === 'string') this.add(k, m.ttlSeconds * 1000);
    } catch {
      // Not ours; the keys in Redis stay the record.
    }
  }

  private add(key: string, ttlMs: number): void {
    const until = Math.min(Number.MAX_SAFE_INTEGER, Date.now() + ttlMs + GRACE_MS);
    if ((this.entries.get(key) ?? 0) < until) this.entries.set(key, until);
  }

  private prune(now: number): void {
    for (const [k, until] of this.entries) if (until <= now) this.entries.delete(k);
    this.pruneAt = now + 60_000;
  }
}
