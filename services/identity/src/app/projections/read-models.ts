// Read models of the identity context, updated in the append transaction:
// `users` (directory; its unique username_key is what makes usernames unique
// ignoring case), `devices` (key directory) and `sessions` (to end a device's
// or a user's sessions). They can be rebuilt from the events.
import type { Projection, StoredEvent, Sql } from '@bil/runtime';
import type { UserEvent } from '../../domain/user/user.js';
import type { DeviceEvent } from '../../domain/device/device.js';
import type { SessionEvent } from '../../domain/session/session.js';
import { usernameKey } from '../../domain/validation.js';

type IdentityEvent = UserEvent | DeviceEvent | SessionEvent;

async function applyOne(q: Sql, e: StoredEvent<IdentityEvent>): Promise<void> {
  const ev = { type: e.type, data: e.data } as IdentityEvent;
  switch (ev.type) {
    case 'UserRegistered':
      await q.query(
        `INSERT INTO identity.users (user_id, username, username_key, display_name, status, created_at)
         VALUES (?, ?, ?, ?, 'active', ?)`,
        [ev.data.userId, ev.data.username, usernameKey(ev.data.username), ev.data.displayName, ev.data.occurredAt],
      );
      return;
    case 'IdentityKeySet':
      await q.query(`UPDATE identity.users SET identity_key = ?, identity_key_changed_at = ? WHERE user_id = ?`, [
        ev.data.identityKey,
        ev.data.occurredAt,
        ev.data.userId,
      ]);
      // A new identity key starts a new device list; the old one no longer verifies.
      if (ev.data.reset) await q.query(`UPDATE identity.users SET device_list = NULL, device_list_version = 0 WHERE user_id = ?`, [ev.data.userId]);
      return;
    case 'DeviceListPublished':
      await q.query(`UPDATE identity.users SET device_list = ?, device_list_version = ? WHERE user_id = ?`, [
        ev.data.deviceList,
        ev.data.version,
        ev.data.userId,
      ]);
      return;
    case 'ProfileUpdated':
      await q.query(`UPDATE identity.users SET display_name = ? WHERE user_id = ?`, [ev.data.displayName, ev.data.userId]);
      return;
    case 'PasswordChanged':
      return;
    case 'UserDeleted':
      // The row stays, so the username stays reserved (no impersonation by re-registration).
      await q.query(`UPDATE identity.users SET status = 'deleted', display_name = '', deleted_at = ? WHERE user_id = ?`, [
        ev.data.occurredAt,
        ev.data.userId,
      ]);
      return;
    case 'DeviceRegistered':
      await q.query(
        `INSERT INTO identity.devices (device_id, user_id, name, encryption_key, signing_key, certificate, certificate_issued_at, status, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, 'active', ?)`,
        [
          ev.data.deviceId,
          ev.data.userId,
          ev.data.name,
          ev.data.encryptionKey,
          ev.data.signingKey,
          ev.data.certificate,
          ev.data.certificateIssuedAt,
          ev.data.occurredAt,
        ],
      );
      return;
    case 'DeviceRevoked':
      await q.query(`UPDATE identity.devices SET status = 'revoked', revoked_at = ? WHERE device_id = ?`, [ev.data.occurredAt, ev.data.deviceId]);
      // A revoked device (one by one, or all with the account) is woken no more: its push subscription goes in the same transaction.
      await q.query(`DELETE FROM identity.push_subscriptions WHERE device_id = ?`, [ev.data.deviceId]);
      return;
    case 'SessionStarted':
      await q.query(
        `INSERT INTO identity.sessions (session_id, user_id, device_id, status, expires_at, created_at) VALUES (?, ?, ?, 'active', ?, ?)`,
        [ev.data.sessionId, ev.data.userId, ev.data.deviceId, ev.data.expiresAt, ev.data.occurredAt],
      );
      return;
    case 'SessionRefreshed':
      await q.query(`UPDATE identity.sessions SET expires_at = ?, refreshed_at = ? WHERE session_id = ?`, [
        ev.data.expiresAt,
        ev.data.occurredAt,
        ev.data.sessionId,
      ]);
      return;
    case 'SessionEnded':
      await q.query(`UPDATE identity.sessions SET status = 'ended', ended_reason = ? WHERE session_id = ?`, [ev.data.reason, ev.data.sessionId]);
      return;
    default: {
      const unknown: never = ev;
      return unknown;
    }
  }
}

export const identityReadModels: Projection = {
  name: 'identity-read-models',
  tables: ['sessions', 'devices', 'users'],
  async apply(q, events) {
    for (const e of events) await applyOne(q, e as StoredEvent<IdentityEvent>);
  },
};
