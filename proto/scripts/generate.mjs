// Generates TypeScript types for every proto under bil/ into gen/ with
// proto-loader-gen-types. The loader options in src/index.ts must match the
// flags here, or the types lie about the runtime shapes.
import { execFileSync } from 'node:child_process';
import { readdirSync, rmSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);

function protos(dir) {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) return protos(p);
    return name.endsWith('.proto') ? [relative(root, p)] : [];
  });
}

const files = protos(join(root, 'bil')).sort();
rmSync(join(root, 'gen'), { recursive: true, force: true });
const bin = join(dirname(require.resolve('@grpc/proto-loader/package.json')), 'build/bin/proto-loader-gen-types.js');
execFileSync(
  process.execPath,
  [
    bin,
    ...files,
    '--longs=String',
    '--enums=String',
    '--defaults',
    '--oneofs',
    '--grpcLib=@grpc/grpc-js',
    '--importFileExtension=.js',
    '--includeComments',
    '--outDir=gen',
    '--includeDirs=.',
  ],
  { cwd: root, stdio: 'inherit' },
);
console.log(`generated types for ${files.length} proto files`);
