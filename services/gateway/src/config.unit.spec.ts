import { describe, expect, it } from 'vitest';
import { ConfigError } from '@bil/runtime';
import { loadGatewayConfig } from './config.js';

describe('gateway config', () => {
  it('has working defaults', () => {
    const c = loadGatewayConfig({});
    expect(c).toMatchObject({
      BIL_GATEWAY_PORT: 8080,
      GATEWAY_HOST: '0.0.0.0',
      IDENTITY_GRPC_URL: '127.0.0.1:50051',
      GATEWAY_TRUST_PROXY: false,
      GATEWAY_BODY_LIMIT_BYTES: 65536,
      GATEWAY_METRICS_PORT: 9100,
      RATE_LIMIT_AUTH_PER_IP: 30,
      RATE_LIMIT_AUTH_PER_USERNAME: 10,
      RATE_LIMIT_WINDOW_SECONDS: 60,
    });
  });
  it('reports every bad value, one line each', () => {
    try {
      loadGatewayConfig({ BIL_GATEWAY_PORT: 'http', GATEWAY_TRUST_PROXY: 'maybe', IDENTITY_GRPC_URL: 'http://x', RATE_LIMIT_AUTH_PER_IP: '0' });
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      const problems = (err as ConfigError).problems;
      expect(problems).toHaveLength(4);
      expect(problems.join('\n')).toMatch(/BIL_GATEWAY_PORT[\s\S]*GATEWAY_TRUST_PROXY[\s\S]*IDENTITY_GRPC_URL[\s\S]*RATE_LIMIT_AUTH_PER_IP/);
    }
  });
});
