// Reads a QR code with the camera: getUserMedia, then the browser's
// BarcodeDetector where it has one, else jsQR on canvas frames. Loaded
// lazily (React.lazy) so the first load doesn't carry the decoder.
import { useEffect, useRef, useState, type ReactNode } from 'react';

interface Detector {
  detect(source: CanvasImageSource): Promise<{ rawValue: string }[]>;
}

/** The browser's QR detector, if it has one that reads QR codes. */
async function nativeDetector(): Promise<Detector | null> {
  const BD = (globalThis as { BarcodeDetector?: { new (o: { formats: string[] }): Detector; getSupportedFormats(): Promise<string[]> } }).BarcodeDetector;
  if (!BD) return null;
  try {
    return (await BD.getSupportedFormats()).includes('qr_code') ? new BD({ formats: ['qr_code'] }) : null;
  } catch {
    return null;
  }
}

export default function QrScanner({ label, onResult, onClose }: { label: string; onResult: (text: string) => void; onClose: () => void }): ReactNode {
  const video = useRef<HTMLVideoElement>(null);
  const [error, setError] = useState<string | null>(null);
  const [scanning, setScanning] = useState(false);
  const resultTo = useRef(onResult);
  resultTo.current = onResult;

  useEffect(() => {
    let stopped = false;
    let stream: MediaStream | null = null;
    let timer: ReturnType<typeof setTimeout> | undefined;
    (async () => {
      stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: 'environment' }, audio: false });
      if (stopped) return;
      const v = video.current!;
      v.srcObject = stream;
      await v.play();
      setScanning(true);
      const detector = await nativeDetector();
      const jsQR = detector ? null : (await import('jsqr')).default;
      const canvas = document.createElement('canvas');
      const ctx = canvas.getContext('2d', { willReadFrequently: true })!;
      const scan = async (): Promise<void> => {
        if (stopped) return;
        let text: string | null = null;
        if (v.videoWidth > 0) {
          if (detector) {
            text = (await detector.detect(v).catch(() => []))[0]?.rawValue ?? null;
          } else if (jsQR) {
            canvas.width = v.videoWidth;
            canvas.height = v.videoHeight;
            ctx.drawImage(v, 0, 0);
            const img = ctx.getImageData(0, 0, canvas.width, canvas.height);
            text = jsQR(img.data, img.width, img.height, { inversionAttempts: 'attemptBoth' })?.data ?? null;
          }
        }
        if (text && !stopped) resultTo.current(text);
        else timer = setTimeout(() => void scan(), 150);
      };
      void scan();
    })().catch((err: unknown) => setError(err instanceof DOMException && err.name === 'NotAllowedError' ? 'The camera was not allowed: type or paste instead.' : 'No camera could be opened: type or paste instead.'));
    return () => {
      stopped = true;
      clearTimeout(timer);
      for (const t of stream?.getTracks() ?? []) t.stop();
    };
  }, []);

  return (
    <div className="scanner" role="group" aria-label={label}>
      <video ref={video} muted playsInline aria-label="Camera view" />
      <p role="status">{error ?? (scanning ? 'Hold the QR code in front of the camera.' : 'Opening the camera…')}</p>
      <button type="button" onClick={onClose}>
        Stop scanning
      </button>
    </div>
  );
}
