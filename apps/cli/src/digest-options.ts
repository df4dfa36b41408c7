// What `bil digest` is asked to do, from its flags and the environment (pure,
// so the rules are tested without a server): who reads the plaintext (the
// mode), the client's own unread threshold, the wait, a resume.
import { checkUrl } from './config.js';
import { usage } from './errors.js';

type Env = Record<string, string | undefined>;

/** OpenAI's API, when --model names a model without --model-url. */
export const DEFAULT_MODEL_URL = 'https://api.openai.com/v1';
export const DEFAULT_TIMEOUT_S = 120;

export type DigestMode =
  | { readonly on: 'server' }
  | { readonly on: 'device' }
  | { readonly on: 'model'; readonly model: { readonly apiKey: string; readonly baseURL: string; readonly model: string } };

export interface DigestFlags {
  onDevice?: boolean;
  model?: string;
  modelUrl?: string;
  minUnread?: string;
  yes?: boolean;
  resume?: string;
  timeout?: string;
  digestKey?: string;
}

export interface DigestPlan {
  readonly mode: DigestMode;
  /** The client's threshold (undefined: the SDK's default, 20). */
  readonly minUnread: number | undefined;
  readonly timeoutMs: number;
  /** A timed-out request to pick up again. */
  readonly resume: string | undefined;
  /** Skip the question before the first server or model digest of a chat. */
  readonly yes: boolean;
}

function wholeNumber(value: string | undefined, name: string, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (value.trim() === '' || !Number.isSafeInteger(n) || n < min || n > max) throw usage(`${name}: expected a whole number from ${min} to ${max}`);
  return n;
}

export function planDigest(refs: readonly string[], f: DigestFlags, env: Env): DigestPlan {
  if (f.onDevice && f.model !== undefined) throw usage('give --on-device or --model, not both');
  if (f.modelUrl !== undefined && f.model === undefined) throw usage('--model-url needs --model <name>');
  if (f.resume !== undefined) {
    if (refs.length) throw usage('--resume picks up a request as it was: give no chats with it');
    if (f.onDevice || f.model !== undefined) throw usage('--resume is for server digests (on-device and model digests don\'t wait on a server)');
    if (!/^[A-Za-z0-9_-]{1,128}$/.test(f.resume)) throw usage(`--resume: "${f.resume}" is not a request id`);
  }
  let mode: DigestMode = { on: 'server' };
  if (f.onDevice) mode = { on: 'device' };
  if (f.model !== undefined) {
    const model = f.model.trim();
    if (!model) throw usage('--model: name the model, e.g. --model gpt-4o-mini');
    const apiKey = env.BIL_MODEL_API_KEY;
    if (!apiKey) {
      throw usage(
        'a model digest needs your API key in BIL_MODEL_API_KEY',
        'it is read from the environment only (never a flag, never stored); for a local server that needs none, set any value',
      );
    }
    mode = { on: 'model', model: { apiKey, baseURL: checkUrl(f.modelUrl ?? DEFAULT_MODEL_URL), model } };
  }
  return {
    mode,
    minUnread: wholeNumber(f.minUnread, '--min-unread', 1, 100_000),
    timeoutMs: (wholeNumber(f.timeout, '--timeout', 1, 3600) ?? DEFAULT_TIMEOUT_S) * 1000,
    resume: f.resume,
    yes: f.yes === true,
  };
}

const LOOPBACK = new Set(['localhost', '127.0.0.1', '[::1]']);

/** Who can read the transcript in a mode, in one line (what the CLI adds to the SDK's disclosure). */
export function whoReads(mode: DigestMode, digestKey?: { fingerprint: string; from: string }): string {
  switch (mode.on) {
    case 'device':
      return 'On-device digest: the summary is made on this machine; nothing leaves it.';
    case 'model': {
      const u = new URL(mode.model.baseURL);
      const plain = u.protocol === 'http:' && !LOOPBACK.has(u.hostname) ? ' Over plain http: anyone on the network path can read them and your key too.' : '';
      return `Model digest: the decrypted messages, names and title go from this machine to ${u.host} (model ${mode.model.model}, with your BIL_MODEL_API_KEY): that provider can read them; no bil server does.${plain}`;
    }
    case 'server':
      return (
        'Server digest: the decrypted messages, names and title are sealed to the digest service' +
        (digestKey ? ` (key ${digestKey.fingerprint}, from ${digestKey.from})` : '') +
        ': its operator and the model provider it uses can read them; the chat, delivery and identity services and their databases can\'t.'
      );
  }
}
