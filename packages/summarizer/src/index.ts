// @bil/summarizer: digest summaries and their plaintext formats, for the
// digest service and for clients (on-device and bring-your-own-model
// digests). Browser-safe: no Node built-ins; SHA-256 through WebCrypto.
export {
  TRANSCRIPT_TYPE,
  SUMMARY_TYPE,
  REQUEST_KIND,
  RESULT_KIND,
  MAX_MESSAGES,
  MAX_TEXT,
  MAX_NAME,
  MAX_TITLE,
  digestContext,
  encodeTranscript,
  parseTranscript,
  transcriptSha256,
  encodeSummary,
  parseSummary,
  InvalidTranscriptError,
  InvalidSummaryError,
  type Transcript,
  type TranscriptMessage,
  type DigestBinding,
  type DigestSummaryPlain,
  type ExpectedSummary,
} from './formats.js';
export { SummarizerError, transcriptLines, type ActionItem, type Summary, type Summarizer, type SummarizerFailure, type SummarizerInput } from './summarizer.js';
export { ExtractiveSummarizer, summarizeExtractive, splitSentences, type ExtractiveOptions } from './extractive.js';
export { detectLanguage, type LanguageProfile } from './language.js';
export { ModelSummarizer, MODEL_DEFAULTS, SUMMARY_PROMPT, COMBINE_PROMPT, chunkLines, parseModelSummary, classifyModelError, type ModelSettings } from './llm.js';
