// INTERIM (issue #17.1, replaced at merge by the message content format of
// @bil/crypto content.ts): a message with attachments is the byte 0xFF
// followed by canonical JSON {type:"bil.content.v1", kind:"text", text,
// attachments:[AttachmentRef…]}; any other plaintext is UTF-8 text as before.
import { canonicalBytes, fromUtf8, type AttachmentRef, type CanonicalObject } from '@bil/crypto';

const MARKER = 0xff;

/** The plaintext of a text message carrying attachments. */
export function encodeAttachmentContent(text: string, attachments: readonly AttachmentRef[]): Uint8Array {
  const json = canonicalBytes({ type: 'bil.content.v1', kind: 'text', text, attachments: attachments as unknown as CanonicalObject[] });
  const out = new Uint8Array(json.length + 1);
  out[0] = MARKER;
  out.set(json, 1);
  return out;
}

/** A decrypted plaintext as text and attachments (none for a plain text message). */
export function decodeContent(plaintext: Uint8Array): { text: string; attachments?: AttachmentRef[] } {
  if (plaintext[0] !== MARKER) return { text: fromUtf8(plaintext) };
  const parsed = JSON.parse(fromUtf8(plaintext.subarray(1))) as { type?: unknown; text?: unknown; attachments?: unknown };
  if (parsed.type !== 'bil.content.v1' || typeof parsed.text !== 'string' || !Array.isArray(parsed.attachments)) throw new Error('unknown content');
  return { text: parsed.text, attachments: parsed.attachments as AttachmentRef[] };
}
