// Test support (excluded from the build): docs/testvectors/chat-timer.json,
// a signed disappearing-message timer statement (bil.chat-timer.v1) by bob
// device 1 for alice and bob's personal chat. Kept apart from vectors.ts so
// each vector file's builder can change on its own.
import { canonicalize } from '../canonical-json.js';
import { signChatTimer } from '../chat-timer.js';
import { personalChatId } from '../direct.js';
import { CHECK_TIME, CHECK_TIME_NOTE, loadVectorKeys, NOW, type VectorKeys } from './vectors.js';

/** The content of chat-timer.json, keyed by file name. */
export async function buildChatTimerVectors(keys: VectorKeys): Promise<Record<string, unknown>> {
  const people = await loadVectorKeys(keys);
  const alice = people.alice!.devices[0]!.local;
  const bob = people.bob!.devices[0]!.local;
  const chatId = await personalChatId(alice.userId, bob.userId);
  const statement = signChatTimer({ chatId, disappearingMs: 7 * 86_400_000, version: 2, device: bob, createdAt: NOW + 40_000 });
  return {
    'chat-timer.json': {
      description:
        `A signed disappearing-message timer for a personal chat (docs/protocol.md, "Disappearing messages"): bob sets 7 days from his device 1, replacing version 1. signature_input is the exact UTF-8 text signed; it verifies under signing_key (keys.json, bob device 1, certified by bob's identity key). members are the chat's two people. ${CHECK_TIME_NOTE}`,
      check_time: CHECK_TIME,
      members: [alice.userId, bob.userId],
      signing_key: keys.users.bob!.devices[0]!.signing_key,
      signature_input: canonicalize(statement.payload as never),
      statement,
    },
  };
}
