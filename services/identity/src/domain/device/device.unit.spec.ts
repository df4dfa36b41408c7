import { describe, it } from 'vitest';
import { deciderSpec } from '@bil/testkit';
import { deviceDecider, type DeviceEvent } from './device.js';

const spec = deciderSpec(deviceDecider);
const now = '2026-11-25T10:00:00.000Z';
const keys = { encryptionKey: 'E', signingKey: 'S', certificate: 'C', certificateIssuedAt: 1 };
const registered: DeviceEvent = { type: 'DeviceRegistered', data: { deviceId: 'd1', userId: 'u1', name: 'phone', occurredAt: now, ...keys } };
const revoked: DeviceEvent = { type: 'DeviceRevoked', data: { deviceId: 'd1', userId: 'u1', reason: 'user', occurredAt: now } };

describe('device decider', () => {
  it('registers a device with its keys', () => {
    spec.given().when({ type: 'RegisterDevice', deviceId: 'd1', userId: 'u1', name: 'phone', now, ...keys }).then([registered]);
  });

  it('refuses a taken device id', () => {
    spec.given(registered).when({ type: 'RegisterDevice', deviceId: 'd1', userId: 'u1', name: 'phone', now, ...keys }).thenThrows('device_exists');
  });

  it('lets the owner revoke it', () => {
    spec.given(registered).when({ type: 'RevokeDevice', byUserId: 'u1', reason: 'user', now }).then([revoked]);
  });

  it("hides another user's device behind not found", () => {
    spec.given(registered).when({ type: 'RevokeDevice', byUserId: 'u2', reason: 'user', now }).thenThrows('device_not_found');
    spec.given().when({ type: 'RevokeDevice', byUserId: 'u1', reason: 'user', now }).thenThrows('device_not_found');
  });

  it('treats revoking twice as done', () => {
    spec.given(registered, revoked).when({ type: 'RevokeDevice', byUserId: 'u1', reason: 'user', now }).then([]);
  });
});
