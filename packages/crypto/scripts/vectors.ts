// Writes the protocol test vectors to docs/testvectors/ (run: npm run vectors -w @bil/crypto).
// Keys come from docs/testvectors/keys.json, created once if missing; all other
// randomness is a seeded stream, so re-running reproduces the same files.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { buildVectors, CHECK_TIME, generateVectorKeys, withCheckTime, type VectorKeys } from '../src/testing/vectors.js';
import { buildDeviceListVectors } from '../src/testing/vectors-device-list.js';
import { buildMessageDeleteVectors } from '../src/testing/vectors-message-delete.js';
import { buildChatTimerVectors } from '../src/testing/vectors-chat-timer.js';
import { buildContentVectors } from '../src/testing/vectors-content.js';
import { buildAttachmentVectors } from '../src/testing/vectors-attachment.js';

const dir = fileURLToPath(new URL('../../../docs/testvectors/', import.meta.url));
mkdirSync(dir, { recursive: true });
const keysFile = `${dir}keys.json`;
if (!existsSync(keysFile)) writeFileSync(keysFile, JSON.stringify(await generateVectorKeys(), null, 2) + '\n');
const keys = JSON.parse(readFileSync(keysFile, 'utf8')) as VectorKeys;
// keys.json states the check time too; the keys stay as they are.
if (keys.check_time !== CHECK_TIME) writeFileSync(keysFile, JSON.stringify(withCheckTime(keys), null, 2) + '\n');
const files = { ...(await buildVectors(keys)), ...(await buildDeviceListVectors(keys)), ...buildContentVectors(), ...(await buildAttachmentVectors()), ...(await buildMessageDeleteVectors(keys)), ...(await buildChatTimerVectors(keys)) };
for (const [name, content] of Object.entries(files)) {
  writeFileSync(`${dir}${name}`, JSON.stringify(content, null, 2) + '\n');
  console.log(`wrote ${dir}${name}`);
}
