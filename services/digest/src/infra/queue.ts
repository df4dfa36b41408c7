// The BullMQ queue between the API (which enqueues sealed requests) and the
// workers. Its keys live under REDIS_PREFIX + "bull:" so that test runs and
// tenants sharing a Redis never collide. A job holds only sealed boxes and
// ids; it is removed from Redis as soon as it completes or finally fails.
import { Queue, type ConnectionOptions } from 'bullmq';
import { Redis } from 'ioredis';

export interface DigestJob {
  requestId: string;
  userId: string;
  deviceId: string;
  correlationId?: string;
  /** One sealed box (JSON) per chat. */
  transcripts: Array<{ chatId: string; sealed: string }>;
}

export interface QueueSettings {
  redisUrl: string;
  redisPrefix: string;
  name: string;
  attempts: number;
  backoffMs: number;
}

export const queuePrefix = (redisPrefix: string) => `${redisPrefix}bull`;

/** A connection for BullMQ: no key prefix (BullMQ has its own) and no retry limit (workers block). */
export function bullConnection(url: string): Redis {
  return new Redis(url, { maxRetriesPerRequest: null, enableReadyCheck: true });
}

export class DigestQueue {
  readonly queue: Queue<DigestJob>;

  constructor(
    private readonly settings: QueueSettings,
    connection: ConnectionOptions,
  ) {
    this.queue = new Queue<DigestJob>(settings.name, { connection, prefix: queuePrefix(settings.redisPrefix) });
    // Without a listener BullMQ prints every connection error (one per reconnect during a Redis
    // outage); the connection's own watcher (watchRedis) logs the outage once, and a failed
    // enqueue rejects to its caller.
    this.queue.on('error', () => undefined);
  }

  /** Enqueues a request; the job id is the request id, so a repeat is not queued twice. */
  async enqueue(job: DigestJob): Promise<void> {
    await this.queue.add('digest', job, {
      jobId: job.requestId,
      attempts: this.settings.attempts,
      backoff: { type: 'exponential', delay: this.settings.backoffMs },
      removeOnComplete: true,
      removeOnFail: true,
    });
  }

  /** Drops a job that will never be wanted (its request was abandoned). */
  async discard(requestId: string): Promise<void> {
    await this.queue.remove(requestId).catch(() => 0);
  }

  /** Jobs waiting, delayed (backing off before a retry) and being processed: the workers' backlog. */
  async counts(): Promise<{ waiting: number; delayed: number; active: number }> {
    const c = await this.queue.getJobCounts('waiting', 'delayed', 'active');
    return { waiting: c.waiting ?? 0, delayed: c.delayed ?? 0, active: c.active ?? 0 };
  }

  async close(): Promise<void> {
    await this.queue.close();
  }
}
