// What identity publishes: the public contract in proto/bil/identity/v1/events.proto.
// Password and refresh-token hashes never leave the service; session events
// are internal.
import { eventSubject, type OutboundMessage, type StoredEvent } from '@bil/runtime';
import type { UserEvent } from '../domain/user/user.js';
import type { DeviceEvent, RevocationReason } from '../domain/device/device.js';

const REASONS: Record<RevocationReason, string> = {
  user: 'DEVICE_REVOCATION_REASON_USER',
  account_deleted: 'DEVICE_REVOCATION_REASON_ACCOUNT_DELETED',
  identity_reset: 'DEVICE_REVOCATION_REASON_IDENTITY_RESET',
};

export function identityIntegrationEvent(prefix: string, stored: StoredEvent): OutboundMessage | null {
  const e = { type: stored.type, data: stored.data } as UserEvent | DeviceEvent | { type: string; data: unknown };
  const subject = (aggregate: string, name: string) => eventSubject(prefix, 'identity', aggregate, name);
  switch (e.type) {
    case 'UserRegistered': {
      const d = (e as Extract<UserEvent, { type: 'UserRegistered' }>).data;
      return { subject: subject('user', 'registered'), payload: { userId: d.userId, username: d.username, displayName: d.displayName, occurredAt: d.occurredAt } };
    }
    case 'IdentityKeySet': {
      const d = (e as Extract<UserEvent, { type: 'IdentityKeySet' }>).data;
      return { subject: subject('user', 'identity_key_set'), payload: { ...d } };
    }
    case 'ProfileUpdated': {
      const d = (e as Extract<UserEvent, { type: 'ProfileUpdated' }>).data;
      return { subject: subject('user', 'profile_updated'), payload: { ...d } };
    }
    case 'PasswordChanged': {
      const d = (e as Extract<UserEvent, { type: 'PasswordChanged' }>).data;
      return { subject: subject('user', 'password_changed'), payload: { userId: d.userId, occurredAt: d.occurredAt } };
    }
    case 'UserDeleted': {
      const d = (e as Extract<UserEvent, { type: 'UserDeleted' }>).data;
      return { subject: subject('user', 'deleted'), payload: { ...d } };
    }
    case 'DeviceListPublished': {
      const d = (e as Extract<UserEvent, { type: 'DeviceListPublished' }>).data;
      // The list itself is served by the directory; the event says that it changed.
      return {
        subject: subject('user', 'device_list_published'),
        payload: { userId: d.userId, version: String(d.version), deviceCount: d.deviceCount, occurredAt: d.occurredAt },
      };
    }
    case 'DeviceRegistered': {
      const d = (e as Extract<DeviceEvent, { type: 'DeviceRegistered' }>).data;
      return { subject: subject('device', 'registered'), payload: { ...d, certificateIssuedAt: String(d.certificateIssuedAt) } };
    }
    case 'DeviceRevoked': {
      const d = (e as Extract<DeviceEvent, { type: 'DeviceRevoked' }>).data;
      return { subject: subject('device', 'revoked'), payload: { deviceId: d.deviceId, userId: d.userId, reason: REASONS[d.reason], occurredAt: d.occurredAt } };
    }
    default:
      return null;
  }
}
