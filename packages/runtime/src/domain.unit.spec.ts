// `@bil/runtime/domain` carries no infrastructure: the modules behind it, followed through their
// relative imports, import no package (no gRPC, NATS, PostgreSQL, Redis, logging or metrics) but
// `@bil/proto/errors`, the error reasons: a pure module whose own purity @bil/proto's pure.unit.spec checks.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import * as domain from './domain.js';

function graph(file: string, seen = new Set<string>()): Set<string> {
  if (seen.has(file)) return seen;
  seen.add(file);
  const src = readFileSync(new URL(file, import.meta.url), 'utf8');
  for (const m of src.matchAll(/^\s*(?:import|export)\b[^'"]*?from\s+'([^']+)'/gm)) {
    const spec = m[1]!;
    if (spec.startsWith('./')) graph(spec.replace(/\.js$/, '.ts'), seen);
    else seen.add(`package:${spec}`);
  }
  return seen;
}

describe('@bil/runtime/domain', () => {
  it('imports no package but the pure error reasons, through any of its modules', () => {
    const modules = [...graph('./domain.ts')];
    expect(modules.filter((m) => m.startsWith('package:'))).toEqual(['package:@bil/proto/errors']);
    expect(modules).toEqual(expect.arrayContaining(['./domain.ts', './decider.ts', './errors.ts', './clock.ts', './fields.ts']));
  });

  it('carries deciders, errors, the clock and typed field names', () => {
    expect(Object.keys(domain).sort()).toEqual(
      expect.arrayContaining(['AppError', 'ConcurrencyError', 'ManualClock', 'fieldOf', 'fieldsOf', 'invalidArgument', 'replay', 'stateVersionOf', 'systemClock']),
    );
    expect(new domain.AppError('not_found', 'chat_not_found', 'y').httpStatus).toBe(404);
  });

  it('fieldOf gives the name of a key of the type (the compiler refuses any other)', () => {
    type Posted = { chatId: string; seq: number };
    expect(domain.fieldOf<Posted>('chatId')).toBe('chatId');
    // @ts-expect-error not a key of Posted
    expect(() => domain.fieldOf<Posted>('chat id')).toThrow('not usable in SQL');
    expect(domain.fieldsOf<Posted>()('chatId', 'seq')).toEqual({ chatId: 'chatId', seq: 'seq' });
  });
});
