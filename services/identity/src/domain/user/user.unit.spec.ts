import { describe, it, expect } from 'vitest';
import { deciderSpec } from '@bil/testkit';
import { userDecider, type UserEvent } from './user.js';

const spec = deciderSpec(userDecider);
const now = '2026-11-25T10:00:00.000Z';
const registered: UserEvent = {
  type: 'UserRegistered',
  data: { userId: 'u1', username: 'Alice', displayName: '', passwordHash: 'h1', occurredAt: now },
};
const keySet: UserEvent = { type: 'IdentityKeySet', data: { userId: 'u1', identityKey: 'K1', reset: false, occurredAt: now } };
const deleted: UserEvent = { type: 'UserDeleted', data: { userId: 'u1', occurredAt: now } };

describe('user decider', () => {
  it('registers a new user', () => {
    spec
      .given()
      .when({ type: 'RegisterUser', userId: 'u1', username: 'Alice', displayName: '', passwordHash: 'h1', now })
      .then([registered]);
  });

  it('refuses to register the same user id twice', () => {
    spec
      .given(registered)
      .when({ type: 'RegisterUser', userId: 'u1', username: 'Alice', displayName: '', passwordHash: 'h1', now })
      .thenThrows('user_exists');
  });

  it('sets the identity key on the first device', () => {
    spec.given(registered).when({ type: 'SetIdentityKey', identityKey: 'K1', reset: false, now }).then([keySet]);
  });

  it('keeps the same identity key without an event', () => {
    spec.given(registered, keySet).when({ type: 'SetIdentityKey', identityKey: 'K1', reset: false, now }).then([]);
  });

  it('refuses another identity key unless it is a reset', () => {
    spec.given(registered, keySet).when({ type: 'SetIdentityKey', identityKey: 'K2', reset: false, now }).thenThrows('identity_key_mismatch');
  });

  it('marks a replaced identity key as a reset', () => {
    spec
      .given(registered, keySet)
      .when({ type: 'SetIdentityKey', identityKey: 'K2', reset: true, now })
      .then([{ type: 'IdentityKeySet', data: { userId: 'u1', identityKey: 'K2', reset: true, occurredAt: now } }]);
  });

  it('changes the password hash', () => {
    const state = spec.given(registered).when({ type: 'ChangePassword', passwordHash: 'h2', now }).thenState();
    expect(state).toMatchObject({ status: 'active', passwordHash: 'h2' });
  });

  it('updates the display name only when it changes', () => {
    spec.given(registered).when({ type: 'UpdateProfile', displayName: '', now }).then([]);
    spec
      .given(registered)
      .when({ type: 'UpdateProfile', displayName: 'Alice A.', now })
      .then([{ type: 'ProfileUpdated', data: { userId: 'u1', displayName: 'Alice A.', occurredAt: now } }]);
  });

  it('deletes an account once; a deleted account accepts nothing', () => {
    spec.given(registered).when({ type: 'DeleteUser', now }).then([deleted]);
    spec.given(registered, deleted).when({ type: 'DeleteUser', now }).thenThrows('user_not_found');
    spec.given(registered, deleted).when({ type: 'ChangePassword', passwordHash: 'x', now }).thenThrows('user_not_found');
    spec.given().when({ type: 'UpdateProfile', displayName: 'x', now }).thenThrows('user_not_found');
  });

  describe('signed device lists', () => {
    const published = (version: number): UserEvent => ({
      type: 'DeviceListPublished',
      data: { userId: 'u1', version, deviceList: `{"v":${version}}`, deviceCount: 1, occurredAt: now },
    });
    const publish = (version: number) => ({ type: 'PublishDeviceList' as const, version, deviceList: `{"v":${version}}`, deviceCount: 1, now });

    it('the first list is version 1, then exactly current + 1', () => {
      spec.given(registered, keySet).when(publish(1)).then([published(1)]);
      spec.given(registered, keySet, published(1)).when(publish(2)).then([published(2)]);
      expect(spec.given(registered, keySet, published(1), published(2)).when(publish(3)).thenState()).toMatchObject({ deviceListVersion: 3 });
    });

    it('refuses a version that is not current + 1 (replay, rollback, skip)', () => {
      for (const v of [0, 1, 3, 7]) spec.given(registered, keySet, published(1)).when(publish(v)).thenThrows('device_list_version');
      spec.given(registered, keySet).when(publish(2)).thenThrows('device_list_version');
    });

    it('an identity reset starts a new list at version 1', () => {
      const reset: UserEvent = { type: 'IdentityKeySet', data: { userId: 'u1', identityKey: 'K2', reset: true, occurredAt: now } };
      spec.given(registered, keySet, published(1), published(2), reset).when(publish(1)).then([published(1)]);
      spec.given(registered, keySet, published(1), published(2), reset).when(publish(3)).thenThrows('device_list_version');
    });

    it('a deleted account publishes nothing', () => {
      spec.given(registered, keySet, published(1), deleted).when(publish(2)).thenThrows('user_not_found');
    });
  });
});

