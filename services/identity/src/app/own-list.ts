// The caller's own signed device list: parsed and verified under its account's
// identity key, and stored in a transaction once it names exactly the active
// devices after that transaction's change (the version rule is the decider's).
import { failedPrecondition, type Tx } from '@bil/runtime';
import { userDecider, userStream } from '../domain/user/user.js';
import type { Actor, IdentityDeps } from './context.js';
import { parseDeviceList, requireListMatchesActive, type ParsedDeviceList } from './device-lists.js';
import { userRow } from './repository.js';
import { noSuchUser } from './rows.js';

/** Parses a list the caller sent for its own account, verified under the account identity key. */
export async function parseOwnList(deps: IdentityDeps, actor: Actor, raw: unknown): Promise<ParsedDeviceList | null> {
  if (raw === undefined || raw === '') return null;
  const row = await userRow(deps, actor.userId);
  if (!row || row.status !== 'active') throw noSuchUser();
  if (!row.identity_key) throw failedPrecondition('no_identity_key', 'the account has no identity key yet');
  return parseDeviceList(raw, { userId: actor.userId, identityKey: row.identity_key });
}

/** Checks the list against the active devices (after this transaction's change) and appends it (version rule in the decider). */
export async function publishInTx(deps: IdentityDeps, tx: Tx, userId: string, list: ParsedDeviceList, now: string): Promise<void> {
  await requireListMatchesActive(tx, userId, list);
  await deps.store.handleIn(tx, userDecider, userStream(userId), publishCommand(list, now));
}

export function publishCommand(list: ParsedDeviceList, now: string) {
  return { type: 'PublishDeviceList' as const, version: list.version, deviceList: list.text, deviceCount: list.devices.length, now };
}
