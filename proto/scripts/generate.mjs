// Generates TypeScript types for every proto under bil/ into gen/ with
// proto-loader-gen-types. The loader options in src/index.ts must match the
// flags here, or the types lie about the runtime shapes.
//
// Each proto file's root type (ProtoGrpcType) goes to gen/<context>/<file>.ts,
// so files of the same name in two contexts (events.proto) don't overwrite
// each other; message types go to gen/bil/<context>/v1/<Message>.ts.
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, relative } from 'node:path';
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
const gen = join(root, 'gen');
rmSync(gen, { recursive: true, force: true });
mkdirSync(gen, { recursive: true });
const bin = join(dirname(require.resolve('@grpc/proto-loader/package.json')), 'build/bin/proto-loader-gen-types.js');

for (const file of files) {
  const out = mkdtempSync(join(tmpdir(), 'bil-proto-'));
  execFileSync(
    process.execPath,
    [
      bin,
      file,
      '--longs=String',
      '--enums=String',
      '--defaults',
      '--oneofs',
      '--grpcLib=@grpc/grpc-js',
      '--importFileExtension=.js',
      '--includeComments',
      `--outDir=${out}`,
      '--includeDirs=.',
    ],
    { cwd: root, stdio: 'inherit' },
  );
  const context = file.split('/')[1];
  const rootName = `${basename(file, '.proto')}.ts`;
  const rootText = readFileSync(join(out, rootName), 'utf8').replaceAll("from './bil/", "from '../bil/");
  mkdirSync(join(gen, context), { recursive: true });
  writeFileSync(join(gen, context, rootName), rootText);
  cpSync(join(out, 'bil'), join(gen, 'bil'), { recursive: true });
  rmSync(out, { recursive: true, force: true });
}
console.log(`generated types for ${files.length} proto files`);
