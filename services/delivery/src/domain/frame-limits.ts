// Per-socket rate limits of client frames (docs/ws-protocol.md, "Rate
// limits"): one token bucket per frame type per socket. A frame over its
// limit is dropped unanswered by the backends and gets an `error` frame
// `rate_limited`; it counts as a bad frame, so a client that keeps flooding is
// closed with 4010 after 20 of them. Pure: the clock is passed in.
import type { CLIENT_FRAME_TYPES } from './frames.js';

type ClientFrameType = (typeof CLIENT_FRAME_TYPES)[number];

export interface FrameRateLimit {
  /** Frames allowed at once (the bucket's size). */
  burst: number;
  /** Frames per second refilled. */
  perSecond: number;
}

/**
 * The limits, one per client frame type. Sized for real clients with room to
 * spare: an `ack` per message of a catch-up burst, a `typing` every few
 * seconds, one `presence_subscribe` per screen; `sync` is once per
 * connection anyway (`already_synced`).
 */
export const FRAME_RATE_LIMITS: Record<ClientFrameType, FrameRateLimit> = {
  sync: { burst: 2, perSecond: 0.1 },
  ack: { burst: 500, perSecond: 50 },
  auth: { burst: 5, perSecond: 0.1 },
  typing: { burst: 10, perSecond: 2 },
  read: { burst: 50, perSecond: 10 },
  presence_subscribe: { burst: 10, perSecond: 1 },
  ping: { burst: 10, perSecond: 1 },
};

export class FrameLimiter {
  private readonly tokens = new Map<ClientFrameType, { level: number; at: number }>();

  constructor(private readonly limits: Record<ClientFrameType, FrameRateLimit> = FRAME_RATE_LIMITS) {}

  /** Takes one token for a frame of `type`; false (and ms until the next token) when the bucket is empty. */
  take(type: ClientFrameType, now: number): { ok: true } | { ok: false; retryAfterMs: number } {
    const limit = this.limits[type];
    const b = this.tokens.get(type) ?? { level: limit.burst, at: now };
    b.level = Math.min(limit.burst, b.level + ((now - b.at) / 1000) * limit.perSecond);
    b.at = now;
    this.tokens.set(type, b);
    if (b.level >= 1) {
      b.level -= 1;
      return { ok: true };
    }
    return { ok: false, retryAfterMs: Math.ceil(((1 - b.level) / limit.perSecond) * 1000) };
  }
}
