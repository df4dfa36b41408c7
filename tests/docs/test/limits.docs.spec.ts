// The size limits are defined once (@bil/proto/limits); the services'
// validation and the gateway's schemas import them. What can't import them is
// checked here: docs/chat.md's "Limits" table, the proto comments that state a
// limit, docs/api.md's password rule, and @bil/crypto's own copy of the
// device-list bound (crypto has no dependencies on purpose).
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { MAX_DEVICE_LIST_DEVICES as CRYPTO_MAX_DEVICE_LIST_DEVICES } from '@bil/crypto';
import * as limits from '@bil/proto/limits';
import { readDoc, repoRoot, tableOf } from './markdown.js';

/** 262144 → "262,144", as the docs write numbers. */
const n = (v: number) => v.toLocaleString('en-US');
const mib = (v: number) => `${v / (1024 * 1024)} MiB`;

describe('limits (@bil/proto/limits) against the docs', () => {
  const rows = new Map(tableOf(readDoc('chat.md'), 'Limits').rows.map((r) => [r.what!, r.limit!]));
  const limit = (what: string) => {
    const cell = rows.get(what);
    if (cell === undefined) throw new Error(`docs/chat.md Limits has no row "${what}"`);
    return cell;
  };

  it("docs/chat.md's Limits table states chat's limits", () => {
    expect(limit('envelope ciphertext')).toContain(`${n(limits.MAX_CIPHERTEXT_CHARS)} base64url characters`);
    expect(limit('wrapped keys per message')).toContain(n(limits.MAX_WRAPPED_KEYS));
    expect(limit('epoch record')).toContain(`${mib(limits.MAX_EPOCH_RECORD_CHARS)} of JSON`);
    expect(limit('epoch record')).toContain(`${n(limits.MAX_EPOCH_KEYS)} wrapped epoch keys`);
    expect(limit('group members')).toContain(`(${n(limits.MAX_GROUP_MEMBERS)})`);
    expect(limit('epoch record `metadata`')).toContain(`${limits.MIN_METADATA_BYTES} to ${n(limits.MAX_METADATA_BYTES)} bytes`);
    expect(limit('signed leave')).toContain(`${n(limits.MAX_LEAVE_CHARS)} characters`);
  });

  it('the proto comments that state a limit state the same one', () => {
    const proto = readFileSync(new URL('proto/bil/chat/v1/chat_service.proto', repoRoot), 'utf8').replace(/\n\s*\/\/\s*/g, ' ');
    expect(proto).toContain(`at most ${n(limits.MAX_LEAVE_CHARS)} characters`);
    expect(proto).toContain(`ciphertext at most ${n(limits.MAX_CIPHERTEXT_CHARS)} base64url characters`);
  });

  it("docs/api.md's password rule and @bil/crypto's device-list bound", () => {
    expect(readDoc('api.md')).toContain(`password shorter than ${limits.PASSWORD_MIN} or longer than ${limits.PASSWORD_MAX} characters`);
    expect(CRYPTO_MAX_DEVICE_LIST_DEVICES).toBe(limits.MAX_DEVICE_LIST_DEVICES);
  });
});
