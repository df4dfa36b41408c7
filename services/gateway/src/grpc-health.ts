// The grpc.health.v1 check and shutdown every gateway client of a backend
// shares: the health client rides on the service client's channel.
import { credentials, makeClientConstructor, type Client, type ServiceDefinition } from '@grpc/grpc-js';
import { service as healthService } from 'grpc-health-check';
import { AppError, fromServiceError } from '@bil/runtime';

interface HealthClient extends Client {
  check(req: { service: string }, options: { deadline: Date }, cb: (err: Error | null, res?: { status: string }) => void): unknown;
}

const HealthCtor = makeClientConstructor(healthService as unknown as ServiceDefinition, 'grpc.health.v1.Health');

/** `checkHealth` (resolves when `name` answers SERVING) and `close` (the health and service clients) for `client`. */
export function healthOf(name: string, address: string, client: Client): { checkHealth(timeoutMs?: number): Promise<void>; close(): void } {
  const health = new HealthCtor(address, credentials.createInsecure(), { channelOverride: client.getChannel() }) as unknown as HealthClient;
  return {
    checkHealth: (ms = 2000) =>
      new Promise<void>((resolve, reject) => {
        health.check({ service: '' }, { deadline: new Date(Date.now() + ms) }, (err, res) => {
          if (err) reject(fromServiceError(err));
          else if (res?.status !== 'SERVING') reject(new AppError('unavailable', 'service_unavailable', `${name} is ${res?.status ?? 'unknown'}`));
          else resolve();
        });
      }),
    close: () => {
      health.close();
      client.close();
    },
  };
}
