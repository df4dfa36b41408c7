// Presigned transfers of attachment ciphertext (docs/sdk.md "Attachments"):
// when the server keeps blobs in object storage (`direct_transfer` in a
// blob's status), a segment is PUT straight to the bucket with a URL the
// gateway signs and then counted by the server, and a download GETs the
// blob's ranges from the bucket in order. The bytes are ciphertext either
// way: the bucket learns no more than the server. The client's credentials
// never go to the bucket (Transport.external).
import type { ClientCore } from './client-core.js';
import { BilApiError } from './errors.js';

const path = (blobId: string, tail: string) => `/v1/blobs/${encodeURIComponent(blobId)}/${tail}`;

/** PUTs `bytes` at `offset` of the blob through a presigned URL, then has the server count them. */
export async function putDirect(core: ClientCore, blobId: string, offset: number, bytes: Uint8Array): Promise<void> {
  const { url } = await core.call<{ url: string }>('POST', path(blobId, 'upload-url'), { offset, length: bytes.length });
  const res = await core.transport.external('PUT', url, { body: bytes, timeoutMs: 0 });
  await res.body?.cancel().catch(() => undefined);
  await core.call('POST', path(blobId, 'uploaded'), { offset, length: bytes.length });
}

/**
 * The blob's ciphertext from the bucket, range after range; undefined when
 * the server has no object storage (`direct_transfer_unavailable`).
 */
export async function downloadDirect(core: ClientCore, blobId: string): Promise<AsyncIterable<Uint8Array> | undefined> {
  let parts: Array<{ offset: number; length: number; url: string }>;
  try {
    ({ parts } = await core.call<{ parts: typeof parts }>('GET', path(blobId, 'download-urls')));
  } catch (err) {
    if (err instanceof BilApiError && err.code === 'direct_transfer_unavailable') return undefined;
    throw err;
  }
  return (async function* () {
    let at = 0;
    for (const part of parts) {
      if (part.offset !== at) throw new BilApiError({ status: 200, code: 'invalid_response', message: 'the download ranges are not contiguous' });
      const res = await core.transport.external('GET', part.url, { timeoutMs: 0 });
      if (!res.body) throw new BilApiError({ status: res.status, code: 'invalid_response', message: 'object storage sent no body' });
      const reader = res.body.getReader();
      try {
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          at += value.length;
          yield value;
        }
      } finally {
        await reader.cancel().catch(() => undefined);
      }
      if (at !== part.offset + part.length) throw new BilApiError({ status: 200, code: 'invalid_response', message: 'object storage sent a range of the wrong length' });
    }
  })();
}
