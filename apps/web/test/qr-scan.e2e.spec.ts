// Scanning a QR code with the camera, in Chromium with a fake camera: the
// browser is started with --use-fake-device-for-media-stream and
// --use-file-for-fake-video-capture pointing at a .y4m video this test writes,
// showing the QR code (from uqr's matrix) of the safety number Bob's SDK
// computes. Alice opens the safety number, scans, and the page marks the
// contact verified (jsQR decodes where the browser has no BarcodeDetector, as
// Chromium on Linux).
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encode } from 'uqr';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BilClient, MemoryKeyStore, formatSafetyNumber } from '@bil/sdk';
import { axe, closeAll, person, register, run, skipReason, startWebSystem, type Person, type WebSystem } from './browser.js';

/** A few frames of a 4:2:0 YUV4MPEG2 video showing `text` as a QR code, black on white. */
function qrVideo(text: string): Buffer {
  const qr = encode(text, { ecc: 'M', border: 4 });
  const scale = 8;
  const side = qr.size * scale;
  const w = side + (side % 2);
  const h = w;
  const y = Buffer.alloc(w * h, 235);
  for (let row = 0; row < qr.size; row++) {
    for (let col = 0; col < qr.size; col++) {
      if (!qr.data[row]![col]) continue;
      for (let dy = 0; dy < scale; dy++) y.fill(16, (row * scale + dy) * w + col * scale, (row * scale + dy) * w + col * scale + scale);
    }
  }
  const chroma = Buffer.alloc((w / 2) * (h / 2) * 2, 128);
  const frame = Buffer.concat([Buffer.from('FRAME\n'), y, chroma]);
  return Buffer.concat([Buffer.from(`YUV4MPEG2 W${w} H${h} F10:1 Ip A1:1 C420jpeg\n`), frame, frame, frame]);
}

describe.skipIf(skipReason !== null)('scanning a QR code with the camera', () => {
  let system: WebSystem;
  let alice: Person;
  const video = join(mkdtempSync(join(tmpdir(), 'bil-web-camera-')), 'camera.y4m');

  beforeAll(async () => {
    system = await startWebSystem('web-qr');
    // The camera's file is read when the page opens the camera, so it can be written once the number is known.
    alice = await person('alice', system.url, { args: ['--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream', `--use-file-for-fake-video-capture=${video}`] });
    await register(alice);
  });

  afterAll(async () => {
    await closeAll();
    await system?.stop();
  });

  it("marks a contact verified by scanning the QR code of their safety number", async () => {
    const bob = new BilClient({ baseUrl: system.url.replace(/\/$/, ''), keyStore: new MemoryKeyStore() });
    const bobAccount = await bob.register({ username: `bob-${run}`, password: 'bob correct horse battery' });
    await alice.page.getByLabel('New chat with').fill(bobAccount.username);
    await alice.page.getByRole('button', { name: 'Start' }).click();
    await alice.page.getByRole('heading', { name: bobAccount.username }).waitFor();
    const aliceUser = await bob.contacts.find(alice.username);
    await bob.contacts.devices(aliceUser.userId);
    const digits = formatSafetyNumber(await bob.contacts.safetyNumber(aliceUser.userId)).replace(/\s/g, '');
    writeFileSync(video, qrVideo(digits));

    await alice.page.getByRole('button', { name: 'Safety number' }).click();
    await alice.page.getByText('Not verified yet.').waitFor({ timeout: 30_000 });
    await alice.page.getByRole('button', { name: 'Scan their code' }).click();
    // The scanner (camera view, status, a way out) is checked by axe while it shows, unless it read the code at once.
    const scanner = alice.page.getByRole('group', { name: /safety number$/ });
    if (await scanner.waitFor({ timeout: 5000 }).then(() => true, () => false)) await axe(alice.page, 'scanning a QR code');
    await alice.page.getByText('Verified.').waitFor({ timeout: 30_000 });
    await expect(alice.page.getByRole('group', { name: /safety number$/ }).count()).resolves.toBe(0);
    expect(alice.problems).toEqual([]);
  });
});

const why = skipReason;
if (why) {
  describe('scanning a QR code with the camera', () => {
    it.skip(why, () => undefined);
  });
}
