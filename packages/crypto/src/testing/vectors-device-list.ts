// Test support (excluded from the build): docs/testvectors/device-list.json,
// alice's signed device lists as her account grows and closes. Kept apart
// from vectors.ts so that each vector file's builder can change on its own.
import { canonicalize } from '../canonical-json.js';
import { deviceListEntryOf, signDeviceList } from '../device-list.js';
import { verifyDevice } from '../certificate.js';
import { CHECK_TIME, CHECK_TIME_NOTE, loadVectorKeys, NOW, type VectorKeys } from './vectors.js';

/** The content of device-list.json, keyed by file name. */
export async function buildDeviceListVectors(keys: VectorKeys): Promise<Record<string, unknown>> {
  const alice = (await loadVectorKeys(keys)).alice!;
  const userId = keys.users.alice!.user_id;
  const entries = [];
  for (const [i, d] of alice.devices.entries()) entries.push(deviceListEntryOf(await verifyDevice(d.record, alice.identity.publicKey), NOW + i * 1000));
  const steps = [
    { what: 'first device registered', version: 1, devices: entries.slice(0, 1) },
    { what: 'device 2 linked', version: 2, devices: entries },
    { what: 'device 1 revoked', version: 3, devices: entries.slice(1) },
    { what: 'account deleted: the closing list', version: 4, devices: [] },
  ];
  return {
    'device-list.json': {
      description:
        `Alice's signed device lists (docs/protocol.md, "Signed device lists"): payload is the exact UTF-8 text the identity key signed. Each list verifies under keys.json's alice identity_key. ${CHECK_TIME_NOTE}`,
      check_time: CHECK_TIME,
      user_id: userId,
      identity_key: keys.users.alice!.identity_key,
      vectors: steps.map((s, i) => {
        const list = signDeviceList({ identity: alice.identity, userId, version: s.version, devices: s.devices, createdAt: NOW + 10_000 + i * 1000 });
        return { what: s.what, payload: canonicalize(list.payload as never), list };
      }),
    },
  };
}
