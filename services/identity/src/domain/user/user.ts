// The user aggregate (stream `user-<id>`): account, password hash, account
// identity key, profile. Pure decider: no I/O; the application layer checks
// passwords (async KDF) before it sends a command here.
import { AppError, failedPrecondition, notFound, type Decider } from '@bil/runtime/domain';

export type UserEvent =
  | { type: 'UserRegistered'; data: { userId: string; username: string; displayName: string; passwordHash: string; occurredAt: string } }
  | { type: 'IdentityKeySet'; data: { userId: string; identityKey: string; reset: boolean; occurredAt: string } }
  | { type: 'ProfileUpdated'; data: { userId: string; displayName: string; occurredAt: string } }
  | { type: 'PasswordChanged'; data: { userId: string; passwordHash: string; occurredAt: string } }
  | { type: 'UserDeleted'; data: { userId: string; occurredAt: string } }
  | { type: 'DeviceListPublished'; data: { userId: string; version: number; deviceList: string; deviceCount: number; occurredAt: string } };

export type UserCommand =
  | { type: 'RegisterUser'; userId: string; username: string; displayName: string; passwordHash: string; now: string }
  | { type: 'SetIdentityKey'; identityKey: string; reset: boolean; now: string }
  | { type: 'UpdateProfile'; displayName: string; now: string }
  | { type: 'ChangePassword'; passwordHash: string; now: string }
  | { type: 'DeleteUser'; now: string }
  /** The list was verified (signature, devices) by the application layer; the decider owns the version rule. */
  | { type: 'PublishDeviceList'; version: number; deviceList: string; deviceCount: number; now: string };

export type UserState =
  | { status: 'none' }
  | {
      status: 'active';
      userId: string;
      username: string;
      displayName: string;
      passwordHash: string;
      identityKey: string | null;
      identityKeyChangedAt: string | null;
      /**
       * Version of the latest signed device list; 0 before the first (and again
       * after an identity reset). Absent in state snapshots stored before
       * device lists existed: read it with {@link deviceListVersionOf}.
       */
      deviceListVersion?: number;
      createdAt: string;
    }
  | { status: 'deleted'; userId: string; username: string };

export type ActiveUser = Extract<UserState, { status: 'active' }>;

export const userStream = (userId: string) => `user-${userId}`;

/** The stored device-list version of an account (0: none yet). */
export function deviceListVersionOf(u: ActiveUser): number {
  return u.deviceListVersion ?? 0;
}

function requireActive(state: UserState): ActiveUser {
  if (state.status !== 'active') throw notFound('user_not_found', 'no such user');
  return state;
}

function register(c: Extract<UserCommand, { type: 'RegisterUser' }>, s: UserState): UserEvent[] {
  if (s.status !== 'none') throw failedPrecondition('user_exists', 'this user id is taken');
  return [
    {
      type: 'UserRegistered',
      data: { userId: c.userId, username: c.username, displayName: c.displayName, passwordHash: c.passwordHash, occurredAt: c.now },
    },
  ];
}

function setIdentityKey(c: Extract<UserCommand, { type: 'SetIdentityKey' }>, s: UserState): UserEvent[] {
  const u = requireActive(s);
  if (u.identityKey === c.identityKey) return [];
  if (u.identityKey !== null && !c.reset) {
    throw failedPrecondition('identity_key_mismatch', 'the account already has another identity key; link from an existing device or reset the identity');
  }
  return [{ type: 'IdentityKeySet', data: { userId: u.userId, identityKey: c.identityKey, reset: u.identityKey !== null, occurredAt: c.now } }];
}

function updateProfile(c: Extract<UserCommand, { type: 'UpdateProfile' }>, s: UserState): UserEvent[] {
  const u = requireActive(s);
  if (u.displayName === c.displayName) return [];
  return [{ type: 'ProfileUpdated', data: { userId: u.userId, displayName: c.displayName, occurredAt: c.now } }];
}

function changePassword(c: Extract<UserCommand, { type: 'ChangePassword' }>, s: UserState): UserEvent[] {
  const u = requireActive(s);
  return [{ type: 'PasswordChanged', data: { userId: u.userId, passwordHash: c.passwordHash, occurredAt: c.now } }];
}

function deleteUser(c: Extract<UserCommand, { type: 'DeleteUser' }>, s: UserState): UserEvent[] {
  const u = requireActive(s);
  return [{ type: 'UserDeleted', data: { userId: u.userId, occurredAt: c.now } }];
}

function publishDeviceList(c: Extract<UserCommand, { type: 'PublishDeviceList' }>, s: UserState): UserEvent[] {
  const u = requireActive(s);
  const expected = deviceListVersionOf(u) + 1;
  if (c.version !== expected) {
    throw new AppError('conflict', 'device_list_version', `the device list must have version ${expected}`, {
      current_version: expected - 1,
      expected_version: expected,
    });
  }
  return [
    { type: 'DeviceListPublished', data: { userId: u.userId, version: c.version, deviceList: c.deviceList, deviceCount: c.deviceCount, occurredAt: c.now } },
  ];
}

export function decideUser(command: UserCommand, state: UserState): UserEvent[] {
  switch (command.type) {
    case 'RegisterUser':
      return register(command, state);
    case 'SetIdentityKey':
      return setIdentityKey(command, state);
    case 'UpdateProfile':
      return updateProfile(command, state);
    case 'ChangePassword':
      return changePassword(command, state);
    case 'DeleteUser':
      return deleteUser(command, state);
    case 'PublishDeviceList':
      return publishDeviceList(command, state);
    default: {
      const unknown: never = command;
      throw new Error(`unknown command ${(unknown as { type: string }).type}`);
    }
  }
}

export function evolveUser(state: UserState, event: UserEvent): UserState {
  switch (event.type) {
    case 'UserRegistered':
      return {
        status: 'active',
        userId: event.data.userId,
        username: event.data.username,
        displayName: event.data.displayName,
        passwordHash: event.data.passwordHash,
        identityKey: null,
        identityKeyChangedAt: null,
        deviceListVersion: 0,
        createdAt: event.data.occurredAt,
      };
    case 'IdentityKeySet':
      return state.status === 'active'
        ? {
            ...state,
            identityKey: event.data.identityKey,
            identityKeyChangedAt: event.data.occurredAt,
            // A new identity key starts a new list (signed by the new key, from version 1).
            deviceListVersion: event.data.reset ? 0 : deviceListVersionOf(state),
          }
        : state;
    case 'ProfileUpdated':
      return state.status === 'active' ? { ...state, displayName: event.data.displayName } : state;
    case 'PasswordChanged':
      return state.status === 'active' ? { ...state, passwordHash: event.data.passwordHash } : state;
    case 'UserDeleted':
      return state.status === 'active' ? { status: 'deleted', userId: state.userId, username: state.username } : state;
    case 'DeviceListPublished':
      return state.status === 'active' ? { ...state, deviceListVersion: event.data.version } : state;
    default: {
      const unknown: never = event;
      return unknown;
    }
  }
}

export const userDecider: Decider<UserCommand, UserEvent, UserState> = {
  initialState: () => ({ status: 'none' }),
  decide: decideUser,
  evolve: evolveUser,
};
