// PushDirectory's memory of identity's answers: users without a subscription
// and the subscriptions of users with some are each asked once per interval;
// a revocation (forgetAll) or a push service's "gone" makes the next fan-out
// ask identity again, so a revoked device's subscription is not used; a
// hint from identity (forgetUser) does the same for one user.
import { describe, expect, it } from 'vitest';
import { MAX_PUSH_LOOKUP_IDS } from '@bil/proto/limits';
import type { PushTarget } from '../../app/push/sender.js';
import { PushDirectory } from './push-directory.js';

const sub = (userId: string, deviceId: string): PushTarget => ({ userId, deviceId, endpoint: `https://fcm.googleapis.com/fcm/send/${deviceId}`, p256dh: 'k', auth: 'a' });

function setUp(held: PushTarget[], knownMs = 10_000) {
  const asked: string[][] = [];
  const deleted: string[] = [];
  let clock = 1_000;
  const source = {
    listByUsers: async (ids: string[]) => {
      asked.push(ids);
      return held.filter((t) => ids.includes(t.userId));
    },
    deleteByEndpoint: async (deviceId: string) => void deleted.push(deviceId),
  };
  const directory = new PushDirectory(source, { noneMs: 60_000, knownMs }, () => clock);
  return { directory, asked, deleted, tick: (ms: number) => void (clock += ms) };
}

describe('PushDirectory', () => {
  it('asks identity once per interval for users with subscriptions and for users without', async () => {
    const held = [sub('u1', 'd1'), sub('u1', 'd2')];
    const { directory, asked, tick } = setUp(held);
    expect(await directory.subscriptionsOf(['u1', 'u2'])).toEqual(held);
    expect(await directory.subscriptionsOf(['u1', 'u2'])).toEqual(held);
    expect(asked).toEqual([['u1', 'u2']]);
    tick(10_001); // u1's subscriptions are stale, u2 is still known to have none
    expect(await directory.subscriptionsOf(['u1', 'u2'])).toEqual(held);
    expect(asked).toEqual([['u1', 'u2'], ['u1']]);
    tick(60_000);
    await directory.subscriptionsOf(['u2']);
    expect(asked.at(-1)).toEqual(['u2']);
  });

  it('forgets every remembered subscription at a revocation: the revoked device is not used again', async () => {
    const held = [sub('u1', 'd1'), sub('u1', 'd2')];
    const { directory, asked } = setUp(held);
    await directory.subscriptionsOf(['u1']);
    held.splice(1, 1); // identity deleted d2's subscription with the device
    directory.forgetAll();
    expect(await directory.subscriptionsOf(['u1'])).toEqual([sub('u1', 'd1')]);
    expect(asked).toHaveLength(2);
  });

  it('an answer that was on its way when a revocation came is not remembered', async () => {
    const held = [sub('u1', 'd1'), sub('u1', 'd2')];
    const { directory, asked } = setUp(held);
    const pending = directory.subscriptionsOf(['u1']); // identity answers before d2's revocation…
    directory.forgetAll(); // …which delivery hears before the answer arrives
    expect(await pending).toEqual(held);
    held.splice(1, 1);
    expect(await directory.subscriptionsOf(['u1'])).toEqual([sub('u1', 'd1')]);
    expect(asked).toHaveLength(2);
  });

  it('a subscription the push service says is gone is deleted at identity and that user asked again', async () => {
    const held = [sub('u1', 'd1')];
    const { directory, asked, deleted } = setUp(held);
    await directory.subscriptionsOf(['u1']);
    held.length = 0;
    await directory.gone(sub('u1', 'd1'));
    expect(deleted).toEqual(['d1']);
    expect(await directory.subscriptionsOf(['u1'])).toEqual([]);
    expect(asked).toHaveLength(2);
  });

  it('with PUSH_SUBSCRIPTION_CACHE_MS=0 users with subscriptions are asked every time', async () => {
    const { directory, asked } = setUp([sub('u1', 'd1')], 0);
    await directory.subscriptionsOf(['u1']);
    await directory.subscriptionsOf(['u1']);
    expect(asked).toHaveLength(2);
  });

  it(`asks in batches of ${MAX_PUSH_LOOKUP_IDS} users`, async () => {
    const ids = Array.from({ length: MAX_PUSH_LOOKUP_IDS + 3 }, (_, i) => `u${i}`);
    const { directory, asked } = setUp([sub('u5', 'd5')]);
    expect(await directory.subscriptionsOf(ids)).toEqual([sub('u5', 'd5')]);
    expect(asked.map((b) => b.length)).toEqual([MAX_PUSH_LOOKUP_IDS, 3]);
  });

  it("asks again at once about a user whose device set or removed a subscription (identity's hint)", async () => {
    const held: PushTarget[] = [];
    const { directory, asked } = setUp(held);
    expect(await directory.subscriptionsOf(['u1', 'u2'])).toEqual([]); // both remembered as having none for 60 s
    held.push(sub('u1', 'd1'));
    directory.forgetUser('u1');
    expect(await directory.subscriptionsOf(['u1', 'u2'])).toEqual([sub('u1', 'd1')]);
    expect(asked).toEqual([['u1', 'u2'], ['u1']]);
    held.length = 0; // d1 removed its subscription
    directory.forgetUser('u1');
    expect(await directory.subscriptionsOf(['u1'])).toEqual([]);
    expect(asked).toHaveLength(3);
  });

  it('does not remember a "none" that was on its way when the hint came', async () => {
    const held: PushTarget[] = [];
    const { directory, asked } = setUp(held);
    const pending = directory.subscriptionsOf(['u1']); // identity answers "none"…
    held.push(sub('u1', 'd1'));
    directory.forgetUser('u1'); // …the device subscribes, and its hint arrives before that answer
    expect(await pending).toEqual([]);
    expect(await directory.subscriptionsOf(['u1'])).toEqual([sub('u1', 'd1')]);
    expect(asked).toHaveLength(2);
  });
});
