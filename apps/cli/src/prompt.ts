// Secrets from the terminal without echo, and text from standard input.
import { createInterface } from 'node:readline';
import { ExitCode, CliError, usage } from './errors.js';

export const stdinIsTty = (): boolean => Boolean(process.stdin.isTTY);

/** Reads a line from the terminal without echoing it (prompt on stderr). Ctrl-C exits 130. */
export function readSecret(prompt: string): Promise<string> {
  const stdin = process.stdin;
  return new Promise((resolve, reject) => {
    process.stderr.write(prompt);
    let value = '';
    const wasRaw = stdin.isRaw;
    stdin.setRawMode(true);
    stdin.resume();
    stdin.setEncoding('utf8');
    const done = (err?: Error) => {
      stdin.setRawMode(wasRaw);
      stdin.pause();
      stdin.off('data', onData);
      process.stderr.write('\n');
      if (err) reject(err);
      else resolve(value);
    };
    const onData = (chunk: string) => {
      for (const ch of chunk) {
        if (ch === '\r' || ch === '\n') return done();
        if (ch === '\u0003') {
          done(new CliError('interrupted', 'interrupted', ExitCode.interrupted));
          return;
        }
        if (ch === '\u0004') return done();
        if (ch === '\u007f' || ch === '\b') value = value.slice(0, -1);
        else if (ch >= ' ') value += ch;
      }
    };
    stdin.on('data', onData);
  });
}

/** Everything on standard input as text. */
export async function readAllStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(typeof c === 'string' ? Buffer.from(c) : (c as Buffer));
  return Buffer.concat(chunks).toString('utf8');
}

/** Lines of standard input as they come (for `listen --chat` and link approvals). */
export function stdinLines(): AsyncIterableIterator<string> {
  const rl = createInterface({ input: process.stdin, crlfDelay: Infinity, terminal: false });
  return rl[Symbol.asyncIterator]();
}

/**
 * Asks a question on the terminal (echoed), answer without the newline.
 * Ctrl-C rejects with the `interrupted` error (exit 130), the end of input
 * (Ctrl-D) with a usage error: the question never just hangs or is dropped.
 */
export async function ask(
  question: string,
  io: { input: NodeJS.ReadableStream; output: NodeJS.WritableStream } = { input: process.stdin, output: process.stderr },
): Promise<string> {
  const rl = createInterface({ input: io.input, output: io.output, terminal: true });
  try {
    return await new Promise<string>((resolve, reject) => {
      rl.on('SIGINT', () => {
        io.output.write('\n');
        reject(new CliError('interrupted', 'interrupted', ExitCode.interrupted));
      });
      rl.on('close', () => reject(usage('no answer: the input ended')));
      rl.question(question, resolve);
    });
  } finally {
    rl.close();
  }
}
