// Identity's hints to other services (IdentityHints) as plain NATS messages:
// published after the change committed, never stored, never awaited. A hint
// that cannot be sent (NATS away) is logged and dropped: its receivers fall
// back to their own time limits.
import { pushSubscriptionsChangedSubject, type PushSubscriptionsChanged } from '@bil/proto/events';
import type { Logger, Nats } from '@bil/runtime';
import type { IdentityHints } from '../app/context.js';

export function natsHints(nats: Pick<Nats, 'nc' | 'prefix'>, logger: Logger): IdentityHints {
  const subject = pushSubscriptionsChangedSubject(nats.prefix);
  return {
    pushSubscriptionsChanged(userId) {
      const hint: PushSubscriptionsChanged = { userId };
      try {
        nats.nc.publish(subject, JSON.stringify(hint));
      } catch (err) {
        logger.warn({ err: (err as Error).message }, 'push subscription hint not sent: delivery uses what it remembers until it expires');
      }
    },
  };
}
