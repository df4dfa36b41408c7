// Vite builds the app into dist/ (served by the gateway at /): one entry,
// content-hashed files under dist/assets/ (the gateway caches those for a
// year), no inline scripts (the gateway's CSP has script-src 'self').
import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

export default defineConfig({
  plugins: [react()],
  build: {
    outDir: 'dist',
    assetsDir: 'assets',
    target: 'es2022',
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    sourcemap: false,
    chunkSizeWarningLimit: 1024,
  },
  // `npm run dev -w @bil/web`: the gateway of `npm start` behind Vite's dev server.
  server: {
    proxy: {
      '/v1': { target: 'http://127.0.0.1:8080', ws: true },
    },
  },
});
