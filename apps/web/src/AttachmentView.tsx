// A message's attachments (sdk.md "Attachments"): an image's thumbnail inline
// (made by the sender's browser, carried encrypted in the message), and for
// every file a button that downloads, decrypts and saves it.
import { useState, type ReactNode } from 'react';
import type { AttachmentRef, BilClient, HistoryMessage } from '@bil/sdk';
import { downloadFile, save, thumbnailUrl } from './attachments.js';
import { describeError } from './errors.js';

const size = (n: number): string => (n < 1024 ? `${n} B` : n < 1024 * 1024 ? `${(n / 1024).toFixed(0)} KB` : `${(n / 1024 / 1024).toFixed(1)} MB`);

export function AttachmentView({ m, client }: { m: HistoryMessage; client: BilClient }): ReactNode {
  if (!m.ok || m.content?.kind !== 'text' || !m.content.attachments?.length) return null;
  return (
    <ul className="attachments" aria-label="Attachments">
      {m.content.attachments.map((ref) => (
        <li key={ref.blob_id}>
          <Attachment ref_={ref} client={client} />
        </li>
      ))}
    </ul>
  );
}

function Attachment({ ref_: ref, client }: { ref_: AttachmentRef; client: BilClient }): ReactNode {
  const [state, setState] = useState<string | null>(null);
  const thumb = thumbnailUrl(ref);
  const download = (): void => {
    setState('Downloading…');
    downloadFile(client, ref)
      .then((blob) => {
        save(blob, ref.name);
        setState(null);
      })
      .catch((err: unknown) => setState(describeError(err)));
  };
  return (
    <>
      {thumb && <img className="thumb" src={thumb} width={ref.thumbnail!.width} height={ref.thumbnail!.height} alt={`Image: ${ref.name}`} />}
      <button type="button" className="file" onClick={download}>
        Save {ref.name} ({size(ref.size)})
      </button>
      {state && <span role="status"> {state}</span>}
    </>
  );
}
