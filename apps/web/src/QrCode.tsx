// A QR code as inline SVG (one path, no innerHTML: the CSP stays strict),
// from uqr's module matrix. Dark on white whatever the theme, so it scans.
import { useMemo, type ReactNode } from 'react';
import { encode } from 'uqr';

export function QrCode({ text, label, size = 192 }: { text: string; label: string; size?: number }): ReactNode {
  const { d, n } = useMemo(() => {
    const qr = encode(text, { ecc: 'M', border: 2 });
    let path = '';
    qr.data.forEach((row, y) => row.forEach((dark, x) => dark && (path += `M${x} ${y}h1v1h-1z`)));
    return { d: path, n: qr.size };
  }, [text]);
  return (
    <svg className="qr" role="img" aria-label={label} width={size} height={size} viewBox={`0 0 ${n} ${n}`} shapeRendering="crispEdges">
      <rect width={n} height={n} fill="#fff" />
      <path d={d} fill="#000" />
    </svg>
  );
}
