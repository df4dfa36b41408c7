// Test support (excluded from the build): docs/testvectors/message-delete.json,
// a signed tombstone (bil.message-delete.v1) by alice device 2 for a message
// alice sent. Kept apart from vectors.ts so each vector file's builder can change on its own.
import { canonicalize } from '../canonical-json.js';
import { signMessageDelete } from '../message-delete.js';
import { CHECK_TIME, CHECK_TIME_NOTE, GROUP_CHAT_ID, loadVectorKeys, NOW, type VectorKeys } from './vectors.js';

export const DELETED_MESSAGE_ID = '0193c2a5-0000-7000-8000-0000000000d1';

/** The content of message-delete.json, keyed by file name. */
export async function buildMessageDeleteVectors(keys: VectorKeys): Promise<Record<string, unknown>> {
  const alice = (await loadVectorKeys(keys)).alice!;
  const device = alice.devices[1]!;
  const tombstone = signMessageDelete({ chatId: GROUP_CHAT_ID, messageId: DELETED_MESSAGE_ID, device: device.local, deletedAt: NOW + 30_000 });
  return {
    'message-delete.json': {
      description:
        `A signed tombstone (docs/protocol.md, "Delete for everyone"): alice deletes her message for everyone from her device 2. signature_input is the exact UTF-8 text signed; it verifies under signing_key (keys.json, alice device 2). ${CHECK_TIME_NOTE}`,
      check_time: CHECK_TIME,
      signing_key: keys.users.alice!.devices[1]!.signing_key,
      signature_input: canonicalize(tombstone.payload as never),
      tombstone,
    },
  };
}
