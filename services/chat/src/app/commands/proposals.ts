// Input checks the membership and epoch commands share (before the decider
// runs): member lists, roles, the caller's epoch proposal.
import { failedPrecondition, invalidArgument } from '@bil/runtime';
import type { ChatState, EpochProposal, MemberEntry, Role } from '../../domain/chat/chat.js';
import { MAX_EPOCH_KEYS, parseEpochRecord, validateUuid, validateWrappedKeys } from '../../domain/validation.js';
import { chatNotFound, type Actor, type ChatSettings, type MemberInput } from '../context.js';

export function parseRole(raw: Role | undefined, def: Role): Role {
  if (raw === undefined) return def;
  if (raw !== 'owner' && raw !== 'admin' && raw !== 'member') throw invalidArgument('invalid_role', 'role must be owner, admin or member', { field: 'role' });
  return raw;
}

export function parseProposal(actor: Actor, rawRecord: unknown, rawKeys: unknown): Omit<EpochProposal, 'directory'> {
  const record = parseEpochRecord(rawRecord);
  const keys = validateWrappedKeys(rawKeys ?? [], 'epoch_keys', MAX_EPOCH_KEYS);
  if (record.signerUserId !== actor.userId || record.signerDeviceId !== actor.deviceId) {
    throw invalidArgument('epoch_signer_mismatch', 'the record must be signed by the calling device', { field: 'epoch_record' });
  }
  return { record, keys };
}

export function memberEntries(settings: ChatSettings, raw: MemberInput[]): MemberEntry[] {
  if (!Array.isArray(raw)) throw invalidArgument('invalid_members', 'members must be a list', { field: 'members' });
  if (raw.length > settings.maxGroupMembers) {
    throw failedPrecondition('too_many_members', `a group has at most ${settings.maxGroupMembers} members`, { limit: settings.maxGroupMembers });
  }
  return raw.map((m, i) => ({ userId: validateUuid(m.userId, `members[${i}].user_id`), role: parseRole(m.role, 'member') }));
}

export function memberIds(state: ChatState): string[] {
  return state.status === 'active' ? Object.keys(state.members) : [];
}

export function requireMemberState(state: ChatState, userId: string): void {
  if (state.status !== 'active' || !state.members[userId]) throw chatNotFound();
}
