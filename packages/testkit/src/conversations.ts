// Real-looking multi-person conversations for the summarisers, the digest
// service's tests (which seal them) and the SDK's. Each message carries the
// speaker's display name and account id (consent applies to the account):
// pass `userIds` (display name → user id) to use real test users; otherwise
// each speaker gets a fixed id.

export interface ConversationMessage {
  seq: number;
  sender: string;
  senderUserId: string;
  /** Milliseconds since the Unix epoch. */
  sentAt: number;
  text: string;
}

export interface Conversation {
  title: string;
  messages: ConversationMessage[];
}

const at = (i: number) => 1_764_100_000_000 + i * 60_000;

function build(title: string, lines: Array<[string, string]>, userIds: Record<string, string>): Conversation {
  const speakers = [...new Set(lines.map(([sender]) => sender))];
  const idOf = (sender: string) => userIds[sender] ?? `0190b0a4-0000-7000-8000-${String(speakers.indexOf(sender) + 1).padStart(12, '0')}`;
  return { title, messages: lines.map(([sender, text], i) => ({ seq: i + 1, sender, senderUserId: idOf(sender), sentAt: at(i), text })) };
}

/** 14 messages in English among Alice Martin, Bob Chen and Carol Diaz; `marker` is appended to message 9. */
export const launchPlanning = (marker = '', userIds: Record<string, string> = {}) =>
  build(
    'Website launch',
    [
      ['Alice Martin', 'Morning all! We need to settle the website launch plan today.'],
      ['Bob Chen', 'The staging build is green. The launch date is still Thursday 4 December?'],
      ['Alice Martin', 'Yes, the launch stays on Thursday. Marketing already announced it.'],
      ['Carol Diaz', 'One problem: the payment page still fails on Safari. It is a blocker for the launch.'],
      ['Bob Chen', 'I saw that. The Safari issue comes from the new checkout script.'],
      ['Alice Martin', 'Bob, can you fix the Safari checkout bug by Wednesday?'],
      ['Bob Chen', "Sure, I'll take it."],
      ['Carol Diaz', 'I will update the release notes and send them to marketing tomorrow.'],
      ['Alice Martin', `We also agreed the budget for ads is 5000 euros. ${marker}`.trim()],
      ['Carol Diaz', 'Great, that budget works for the launch campaign.'],
      ['Bob Chen', 'Who handles the DNS switch on launch day?'],
      ['Alice Martin', 'Dave handles the DNS switch, I already asked him.'],
      ['Carol Diaz', 'Perfect. Let me also check the analytics dashboard before Thursday.'],
      ['Bob Chen', 'lol ok'],
    ],
    userIds,
  );

/** 7 messages in French among Léa, Hugo and Inès, no title. */
export const reunionFr = (userIds: Record<string, string> = {}) =>
  build(
    '',
    [
      ['Léa', "Bonjour à tous, il faut organiser la réunion de l'équipe pour le budget de l'année prochaine."],
      ['Hugo', 'Je propose mardi à 10h dans la grande salle.'],
      ['Léa', "D'accord pour mardi. Le budget doit être validé avant la fin du mois."],
      ['Inès', 'Hugo, peux-tu réserver la salle pour mardi ?'],
      ['Hugo', "Oui, je m'en occupe."],
      ['Inès', 'Je vais préparer les chiffres du budget pour la réunion.'],
      ['Léa', "Merci ! C'est important, le directeur sera présent à la réunion."],
    ],
    userIds,
  );
