// NATS JetStream set-up and the one place subjects and stream names are built.
import { connect, headers as natsHeaders, nanos, type NatsConnection, type MsgHdrs } from '@nats-io/transport-node';
import { ConfigError } from './config.js';
import {
  jetstream,
  jetstreamManager,
  RetentionPolicy,
  StorageType,
  type JetStreamClient,
  type JetStreamManager,
} from '@nats-io/jetstream';

export interface Nats {
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
  /** Prefix applied to every subject and stream name (tests use their own). */
  prefix: string;
  /** Replicas of the streams this process creates (NATS_STREAM_REPLICAS; 1 without a cluster). */
  streamReplicas?: number;
}

export interface NatsOptions {
  /** Replicas of each stream ensureStream creates or updates (default 1). */
  streamReplicas?: number;
}

/**
 * Connection options from a NATS URL: `nats://host:port`, with credentials
 * as `nats://user:password@host` or a token as `nats://token@host`, and TLS
 * with the `tls://` scheme.
 */
export function natsConnectOptions(url: string): { servers: string; user?: string; pass?: string; token?: string; tls?: Record<string, never> } {
  const u = new URL(url);
  const out: ReturnType<typeof natsConnectOptions> = { servers: `${u.hostname}:${u.port || 4222}` };
  const decode = (part: string, what: string) => {
    try {
      return decodeURIComponent(part);
    } catch {
      throw new ConfigError([`NATS_URL: the ${what} is not valid percent-encoding (encode reserved characters, e.g. @ as %40)`]);
    }
  };
  const user = decode(u.username, 'user name');
  const pass = decode(u.password, 'password');
  if (pass && !user) throw new ConfigError(['NATS_URL: a password needs a user name (nats://user:password@host), or give a token as nats://token@host']);
  if (user && u.password === '' && url.includes(`${u.username}:@`)) {
    throw new ConfigError(['NATS_URL: the user name has an empty password; give nats://user:password@host, or a token as nats://token@host']);
  }
  if (user && pass) Object.assign(out, { user, pass });
  else if (user) out.token = user;
  if (u.protocol === 'tls:') out.tls = {};
  return out;
}

export async function connectNats(url: string, prefix: string, name: string, opts: NatsOptions = {}): Promise<Nats> {
  const nc = await connect({
    ...natsConnectOptions(url),
    name,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 500,
    timeout: 5000,
    // No stack captured at the start of every request and JetStream publish (an Error per call,
    // for a trace that says where a timed-out call began): the outbox relay publishes every event.
    noAsyncTraces: true,
  });
  const js = jetstream(nc, { timeout: 10_000 });
  const jsm = await jetstreamManager(nc, { timeout: 10_000 });
  return { nc, js, jsm, prefix, streamReplicas: opts.streamReplicas ?? 1 };
}

/** `identity.v1.device.revoked` style subject: `<context>.v1.<aggregate>.<event_snake>`. */
export function eventSubject(prefix: string, context: string, aggregate: string, eventType: string): string {
  return `${prefix}${context}.v1.${aggregate}.${snake(eventType)}`;
}

/** Subject filter for every event of a context, e.g. `identity.v1.>`. */
export function contextSubjects(prefix: string, context: string): string {
  return `${prefix}${context}.v1.>`;
}

/** JetStream stream name of a context (stream names allow no dots). */
export function contextStream(prefix: string, context: string): string {
  return `${prefix.replace(/\./g, '_')}${context}`.toUpperCase();
}

/** `DeviceRevoked` → `device_revoked`; used to build subjects from event types. */
export function snake(name: string): string {
  return name.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toLowerCase();
}

/** Creates the context's stream, or updates its subjects if it exists. */
export async function ensureStream(nats: Nats, context: string): Promise<string> {
  const name = contextStream(nats.prefix, context);
  const subjects = [contextSubjects(nats.prefix, context)];
  const replicas = nats.streamReplicas ?? 1;
  try {
    const info = await nats.jsm.streams.info(name);
    if (info.config.subjects?.join() !== subjects.join() || info.config.num_replicas !== replicas) {
      await nats.jsm.streams.update(name, { ...info.config, subjects, num_replicas: replicas });
    }
  } catch (err) {
    if (!isNotFound(err)) throw err;
    await nats.jsm.streams.add({
      name,
      subjects,
      retention: RetentionPolicy.Limits,
      storage: StorageType.File,
      num_replicas: replicas,
      // Dedup window for Nats-Msg-Id: a relay restarted within it never duplicates.
      duplicate_window: nanos(10 * 60 * 1000),
      max_age: nanos(7 * 24 * 3600 * 1000),
    });
  }
  return name;
}

export function isNotFound(err: unknown): boolean {
  const e = err as { message?: string; code?: number | string; api_error?: { err_code?: number } };
  return e?.api_error?.err_code === 10059 || /not found/i.test(e?.message ?? '');
}

export function newHeaders(values: Record<string, string | undefined>): MsgHdrs {
  const h = natsHeaders();
  for (const [k, v] of Object.entries(values)) if (v !== undefined && v !== '') h.set(k, v);
  return h;
}

export const EVENT_TYPE_HEADER = 'Bil-Event-Type';
export const CORRELATION_ID_HEADER = 'Bil-Correlation-Id';
export const EVENT_ID_HEADER = 'Bil-Event-Id';
export const STREAM_ID_HEADER = 'Bil-Stream-Id';
export const STREAM_VERSION_HEADER = 'Bil-Stream-Version';
