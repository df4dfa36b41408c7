// The digest worker: runs one job (one request) at a time per slot. It opens
// each sealed transcript in memory only, summarises it, seals the summary to
// the requesting device (checked against the key directory: its certificate
// must verify under the account identity key), and stores the sealed results
// with DigestCompleted in one transaction (shared with the other jobs finishing
// at the same time: app/completions.ts), keyed by the request id.
//
// Processed once: BullMQ's lock gives a job to one worker at a time and hands
// a dead worker's job to another after the lock expires; whatever the second
// run does, the decider accepts only the first completion (or failure), and
// the results insert is idempotent. A crash after the commit but before
// BullMQ hears of it makes the next run find the request already done.
//
// What it never does: write a transcript or a summary anywhere (database,
// Redis, logs, errors); job failure reasons are fixed strings.
import { createHash } from 'node:crypto';
import { CannotDecryptError, openSealedPayload, sealPayload, sealRecipientForDevice, verifyDevice, type Ed25519KeyPair, type SealRecipient } from '@bil/crypto';
import { runWithContext, type Database, type EventStore, type LoadedStream, type Logger } from '@bil/runtime';
import { digestDecider, digestStream, type DigestState, type FailureReason, type ResultRef, type SummaryMethod } from '../domain/digest/digest.js';
import {
  InvalidTranscriptError,
  REQUEST_KIND,
  RESULT_KIND,
  SummarizerError,
  digestContext,
  encodeSummary,
  parseTranscript,
  summarizeExtractive,
  transcriptSha256,
  type Summarizer,
  type Summary,
} from '@bil/summarizer';
import type { DigestJob } from '../infra/queue.js';
import { Completions } from './completions.js';
import { readJobInputs, type DeviceRow, type JobInputs } from './job-inputs.js';
import type { KeyRing } from './key-ring.js';

export interface WorkerSettings {
  resultTtlMs: number;
  jobTimeoutMs: number;
}

/** A failure that ends the request now, whatever attempts remain. */
class PermanentFailure extends Error {
  constructor(readonly reason: FailureReason) {
    super(`digest failed: ${reason}`);
    this.name = 'PermanentFailure';
  }
}

/** Thrown to BullMQ so it retries the job with backoff; the message is fixed. */
export class RetryableJobError extends Error {
  constructor(readonly reason: FailureReason) {
    super(`digest attempt failed (${reason}); will retry`);
    this.name = 'RetryableJobError';
  }
}

export type JobOutcome = 'ready' | 'failed' | 'already_done';

export class DigestWorker {
  private readonly completions: Completions;
  /** Directory rows whose certificate verified (exact row → seal recipient), oldest first. */
  private readonly verified = new Map<string, { recipient: SealRecipient; signingKey: string }>();

  constructor(
    private readonly db: Database,
    private readonly store: EventStore,
    private readonly keys: KeyRing,
    private readonly identity: Ed25519KeyPair,
    private readonly summarizer: Summarizer,
    private readonly settings: WorkerSettings,
    private readonly logger: Logger,
  ) {
    this.completions = new Completions(db, store);
  }

