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

/** How long a context's stream keeps events: longer than any outage a durable consumer should ride out. */
const STREAM_MAX_AGE_MS = 7 * 24 * 3600 * 1000;
/**
 * How long chat's stream keeps events. `message.posted` carries the envelope
 * and the wrapped keys (ciphertext), which deletion for everyone and
 * disappearing timers promise to drop; kept a week, they outlived what chat
 * erased by days. Only delivery's fan-out reads chat's stream as it comes
 * (live frames and pushes; a device that was away catches up from chat, not
 * from the stream), so an hour covers any delivery outage worth replaying.
 */
export const CHAT_STREAM_MAX_AGE_MS = 3600 * 1000;

export interface StreamSpec {
  name: string;
  /** The subjects it captures (none for a stream sourced from another). */
  subjects: string[];
  /** Copied from another stream of the context: its name and a subject filter. */
  source?: { name: string; filter: string };
  maxAgeMs: number;
}

/**
 * The JetStream streams of a context, its own first (every event of
 * `<context>.v1.>`). Chat's is kept CHAT_STREAM_MAX_AGE_MS; its `chat.v1.chat.>`
 * events (membership, keys, timers: no ciphertext) are copied into a second
 * stream, `<CHAT>_DIRECTORY`, kept the usual week, from which durable
 * consumers that must not miss them (digest's membership view) read.
 */
export function contextStreams(prefix: string, context: string): StreamSpec[] {
  const name = contextStream(prefix, context);
  if (context !== 'chat') return [{ name, subjects: [contextSubjects(prefix, context)], maxAgeMs: STREAM_MAX_AGE_MS }];
  return [
    { name, subjects: [contextSubjects(prefix, context)], maxAgeMs: CHAT_STREAM_MAX_AGE_MS },
    { name: `${name}_DIRECTORY`, subjects: [], source: { name, filter: `${prefix}chat.v1.chat.>` }, maxAgeMs: STREAM_MAX_AGE_MS },
  ];
}

/** The stream a durable consumer of `filter` (prefix included) reads: the context's own, or the week-long copy that holds the filter's events. */
export function durableStreamOf(prefix: string, context: string, filter: string): string {
  const streams = contextStreams(prefix, context);
  const copy = streams.find((s) => s.source && filter.startsWith(s.source.filter.slice(0, -1)));
  return (copy ?? streams[0]!).name;
}

/**
 * Creates the context's streams, or updates their subjects, replicas and
 * age (a chat stream made when it kept a week drops its older events, with
 * their ciphertext, at once); returns the name of the context's own stream.
 */
export async function ensureStream(nats: Nats, context: string): Promise<string> {
  const streams = contextStreams(nats.prefix, context);
  const replicas = nats.streamReplicas ?? 1;
  for (const spec of streams) {
    const maxAge = nanos(spec.maxAgeMs);
    try {
      const info = await nats.jsm.streams.info(spec.name);
      if ((info.config.subjects ?? []).join() !== spec.subjects.join() || info.config.num_replicas !== replicas || info.config.max_age !== maxAge) {
        await nats.jsm.streams.update(spec.name, { ...info.config, ...(spec.source ? {} : { subjects: spec.subjects }), num_replicas: replicas, max_age: maxAge });
      }
    } catch (err) {
      if (!isNotFound(err)) throw err;
      await nats.jsm.streams.add({
        name: spec.name,
        ...(spec.source ? { sources: [{ name: spec.source.name, filter_subject: spec.source.filter }] } : { subjects: spec.subjects }),
        retention: RetentionPolicy.Limits,
        storage: StorageType.File,
        num_replicas: replicas,
        // Dedup window for Nats-Msg-Id: a relay restarted within it never duplicates.
        duplicate_window: nanos(10 * 60 * 1000),
        max_age: maxAge,
      });
    }
  }
  return streams[0]!.name;
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
