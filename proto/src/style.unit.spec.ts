// buf-style lint of the contracts (no buf binary here): every service, RPC,
// message, field and enum value carries a comment; RPC X takes XRequest and
// returns XResponse; services end in Service; enum zero values are
// <ENUM>_UNSPECIFIED; packages are bil.<context>.v1 in a matching directory.
import { describe, expect, it } from 'vitest';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { protoRoot } from './index.js';

function protoFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? protoFiles(p) : n.endsWith('.proto') ? [p] : [];
  });
}

const files = protoFiles(join(protoRoot, 'bil'));

function problems(file: string): string[] {
  const out: string[] = [];
  const lines = readFileSync(file, 'utf8').split('\n');
  const rel = relative(protoRoot, file);
  const pkg = /^package\s+([\w.]+);/m.exec(lines.join('\n'))?.[1] ?? '';
  const dir = rel.split('/').slice(0, -1).join('.');
  if (pkg !== dir) out.push(`${rel}: package ${pkg} does not match directory ${dir}`);
  if (!/^bil\.[a-z]+\.v\d+$/.test(pkg)) out.push(`${rel}: package ${pkg} is not bil.<context>.v<N>`);
  if (!/^[a-z0-9_]+\.proto$/.test(rel.split('/').pop()!)) out.push(`${rel}: file name is not lower_snake_case`);
  let enumName = '';
  let firstEnumValue = false;
  lines.forEach((raw, i) => {
    const line = raw.trim();
    const commented = (lines[i - 1] ?? '').trim().startsWith('//');
    const where = `${rel}:${i + 1}`;
    let m: RegExpExecArray | null;
    if ((m = /^service\s+(\w+)/.exec(line))) {
      if (!m[1]!.endsWith('Service')) out.push(`${where}: service ${m[1]} must end in Service`);
      if (!commented) out.push(`${where}: service ${m[1]} has no comment`);
    } else if ((m = /^rpc\s+(\w+)\s*\(\s*(\w+)\s*\)\s*returns\s*\(\s*(\w+)\s*\)/.exec(line))) {
      if (!commented) out.push(`${where}: rpc ${m[1]} has no comment`);
      if (m[2] !== `${m[1]}Request`) out.push(`${where}: rpc ${m[1]} must take ${m[1]}Request`);
      if (m[3] !== `${m[1]}Response`) out.push(`${where}: rpc ${m[1]} must return ${m[1]}Response`);
    } else if ((m = /^message\s+(\w+)/.exec(line))) {
      if (!commented) out.push(`${where}: message ${m[1]} has no comment`);
    } else if ((m = /^enum\s+(\w+)/.exec(line))) {
      if (!commented) out.push(`${where}: enum ${m[1]} has no comment`);
      enumName = m[1]!;
      firstEnumValue = true;
    } else if ((m = /^([A-Z][A-Z0-9_]*)\s*=\s*(\d+);/.exec(line))) {
      if (!commented) out.push(`${where}: enum value ${m[1]} has no comment`);
      const prefix = enumName.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase();
      if (firstEnumValue && (m[2] !== '0' || m[1] !== `${prefix}_UNSPECIFIED`)) out.push(`${where}: first value must be ${prefix}_UNSPECIFIED = 0`);
      if (!m[1]!.startsWith(`${prefix}_`)) out.push(`${where}: ${m[1]} must start with ${prefix}_`);
      firstEnumValue = false;
    } else if ((m = /^(?:repeated\s+|optional\s+)?[\w.]+\s+(\w+)\s*=\s*\d+;/.exec(line))) {
      if (!commented) out.push(`${where}: field ${m[1]} has no comment`);
      if (!/^[a-z][a-z0-9_]*$/.test(m[1]!)) out.push(`${where}: field ${m[1]} is not lower_snake_case`);
    }
  });
  return out;
}

describe('proto style', () => {
  it('finds the contracts', () => expect(files.length).toBeGreaterThan(0));
  it.each(files.map((f) => [relative(protoRoot, f), f]))('%s follows the style guide', (_rel, file) => {
    expect(problems(file)).toEqual([]);
  });
});
