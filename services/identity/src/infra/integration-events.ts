// What identity publishes: the public contract in proto/bil/identity/v1/events.proto.
// Each payload is the generated type of its message (`@bil/proto/events`), so
// a field renamed or added in the proto fails to compile here. Password and
// refresh-token hashes never leave the service; session events are internal.
import { identityEvent, type DeviceRevoked } from '@bil/proto/events';
import type { OutboundMessage, StoredEvent } from '@bil/runtime';
import type { UserEvent } from '../domain/user/user.js';
import { publicDevice, type DeviceEvent, type RevocationReason } from '../domain/device/device.js';

const REASONS: Record<RevocationReason, DeviceRevoked['reason']> = {
  user: 'DEVICE_REVOCATION_REASON_USER',
  account_deleted: 'DEVICE_REVOCATION_REASON_ACCOUNT_DELETED',
  identity_reset: 'DEVICE_REVOCATION_REASON_IDENTITY_RESET',
};

export function identityIntegrationEvent(prefix: string, stored: StoredEvent): OutboundMessage | null {
  const e = { type: stored.type, data: stored.data } as UserEvent | DeviceEvent;
  switch (e.type) {
    case 'UserRegistered': {
      const d = e.data;
      return identityEvent(prefix, 'user.registered', { userId: d.userId, username: d.username, displayName: d.displayName, occurredAt: d.occurredAt });
    }
    case 'IdentityKeySet': {
      const d = e.data;
      return identityEvent(prefix, 'user.identity_key_set', { userId: d.userId, identityKey: d.identityKey, reset: d.reset, occurredAt: d.occurredAt });
    }
    case 'ProfileUpdated': {
      const d = e.data;
      return identityEvent(prefix, 'user.profile_updated', { userId: d.userId, displayName: d.displayName, occurredAt: d.occurredAt });
    }
    case 'PasswordChanged': {
      const d = e.data;
      return identityEvent(prefix, 'user.password_changed', { userId: d.userId, occurredAt: d.occurredAt });
    }
    case 'UserDeleted': {
      const d = e.data;
      return identityEvent(prefix, 'user.deleted', { userId: d.userId, occurredAt: d.occurredAt });
    }
    case 'DeviceListPublished': {
      const d = e.data;
      // The list itself is served by the directory; the event says that it changed.
      return identityEvent(prefix, 'user.device_list_published', {
        userId: d.userId,
        version: String(d.version),
        deviceCount: d.deviceCount,
        occurredAt: d.occurredAt,
      });
    }
    case 'DeviceRegistered': {
      const d = e.data;
      return identityEvent(prefix, 'device.registered', { ...publicDevice(d), occurredAt: d.occurredAt });
    }
    case 'DeviceRevoked': {
      const d = e.data;
      return identityEvent(prefix, 'device.revoked', { deviceId: d.deviceId, userId: d.userId, reason: REASONS[d.reason], occurredAt: d.occurredAt });
    }
    default:
      return null; // session events and the rest stay inside the service
  }
}
