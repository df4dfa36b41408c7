// The device aggregate (stream `device-<id>`): a device's public keys and
// certificate, and whether it is still trusted.
import { failedPrecondition, notFound, type Decider } from '@bil/runtime/domain';

export type RevocationReason = 'user' | 'account_deleted' | 'identity_reset';

export interface DeviceKeys {
  encryptionKey: string;
  signingKey: string;
  certificate: string;
  certificateIssuedAt: number;
}

/**
 * A device as everyone may see it (the directory's answers, the
 * device.registered event): its ids, name and public keys with their
 * certificate, the certificate time as the wire's int64 string.
 */
export function publicDevice(d: { deviceId: string; userId: string; name: string } & DeviceKeys) {
  return {
    deviceId: d.deviceId,
    userId: d.userId,
    name: d.name,
    encryptionKey: d.encryptionKey,
    signingKey: d.signingKey,
    certificate: d.certificate,
    certificateIssuedAt: String(d.certificateIssuedAt),
  };
}

export type DeviceEvent =
  | { type: 'DeviceRegistered'; data: { deviceId: string; userId: string; name: string; occurredAt: string } & DeviceKeys }
  | { type: 'DeviceRevoked'; data: { deviceId: string; userId: string; reason: RevocationReason; occurredAt: string } };

export type DeviceCommand =
  | ({ type: 'RegisterDevice'; deviceId: string; userId: string; name: string; now: string } & DeviceKeys)
  | { type: 'RevokeDevice'; byUserId: string; reason: RevocationReason; now: string };

export type DeviceState =
  | { status: 'none' }
  | ({ status: 'active' | 'revoked'; deviceId: string; userId: string; name: string; createdAt: string } & DeviceKeys);

export const deviceStream = (deviceId: string) => `device-${deviceId}`;

export function decideDevice(command: DeviceCommand, state: DeviceState): DeviceEvent[] {
  switch (command.type) {
    case 'RegisterDevice': {
      if (state.status !== 'none') throw failedPrecondition('device_exists', 'this device id is taken');
      const { type: _t, now, ...rest } = command;
      return [{ type: 'DeviceRegistered', data: { ...rest, occurredAt: now } }];
    }
    case 'RevokeDevice': {
      // Someone else's device is reported as missing: ids are not an oracle.
      if (state.status === 'none' || state.userId !== command.byUserId) throw notFound('device_not_found', 'no such device');
      if (state.status === 'revoked') return [];
      return [{ type: 'DeviceRevoked', data: { deviceId: state.deviceId, userId: state.userId, reason: command.reason, occurredAt: command.now } }];
    }
    default: {
      const unknown: never = command;
      throw new Error(`unknown command ${(unknown as { type: string }).type}`);
    }
  }
}

export function evolveDevice(state: DeviceState, event: DeviceEvent): DeviceState {
  switch (event.type) {
    case 'DeviceRegistered': {
      const { occurredAt, ...d } = event.data;
      return { status: 'active', ...d, createdAt: occurredAt };
    }
    case 'DeviceRevoked':
      return state.status === 'none' ? state : { ...state, status: 'revoked' };
    default: {
      const unknown: never = event;
      return unknown;
    }
  }
}

export const deviceDecider: Decider<DeviceCommand, DeviceEvent, DeviceState> = {
  initialState: () => ({ status: 'none' }),
  decide: decideDevice,
  evolve: evolveDevice,
};
