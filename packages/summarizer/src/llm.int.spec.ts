// ModelSummarizer against a fake OpenAI-compatible server on 127.0.0.1 (the
// real `openai` SDK over a real socket): what the digest worker and a
// bring-your-own-model client both run.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { FakeOpenAI, MODEL_SUMMARY, launchPlanning } from '@bil/testkit';
import { ModelSummarizer, SUMMARY_PROMPT } from './llm.js';
import { SummarizerError } from './summarizer.js';

let fake: FakeOpenAI;

beforeAll(async () => {
  fake = await new FakeOpenAI().start();
});

afterEach(() => {
  fake.seen.length = 0;
  fake.script.length = 0;
  fake.fallback = { kind: 'ok' };
});

afterAll(async () => {
  await fake?.stop();
});

const model = (settings: Partial<ConstructorParameters<typeof ModelSummarizer>[0]> = {}) =>
  new ModelSummarizer({ apiKey: fake.apiKey, baseURL: fake.url, model: fake.model, maxRetries: 0, timeoutMs: 5000, ...settings });

describe('model summariser', () => {
  it('asks the configured model with the prompt and the transcript, and returns its summary', async () => {
    const s = await model().summarize(launchPlanning());
    expect(s).toEqual({ topic: MODEL_SUMMARY.topic, keyPoints: MODEL_SUMMARY.key_points, actions: MODEL_SUMMARY.actions, language: 'en', method: 'llm' });
    expect(fake.seen).toHaveLength(1);
    expect(fake.seen[0]).toMatchObject({ authorization: `Bearer ${fake.apiKey}`, model: fake.model, responseFormat: { type: 'json_object' } });
    expect(fake.seen[0]!.messages[0]).toEqual({ role: 'system', content: SUMMARY_PROMPT });
    expect(fake.seen[0]!.messages[1]!.content).toContain("Bob Chen: Sure, I'll take it.");
  });

  it('uses the fetch it is given (e.g. a browser app wrapping its own)', async () => {
    let calls = 0;
    const s = await model({ fetch: (input, init) => (calls++, fetch(input, init)), jsonMode: false }).summarize(launchPlanning());
    expect(calls).toBe(1);
    expect(s.method).toBe('llm');
    expect(fake.seen[0]!.responseFormat).toBeUndefined();
  });

  it('an answer that is not the summary JSON gives the extractive summary', async () => {
    fake.fallback = { kind: 'malformed' };
    const why: string[] = [];
    const s = await model({ onFallback: (w) => why.push(w) }).summarize(launchPlanning());
    expect(s.method).toBe('extractive');
    expect(s.actions.length).toBeGreaterThan(0);
    expect(why).toEqual(['invalid_model_output']);
  });

  it('a refused key is final, a busy endpoint is retryable', async () => {
    await expect(model({ apiKey: 'wrong' }).summarize(launchPlanning())).rejects.toMatchObject({ reason: 'summarizer_rejected', retryable: false, status: 401 });
    fake.fallback = { kind: 'status', status: 503 };
    const err = await model().summarize(launchPlanning()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SummarizerError);
    expect(err).toMatchObject({ reason: 'summarizer_unavailable', retryable: true, status: 503 });
  });

  it('sends nothing for an empty conversation', async () => {
    expect(await model().summarize({ title: 'Team', messages: [] })).toMatchObject({ topic: 'Team', keyPoints: [], method: 'extractive' });
    expect(fake.seen).toHaveLength(0);
  });

  it('needs an API key', () => {
    expect(() => new ModelSummarizer({ apiKey: '' })).toThrow(TypeError);
  });
});
