// Structured JSON logs (pino). Every line carries the service name and, inside
// a request, its correlation id. Secrets are redacted by key name as a last
// line of defence; code must not log them in the first place.
import { pino, type Logger } from 'pino';
import { correlationId } from './context.js';

export type { Logger };

const REDACT = [
  'password',
  'oldPassword',
  'newPassword',
  'token',
  'accessToken',
  'refreshToken',
  'authorization',
  'ciphertext',
  'secret',
  '*.password',
  '*.oldPassword',
  '*.newPassword',
  '*.token',
  '*.accessToken',
  '*.refreshToken',
  '*.authorization',
  '*.ciphertext',
  '*.secret',
  'req.headers.authorization',
];

export function createLogger(service: string, level = process.env.LOG_LEVEL ?? 'info'): Logger {
  return pino({
    name: service,
    level,
    base: { service },
    redact: { paths: REDACT, censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
    mixin() {
      const id = correlationId();
      return id ? { correlationId: id } : {};
    },
  });
}
