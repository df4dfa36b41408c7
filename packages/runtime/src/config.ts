// Configuration comes from the environment only, is validated once at start,
// and a bad value stops the process with one clear line per problem.

type Spec<T> = {
  /** Human description; also printed in errors. */
  doc: string;
  default?: T;
  /** Parses the raw string; throws an Error whose message says what is wrong. */
  parse: (raw: string) => T;
  /** Treated as a secret: never echoed back in errors. */
  secret?: boolean;
  /** May be absent (the value is then undefined). */
  optional?: boolean;
};

export type ConfigSchema = Record<string, Spec<unknown>>;
export type ConfigOf<S extends ConfigSchema> = { [K in keyof S]: S[K] extends Spec<infer T> ? T : never };

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

export function loadConfig<S extends ConfigSchema>(schema: S, env: NodeJS.ProcessEnv = process.env): ConfigOf<S> {
  const out: Record<string, unknown> = {};
  const problems: string[] = [];
  for (const [key, spec] of Object.entries(schema)) {
    const raw = env[key];
    if (raw === undefined || raw === '') {
      if (spec.default === undefined && !spec.optional) problems.push(`${key} is required (${spec.doc})`);
      else out[key] = spec.default;
      continue;
    }
    try {
      out[key] = spec.parse(raw);
    } catch (err) {
      const shown = spec.secret ? '' : ` (got ${JSON.stringify(raw.length > 80 ? `${raw.slice(0, 80)}…` : raw)})`;
      problems.push(`${key}: ${(err as Error).message}${shown}; expected ${spec.doc}`);
    }
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return out as ConfigOf<S>;
}

export const str = (doc: string, def?: string, opts: { secret?: boolean; pattern?: RegExp } = {}): Spec<string> => ({
  doc,
  default: def,
  secret: opts.secret,
  parse: (raw) => {
    if (opts.pattern && !opts.pattern.test(raw)) throw new Error('has the wrong form');
    return raw;
  },
});

export const optionalStr = (doc: string, opts: { secret?: boolean } = {}): Spec<string | undefined> => ({
  doc,
  optional: true,
  secret: opts.secret,
  parse: (raw) => raw,
});

export const int = (doc: string, def?: number, min = 0, max = Number.MAX_SAFE_INTEGER): Spec<number> => ({
  doc,
  default: def,
  parse: (raw) => {
    if (!/^-?\d+$/.test(raw.trim())) throw new Error('is not a whole number');
    const n = Number(raw);
    if (n < min || n > max) throw new Error(`must be between ${min} and ${max}`);
    return n;
  },
});

export const port = (doc: string, def?: number): Spec<number> => int(doc, def, 0, 65535);

export const bool = (doc: string, def?: boolean): Spec<boolean> => ({
  doc,
  default: def,
  parse: (raw) => {
    const v = raw.trim().toLowerCase();
    if (['1', 'true', 'yes', 'on'].includes(v)) return true;
    if (['0', 'false', 'no', 'off'].includes(v)) return false;
    throw new Error('is not a boolean');
  },
});

export const url = (doc: string, def: string | undefined, protocols: string[]): Spec<string> => ({
  doc,
  default: def,
  parse: (raw) => {
    let u: URL;
    try {
      u = new URL(raw);
    } catch {
      throw new Error('is not a URL');
    }
    if (!protocols.includes(u.protocol)) throw new Error(`must use ${protocols.join(' or ')}`);
    return raw;
  },
});

export const oneOf = <T extends string>(doc: string, values: readonly T[], def?: T): Spec<T> => ({
  doc,
  default: def,
  parse: (raw) => {
    if (!values.includes(raw as T)) throw new Error(`must be one of ${values.join(', ')}`);
    return raw as T;
  },
});

/** The settings every service shares. */
export const commonConfig = {
  NODE_ENV: oneOf('development, test or production', ['development', 'test', 'production'] as const, 'development'),
  LOG_LEVEL: oneOf('a pino level', ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const, 'info'),
  NATS_URL: url('the NATS server with JetStream, nats://host:port', 'nats://127.0.0.1:4222', ['nats:', 'tls:']),
  NATS_SUBJECT_PREFIX: str(
    'a prefix for every subject and stream name (isolates tests and tenants), letters/digits/_ and a trailing dot',
    '',
    { pattern: /^([A-Za-z0-9_]+\.)?$/ },
  ),
  NATS_STREAM_REPLICAS: int('replicas of each JetStream stream a service creates: 1 on a single server, 3 on a NATS cluster', 1, 1, 5),
  REDIS_URL: url('the Redis server, redis://host:port/db', 'redis://127.0.0.1:6379/0', ['redis:', 'rediss:']),
  REDIS_PREFIX: str('a prefix for every Redis key', 'bil:', { pattern: /^[A-Za-z0-9_:.-]*$/ }),
  METRICS_HOST: str('the address /metrics, /healthz and /readyz bind to (npm start: 127.0.0.1)', '0.0.0.0'),
};
