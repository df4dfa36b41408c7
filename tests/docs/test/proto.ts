// Reads message and enum definitions from the .proto files (enough of proto3
// for proto/bil: scalar, enum, message and repeated fields) and builds a
// sample event in the proto3 JSON mapping chat publishes: lowerCamelCase
// names, enums by name, 64-bit integers as strings.
import { readFileSync } from 'node:fs';
import { repoRoot } from './markdown.js';

export interface ProtoField {
  name: string;
  type: string;
  repeated: boolean;
}

export interface ProtoFile {
  messages: Map<string, ProtoField[]>;
  enums: Map<string, string[]>;
}

function stripComments(text: string): string {
  return text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/\/\/.*$/gm, '');
}

/** Top-level messages and enums of the given .proto files (paths from the repo root), merged. */
export function readProto(...paths: string[]): ProtoFile {
  const out: ProtoFile = { messages: new Map(), enums: new Map() };
  for (const path of paths) {
    const text = stripComments(readFileSync(new URL(path, repoRoot), 'utf8'));
    for (const m of text.matchAll(/\b(message|enum)\s+(\w+)\s*\{([^{}]*)\}/g)) {
      const [, kind, name, body] = m;
      if (kind === 'enum') {
        out.enums.set(name!, [...body!.matchAll(/(\w+)\s*=\s*\d+\s*;/g)].map((v) => v[1]!));
      } else {
        const fields = [...body!.matchAll(/(repeated\s+)?([\w.]+)\s+(\w+)\s*=\s*\d+\s*;/g)].map((f) => ({ name: f[3]!, type: f[2]!, repeated: !!f[1] }));
        out.messages.set(name!, fields);
      }
    }
  }
  return out;
}

export const camel = (snake: string) => snake.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());

const SAMPLE_ID = '11111111-1111-4111-8111-111111111111';

/**
 * A sample of `message` in proto3 JSON. Enum fields take `enumValue(type)`
 * (the value to try), strings an id, 64-bit integers "7", repeated fields one element.
 */
export function sample(proto: ProtoFile, message: string, enumValue: (type: string) => string): Record<string, unknown> {
  const fields = proto.messages.get(message);
  if (!fields) throw new Error(`no message ${message}`);
  const out: Record<string, unknown> = {};
  for (const f of fields) {
    let v: unknown;
    if (f.type === 'string') v = SAMPLE_ID;
    else if (/^u?int64$|^s?fixed64$/.test(f.type)) v = '7';
    else if (/^u?int32$|^s?fixed32$/.test(f.type)) v = 7;
    else if (f.type === 'bool') v = true;
    else if (proto.enums.has(f.type)) v = enumValue(f.type);
    else if (proto.messages.has(f.type)) v = sample(proto, f.type, enumValue);
    else throw new Error(`${message}.${f.name}: unknown type ${f.type}`);
    out[camel(f.name)] = f.repeated ? [v] : v;
  }
  return out;
}
