// The digest service's own copies of what it needs from other contexts, each
// kept by a durable, idempotent consumer (effects and the processed-event
// record commit together):
//   - identity.v1.>: users' identity keys and devices' keys, so the worker can
//     check a requesting device's certificate and seal the result to it;
//   - chat.v1.chat.>: current members of each chat (created, member added or
//     removed, deleted), so requests and policy changes are checked without a
//     call to chat. Message events are not read (chat.v1.message.* is the bulk
//     of chat's traffic and holds nothing the digest needs).
// The views lag chat and identity by the relay's latency (milliseconds); a
// request in that window is refused as chat_not_found / device_unknown and
// can be retried.
import { DurableConsumer, type Database, type Logger, type Nats } from '@bil/runtime';
import type { DigestApp } from '../app/digest-app.js';

export function directoryConsumers(opts: { nats: Nats; db: Database; logger: Logger; app: DigestApp }): DurableConsumer[] {
  return [
    new DurableConsumer({
      nats: opts.nats,
      db: opts.db,
      logger: opts.logger,
      context: 'identity',
      durable: 'digest-identity-directory',
      filter: 'identity.v1.>',
      handle: (tx, event) => opts.app.applyIdentityEvent(tx, event, opts.nats.prefix),
    }),
    new DurableConsumer({
      nats: opts.nats,
      db: opts.db,
      logger: opts.logger,
      context: 'chat',
      durable: 'digest-chat-membership',
      filter: 'chat.v1.chat.>',
      handle: (tx, event) => opts.app.applyChatEvent(tx, event, opts.nats.prefix),
    }),
  ];
}
