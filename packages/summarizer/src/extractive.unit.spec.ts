import { describe, expect, it } from 'vitest';
import { launchPlanning, reunionFr } from '@bil/testkit';
import { ExtractiveSummarizer, splitSentences, summarizeExtractive } from './extractive.js';
import { detectLanguage } from './language.js';

const summarizer = new ExtractiveSummarizer();

describe('built-in extractive summariser', () => {
  it('summarises a real multi-person conversation: topic, key points with speakers, actions with owners', () => {
    const s = summarizer.summarizeSync(launchPlanning());
    expect(s.method).toBe('extractive');
    expect(s.language).toBe('en');
    expect(s.topic).toMatch(/^Website launch: /);
    expect(s.topic).toContain('launch');
    expect(s.keyPoints.length).toBeGreaterThanOrEqual(3);
    expect(s.keyPoints.length).toBeLessThanOrEqual(5);
    // Key points keep their speaker and are picked verbatim from what matters.
    for (const k of s.keyPoints) expect(k).toMatch(/^(Alice Martin|Bob Chen|Carol Diaz): /);
    expect(s.keyPoints.join('\n')).toMatch(/Safari/);
    expect(s.keyPoints.join('\n')).toMatch(/budget/);
    expect(s.keyPoints.join('\n')).not.toMatch(/lol ok/);
    // Actions with their owners: addressed by name, committed by the speaker.
    expect(s.actions).toEqual(
      expect.arrayContaining([
        { owner: 'Bob Chen', action: 'Bob, can you fix the Safari checkout bug by Wednesday?' },
        { owner: 'Carol Diaz', action: 'I will update the release notes and send them to marketing tomorrow.' },
        { owner: 'Carol Diaz', action: 'Let me also check the analytics dashboard before Thursday.' },
      ]),
    );
  });

  it('answers in the language of the conversation and finds French actions', () => {
    const s = summarizer.summarizeSync(reunionFr());
    expect(s.language).toBe('fr');
    expect(s.actions).toEqual(
      expect.arrayContaining([
        { owner: 'Hugo', action: 'Hugo, peux-tu réserver la salle pour mardi ?' },
        { owner: 'Inès', action: 'Je vais préparer les chiffres du budget pour la réunion.' },
      ]),
    );
    expect(s.topic).toMatch(/budget|réunion/);
  });

  it('gives a request without a name to whoever accepts it', () => {
    const s = summarizeExtractive({
      title: '',
      messages: [
        { sender: 'Ann', text: 'Could you send the signed contract to the client today?' },
        { sender: 'Ben', text: 'Hmm, not me, I am off.' },
        { sender: 'Cleo', text: 'Sure, will do this afternoon.' },
      ],
    });
    expect(s.actions).toEqual([{ owner: 'Cleo', action: 'Could you send the signed contract to the client today?' }]);
  });

  it('handles one short message', () => {
    const s = summarizeExtractive({ title: 'Ping', messages: [{ sender: 'Zoé', text: 'ok' }] });
    expect(s.topic).toBe('Ping');
    expect(s.keyPoints).toEqual([]);
    expect(s.actions).toEqual([]);
  });

  it('handles no messages at all (every message left out by consent)', () => {
    expect(summarizeExtractive({ title: 'Team', messages: [] })).toEqual({ topic: 'Team', keyPoints: [], actions: [], language: 'und', method: 'extractive' });
    expect(summarizeExtractive({ title: '', messages: [] }).topic).toBe('');
  });

  it('splits sentences without breaking abbreviations of numbers', () => {
    expect(splitSentences('We ship v2.1 today. Then rest! OK?')).toEqual(['We ship v2.1 today.', 'Then rest!', 'OK?']);
  });

  it('guesses languages from stop words', () => {
    expect(detectLanguage('the plan is to ship it on Monday and then we will see').code).toBe('en');
    expect(detectLanguage('wir haben das Budget und die Planung für das nächste Jahr').code).toBe('de');
    expect(detectLanguage('hay que preparar el presupuesto para la reunión de mañana').code).toBe('es');
    expect(detectLanguage('12345').code).toBe('und');
  });
});
