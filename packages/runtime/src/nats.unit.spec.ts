import { describe, expect, it } from 'vitest';
import { natsConnectOptions } from './nats.js';

describe('natsConnectOptions', () => {
  it('takes the server, user and password, or a token, and TLS from the URL', () => {
    expect(natsConnectOptions('nats://127.0.0.1:4222')).toEqual({ servers: '127.0.0.1:4222' });
    expect(natsConnectOptions('nats://nats')).toEqual({ servers: 'nats:4222' });
    expect(natsConnectOptions('nats://bil:p%40ss%3Aword@nats.example:4223')).toEqual({ servers: 'nats.example:4223', user: 'bil', pass: 'p@ss:word' });
    expect(natsConnectOptions('nats://s3cr3t-token@nats:4222')).toEqual({ servers: 'nats:4222', token: 's3cr3t-token' });
    expect(natsConnectOptions('tls://bil:pw@nats:4222')).toEqual({ servers: 'nats:4222', user: 'bil', pass: 'pw', tls: {} });
  });

  it('refuses what it would otherwise misread, with a clear message', () => {
    expect(() => natsConnectOptions('nats://:secret@nats:4222')).toThrow(/password needs a user name/);
    expect(() => natsConnectOptions('nats://bil:@nats:4222')).toThrow(/empty password/);
    expect(() => natsConnectOptions('nats://bil:%E0%A4%A@nats:4222')).toThrow(/percent-encoding/);
  });
});
