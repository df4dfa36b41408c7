// Chat's stream keeps its events an hour (message.posted carries ciphertext that deletion and disappearing
// timers promise to drop); its chat.v1.chat.> events are copied into a week-long stream for durable consumers.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RetentionPolicy, StorageType } from '@nats-io/jetstream';
import { nanos } from '@nats-io/transport-node';
import { createTestEnv, type TestEnv } from '@bil/testkit';
import { CHAT_STREAM_MAX_AGE_MS, connectNats, contextStream, durableStreamOf, ensureStream, type Nats } from './index.js';

const WEEK = 7 * 24 * 3600 * 1000;
let env: TestEnv;
let nats: Nats;

beforeAll(async () => {
  env = await createTestEnv('streams');
  nats = await connectNats(env.natsUrl, env.natsPrefix, 'streams-test');
});

afterAll(async () => {
  await nats?.nc.close();
  await env?.cleanup();
});

async function subjects(stream: string): Promise<string[]> {
  const info = await nats.jsm.streams.info(stream, { subjects_filter: '>' } as never);
  return Object.keys((info.state as { subjects?: Record<string, number> }).subjects ?? {}).map((s) => s.slice(nats.prefix.length)).sort();
}

describe('JetStream streams', () => {
  it("keeps chat's events an hour, and its chat.v1.chat.> events a week in a copy that durable consumers read", async () => {
    const p = nats.prefix;
    const chat = contextStream(p, 'chat');
    // A chat stream as made before: every chat event kept a week.
    await nats.jsm.streams.add({ name: chat, subjects: [`${p}chat.v1.>`], retention: RetentionPolicy.Limits, storage: StorageType.File, max_age: nanos(WEEK) });
    expect(await ensureStream(nats, 'chat')).toBe(chat);
    const own = (await nats.jsm.streams.info(chat)).config;
    expect(own.max_age).toBe(nanos(CHAT_STREAM_MAX_AGE_MS));
    expect(own.subjects).toEqual([`${p}chat.v1.>`]);
    const directory = durableStreamOf(p, 'chat', `${p}chat.v1.chat.>`);
    expect(directory).toBe(`${chat}_DIRECTORY`);
    expect((await nats.jsm.streams.info(directory)).config.max_age).toBe(nanos(WEEK));

    await nats.js.publish(`${p}chat.v1.chat.created`, JSON.stringify({ chatId: 'c' }));
    await nats.js.publish(`${p}chat.v1.message.posted`, JSON.stringify({ envelope: 'ciphertext' }));
    await nats.js.publish(`${p}chat.v1.chat.member_added`, JSON.stringify({ chatId: 'c' }));
    expect(await subjects(chat)).toEqual(['chat.v1.chat.created', 'chat.v1.chat.member_added', 'chat.v1.message.posted']);
    // The copy is made by the server, a moment later; it never holds a message event.
    const deadline = Date.now() + 10_000;
    while ((await nats.jsm.streams.info(directory)).state.messages < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(await subjects(directory)).toEqual(['chat.v1.chat.created', 'chat.v1.chat.member_added']);

    // Ensuring again changes nothing; other contexts keep one week-long stream.
    expect(await ensureStream(nats, 'chat')).toBe(chat);
    expect((await nats.jsm.streams.info(directory)).state.messages).toBe(2);
    expect(durableStreamOf(p, 'chat', `${p}chat.v1.>`)).toBe(chat);
    expect(durableStreamOf(p, 'identity', `${p}identity.v1.>`)).toBe(contextStream(p, 'identity'));
    const identity = await ensureStream(nats, 'identity');
    expect((await nats.jsm.streams.info(identity)).config.max_age).toBe(nanos(WEEK));
  });
});
