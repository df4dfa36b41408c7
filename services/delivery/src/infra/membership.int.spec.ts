// MembershipCache.route on real Redis, two delivery nodes sharing it: one
// round trip while a node's copy of the list is current, and a change made
// through the other node (a member removed or added) is seen on the very
// next route, never served from the stale copy. Acks checked and stored in
// one script.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestEnv, type TestEnv } from '@bil/testkit';
import { connectRedis } from '@bil/runtime';
import type { Redis } from 'ioredis';
import { AckStore, MembershipCache, type Membership } from './membership.js';
import { Presence } from './presence.js';

let env: TestEnv;
let redis: Redis;
let fetches = 0;
const lists = new Map<string, Membership>();
const chat = {
  // Chat's answer to GetChat, as the cache asks for it on a miss.
  getMembers: async (_actor: unknown, chatId: string): Promise<Membership> => {
    fetches++;
    const m = lists.get(chatId);
    if (!m) throw new Error('no such chat');
    return { type: m.type, members: new Map(m.members) };
  },
};

beforeAll(async () => {
  env = await createTestEnv('membership');
  redis = connectRedis(env.redisUrl, env.redisPrefix);
});

afterAll(async () => {
  redis?.disconnect();
  await env?.cleanup();
});

const actor = { userId: 'u1', deviceId: 'd1', sessionId: 's' };
const users = (m: Membership) => [...m.members.keys()].sort();

describe('MembershipCache.route', () => {
  it('answers members and presence in one round trip; sees a change made through another node at once', async () => {
    const nodeA = new MembershipCache(redis, chat, 60_000);
    const nodeB = new MembershipCache(redis, chat, 60_000);
    const presence = new Presence(redis, 'node-a', 30_000);
    lists.set('c1', { type: 'group', members: new Map([['u1', 0], ['u2', 0], ['u3', 0]]) });
    await presence.register('u1', 'd1');
    await presence.register('u2', 'd2');

    const first = await nodeA.route('c1', actor, presence);
    expect([users(first.membership), fetches]).toEqual([['u1', 'u2', 'u3'], 1]);
    expect(first.located.get('u2')).toEqual([{ deviceId: 'd2', nodeId: 'node-a' }]);

    // Current: no fetch, the same answer, one command (counted on the connection).
    const commands: string[] = [];
    const send = redis.sendCommand.bind(redis);
    redis.sendCommand = ((cmd: { name: string }) => {
      commands.push(cmd.name);
      return send(cmd as never);
    }) as typeof redis.sendCommand;
    const again = await nodeA.route('c1', actor, presence);
    redis.sendCommand = send;
    expect([users(again.membership), fetches]).toEqual([['u1', 'u2', 'u3'], 1]);
    expect(commands).toEqual(['evalsha']);

    // Node B applies chat's events: u2 removed, u4 added. Node A's next route has them.
    await nodeB.removed('c1', 'u2');
    await presence.register('u4', 'd4');
    await nodeB.added('c1', 'u4', 7);
    const changed = await nodeA.route('c1', actor, presence);
    expect(users(changed.membership)).toEqual(['u1', 'u3', 'u4']);
    expect(changed.membership.members.get('u4')).toBe(7);
    expect([...changed.located.keys()].sort()).toEqual(['u1', 'u4']);
    expect(fetches).toBe(1);

    // Deleted (or expired) there: fetched from chat again.
    await nodeB.deleted('c1');
    lists.set('c1', { type: 'group', members: new Map([['u1', 0]]) });
    expect(users((await nodeA.route('c1', actor, presence)).membership)).toEqual(['u1']);
    expect(fetches).toBe(2);
  });

  it('a list written by an older node (no version) counts as a miss', async () => {
    const node = new MembershipCache(redis, chat, 60_000);
    const presence = new Presence(redis, 'node-a', 30_000);
    lists.set('c2', { type: 'personal', members: new Map([['u1', 0], ['u5', 0]]) });
    await redis.hset('members:c2', ':type', 'personal', 'u1', '0');
    const r = await node.route('c2', actor, presence);
    expect(users(r.membership)).toEqual(['u1', 'u5']);
    expect(await redis.hget('members:c2', ':v')).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('stores an ack in the same round trip as the membership check: only forwards, only for members', async () => {
    const node = new MembershipCache(redis, chat, 60_000);
    const acks = new AckStore(redis, 3600);
    expect(await acks.ackIfMember('d1', 'u1', 'c3', 5)).toBe('unknown'); // no list cached: the caller asks chat
    await node.put('c3', { type: 'group', members: new Map([['u1', 0]]) });
    expect(await acks.ackIfMember('d9', 'u9', 'c3', 5)).toBe('not_member');
    expect(await acks.ackIfMember('d1', 'u1', 'c3', 5)).toBe('stored');
    expect(await acks.ackIfMember('d1', 'u1', 'c3', 3)).toBe('stored');
    expect(await acks.cursors('d1')).toEqual({ c3: 5 });
    expect(await acks.cursors('d9')).toEqual({});
  });
});
