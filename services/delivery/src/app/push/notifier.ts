// Content-free pushes to the devices a new message finds offline (docs/push.md).
// Runs after the fan-out, off its path: notify() returns at once, so neither the
// sender's acknowledgement nor the live delivery waits on identity or a push
// service. For each recipient device that has a subscription and no live
// socket on any node, the shared gate (Redis) either lets a push out now, with
// the number of chats that have new messages since the device's last push, or
// collapses the message into the next push, which a timer sends when the
// device's interval ends (to the subscription as it is known then: none for a
// device revoked meanwhile). A push service failure is logged without the
// endpoint and retried once; 404/410 removes the subscription at identity.
import type { Logger } from '@bil/runtime';
import type { PushDirectory } from '../../infra/push/push-directory.js';
import type { PushGate } from '../../infra/push/push-gate.js';
import { endpointHost, type PushOutcome, type PushSender, type PushTarget } from './sender.js';

export interface PushNotifierSettings {
  /** Pause before the one retry of a transient failure, ms. */
  retryDelayMs: number;
  /** Notifications in progress past which new ones are dropped (logged): a slow push service must not grow memory. */
  maxInFlight: number;
}

export class PushNotifier {
  private inFlight = 0;
  private stopped = false;
  /** Devices with a timer waiting for their gate to open, with their latest subscription. */
  private readonly waiting = new Map<string, { timer: NodeJS.Timeout; target: PushTarget }>();
  private readonly running = new Set<Promise<void>>();

  constructor(
    private readonly deps: {
      directory: Pick<PushDirectory, 'subscriptionsOf' | 'gone'>;
      gate: Pick<PushGate, 'take'>;
      sender: PushSender;
      logger: Logger;
      /** Counts each push service answer (and skipped notifications) by outcome. */
      count?: (outcome: PushOutcome['status'] | 'skipped') => void;
    },
    private readonly settings: PushNotifierSettings,
  ) {}

  /** A new message in `chatId` for `recipients` (user ids, the sender left out); `liveDevices` have a socket somewhere. Never throws, never waits. */
  notify(chatId: string, recipients: readonly string[], liveDevices: ReadonlySet<string>): void {
    if (this.stopped || recipients.length === 0) return;
    if (this.inFlight >= this.settings.maxInFlight) {
      this.deps.count?.('skipped');
      this.deps.logger.warn({ chatId }, 'push skipped: too many notifications in progress');
      return;
    }
    this.track(this.run(chatId, recipients, liveDevices));
  }

  /** Stops the timers and waits for the pushes in progress. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const w of this.waiting.values()) clearTimeout(w.timer);
    this.waiting.clear();
    await Promise.allSettled([...this.running]);
  }

  private track(p: Promise<void>): void {
    this.inFlight++;
    const done = p.finally(() => {
      this.inFlight--;
      this.running.delete(done);
    });
    this.running.add(done);
  }

  private async run(chatId: string, recipients: readonly string[], liveDevices: ReadonlySet<string>): Promise<void> {
    try {
      const targets = (await this.deps.directory.subscriptionsOf(recipients)).filter((t) => !liveDevices.has(t.deviceId));
      await Promise.all(targets.map((t) => this.offer(t, chatId)));
    } catch (err) {
      this.deps.logger.warn({ chatId, err: (err as Error).message }, 'push skipped: subscriptions or gate unavailable');
    }
  }

  /** Records the message for the device and pushes now, or when its interval ends. */
  private async offer(target: PushTarget, chatId: string): Promise<void> {
    const d = await this.deps.gate.take(target.deviceId, chatId);
    if ('send' in d) return this.deliver(target, d.send);
    if ('waitMs' in d) this.later(target, d.waitMs);
  }

  private later(target: PushTarget, waitMs: number): void {
    const w = this.waiting.get(target.deviceId);
    if (w) {
      w.target = target;
      return;
    }
    const timer = setTimeout(() => {
      const entry = this.waiting.get(target.deviceId);
      this.waiting.delete(target.deviceId);
      if (!entry || this.stopped) return;
      this.track(this.retryGate(entry.target));
    }, waitMs + 5);
    timer.unref();
    this.waiting.set(target.deviceId, { timer, target });
  }

  private async retryGate(target: PushTarget): Promise<void> {
    try {
      const d = await this.deps.gate.take(target.deviceId);
      if ('waitMs' in d) this.later(target, d.waitMs);
      if (!('send' in d)) return;
      // The subscription as it is known now: a device revoked while its push waited gets none.
      const current = (await this.deps.directory.subscriptionsOf([target.userId])).find((t) => t.deviceId === target.deviceId);
      if (current) await this.deliver(current, d.send);
    } catch (err) {
      this.deps.logger.warn({ deviceId: target.deviceId, err: (err as Error).message }, 'collapsed push not sent: the gate or the subscriptions could not be read');
    }
  }

  private async deliver(target: PushTarget, chats: number): Promise<void> {
    const log = { deviceId: target.deviceId, pushHost: endpointHost(target.endpoint) };
    for (let attempt = 1; attempt <= 2; attempt++) {
      const out = await this.deps.sender.send(target, { chats });
      this.deps.count?.(out.status);
      if (out.status === 'sent') return;
      if (out.status === 'gone') {
        this.deps.logger.info(log, 'push subscription gone (404/410): removing it');
        await this.deps.directory.gone(target).catch((err: Error) => this.deps.logger.warn({ ...log, err: err.message }, 'push subscription not removed'));
        return;
      }
      if (out.status === 'failed' || attempt === 2) {
        this.deps.logger.warn({ ...log, reason: out.reason, attempt }, 'push not delivered');
        return;
      }
      await new Promise((r) => setTimeout(r, this.settings.retryDelayMs));
    }
  }
}
