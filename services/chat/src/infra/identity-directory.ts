// The chat service's own copy of what it needs from identity: which users
// exist and which devices are active (with their signing keys), kept by a
// durable, idempotent consumer of identity.v1.* so that no send ever calls
// identity. Revocations and account deletions also act on chats (epoch
// rotation required, the account leaves its chats) in the same transaction.
import { DurableConsumer, type Database, type Logger, type Nats } from '@bil/runtime';
import type { ChatApp } from '../app/chat-app.js';

export function identityDirectoryConsumer(opts: { nats: Nats; db: Database; logger: Logger; app: ChatApp }): DurableConsumer {
  return new DurableConsumer({
    nats: opts.nats,
    db: opts.db,
    logger: opts.logger,
    context: 'identity',
    durable: 'chat-identity-directory',
    // One consumer for user.* and device.* (NATS 2.9 has one filter per consumer).
    filter: 'identity.v1.>',
    handle: (tx, event) => opts.app.applyIdentityEvent(tx, event, opts.nats.prefix),
  });
}