  /**
   * Runs one attempt of a job. Resolves when the request is settled (ready or
   * failed for good); throws RetryableJobError when BullMQ should try again.
   */
  async process(job: DigestJob, attempt: { made: number; max: number }): Promise<JobOutcome> {
    return runWithContext({ correlationId: job.correlationId, causationId: job.requestId }, async () => {
      // The job's reads, beside the request's own state: one prepared statement (app/job-inputs.ts).
      const inputs = await readJobInputs(this.db, { requestId: job.requestId, userId: job.userId, deviceId: job.deviceId, chatIds: job.transcripts.map((t) => t.chatId) });
      const loaded = inputs.stream ?? (await this.store.load(this.db, digestDecider, digestStream(job.requestId)));
      if (loaded.state.status !== 'pending') return 'already_done';
      const started = Date.now();
      const controller = new AbortController();
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          controller.abort();
          reject(new SummarizerError('timeout', true));
        }, this.settings.jobTimeoutMs);
      });
      try {
        const { results, method } = await Promise.race([this.summarizeAll(job, inputs, controller.signal), deadline]);
        const stored = await this.complete(job.requestId, loaded, results, method);
        this.logger.info({ requestId: job.requestId, chats: results.length, method, ms: Date.now() - started, stored }, 'digest ready');
        return 'ready';
      } catch (err) {
        const { reason, retryable } = classify(err);
        const last = attempt.made + 1 >= attempt.max;
        if (retryable && !last) {
          this.logger.warn({ requestId: job.requestId, reason, attempt: attempt.made + 1, of: attempt.max }, 'digest attempt failed; retrying');
          throw new RetryableJobError(reason);
        }
        if (reason === 'internal') this.logger.error({ requestId: job.requestId, err: { name: (err as Error)?.name } }, 'digest failed unexpectedly');
        await this.fail(job.requestId, reason);
        this.logger.warn({ requestId: job.requestId, reason, attempt: attempt.made + 1 }, 'digest failed');
        return 'failed';
      } finally {
        clearTimeout(timer);
        controller.abort();
      }
    });
  }

  private async summarizeAll(job: DigestJob, reads: JobInputs, signal: AbortSignal): Promise<{ results: Array<{ chatId: string; sealed: string }>; method: SummaryMethod }> {
    if (reads.off.length) throw new PermanentFailure('digests_disabled');
    const { recipient, signingKey } = await this.requestingDevice(job.userId, job.deviceId, reads.device);
    const results: Array<{ chatId: string; sealed: string }> = [];
    let method: SummaryMethod = this.summarizer.method;
    for (const t of job.transcripts) {
      if (signal.aborted) throw new SummarizerError('timeout', true);
      const summary = await this.summarizeOne(job, t.chatId, t.sealed, signingKey, reads.excluded.get(t.chatId) ?? NO_ONE, signal);
      if (summary.summary.method === 'extractive') method = 'extractive';
      const sealed = await sealPayload({
        to: recipient,
        kind: RESULT_KIND,
        context: digestContext(job.requestId, t.chatId, job.deviceId),
        createdAt: Date.now(),
        plaintext: summary.plaintext,
        signer: this.identity,
      });
      summary.plaintext.fill(0);
      results.push({ chatId: t.chatId, sealed: JSON.stringify(sealed) });
    }
    return { results, method };
  }

  /**
   * Opens one chat's sealed transcript with this request's context (a box
   * sealed for another request, chat or device does not open), checks that
   * the plaintext names the same request, chat and device, summarises it, and
   * returns the summary plaintext v2 echoing the request, the transcript's
   * hash and its seq range.
   */
  private async summarizeOne(
    job: DigestJob,
    chatId: string,
    sealedJson: string,
    signingKey: string,
    excluded: ReadonlySet<string>,
    signal: AbortSignal,
  ): Promise<{ summary: Summary; plaintext: Uint8Array }> {
    let box: unknown;
    try {
      box = JSON.parse(sealedJson);
    } catch {
      throw new PermanentFailure('undecryptable');
    }
    const keyId = (box as { header?: { key_id?: unknown } })?.header?.key_id;
    const privateKey = typeof keyId === 'string' ? await this.keys.privateKey(keyId) : undefined;
    if (!privateKey) throw new PermanentFailure('undecryptable');
    let opened: Uint8Array;
    try {
      ({ plaintext: opened } = await openSealedPayload(box, {
        privateKey,
        keyId: keyId as string,
        kind: REQUEST_KIND,
        context: digestContext(job.requestId, chatId, job.deviceId),
        signerKey: signingKey,
      }));
    } catch (err) {
      if (err instanceof CannotDecryptError) throw new PermanentFailure('undecryptable');
      throw err;
    }
    try {
      const transcript = parseTranscript(opened, { requestId: job.requestId, chatId, deviceId: job.deviceId });
      const hash = await transcriptSha256(opened);
      // Second line of consent (docs/digest.md, "Consent"): honest clients already left these out
      // (read with the job's other reads, when the job started).
      const kept = excluded.size ? transcript.messages.filter((m) => !excluded.has(m.senderUserId)) : transcript.messages;
      const input = { ...transcript, messages: kept };
      // Nothing left (or nothing sent): the built-in summary of no messages, no model call.
      const summary = kept.length > 0 ? await this.summarizer.summarize(input, signal) : summarizeExtractive(input);
      const plaintext = encodeSummary({
        requestId: job.requestId,
        chatId,
        deviceId: job.deviceId,
        transcriptSha256: hash,
        fromSeq: transcript.fromSeq,
        toSeq: transcript.toSeq,
        messageCount: kept.length,
        excludedCount: transcript.messages.length - kept.length,
        ...summary,
      });
      return { summary, plaintext };
    } finally {
      opened.fill(0);
    }
  }

  /** The requesting device as the directory lists it, verified under its account's identity key. */
  private async requestingDevice(userId: string, deviceId: string, r: DeviceRow | undefined): Promise<{ recipient: SealRecipient; signingKey: string }> {
    if (!r || !r.identity_key) throw new PermanentFailure('device_unavailable');
    // The row is read for every job (the device and its account must be active now); the
    // certificate check is a pure function of the row, so its outcome is kept per exact row.
    const row = JSON.stringify([userId, deviceId, r.identity_key, r.encryption_key, r.signing_key, r.certificate, String(r.certificate_issued_at)]);
    const known = this.verified.get(row);
    if (known) return known;
    try {
      const device = await verifyDevice(
        {
          user_id: userId,
          device_id: deviceId,
          identity_key: r.identity_key,
          encryption_key: r.encryption_key,
          signing_key: r.signing_key,
          issued_at: Number(r.certificate_issued_at),
          certificate: r.certificate,
        },
        r.identity_key,
      );
      const checked = { recipient: await sealRecipientForDevice(device), signingKey: r.signing_key };
      if (this.verified.size >= VERIFIED_DEVICES) this.verified.delete(this.verified.keys().next().value!);
      this.verified.set(row, checked);
      return checked;
    } catch {
      throw new PermanentFailure('device_unavailable');
    }
  }

  /**
   * Stores the sealed results and DigestCompleted, once per request, at the
   * version read when the job started (no second read), committed together
   * with the other jobs finishing meanwhile (app/completions.ts); a stream
   * that moved since is decided again as it now is.
   */
  private complete(requestId: string, loaded: LoadedStream<DigestState>, results: Array<{ chatId: string; sealed: string }>, method: SummaryMethod): Promise<boolean> {
    const now = new Date();
    const expiresAt = new Date(now.getTime() + this.settings.resultTtlMs).toISOString();
    const refs: ResultRef[] = results.map((r) => ({ chatId: r.chatId, sealedSha256: createHash('sha256').update(r.sealed).digest('base64url') }));
    return this.completions.complete({ requestId, loaded, command: { type: 'CompleteDigest', results: refs, method, expiresAt, now: now.toISOString() }, results, expiresAt });
  }

  private async fail(requestId: string, reason: FailureReason): Promise<void> {
    await this.store.handle(digestDecider, digestStream(requestId), { type: 'FailDigest', reason, now: new Date().toISOString() });
  }
}

const NO_ONE: ReadonlySet<string> = new Set();
/** Verified directory rows kept (a few MB at most). */
const VERIFIED_DEVICES = 10_000;

function classify(err: unknown): { reason: FailureReason; retryable: boolean } {
  if (err instanceof PermanentFailure) return { reason: err.reason, retryable: false };
  if (err instanceof SummarizerError) return { reason: err.reason, retryable: err.retryable };
  if (err instanceof InvalidTranscriptError) return { reason: 'invalid_transcript', retryable: false };
  // Database or Redis trouble, or a bug: worth another attempt, then "internal".
  return { reason: 'internal', retryable: true };
}
