// Names of event and state fields as SQL uses them, checked by the compiler.
//
// SQL that reads an event payload or a stored state (`data->>'chatId'`,
// `state->'members'`) names a field of a TypeScript type in a string the
// compiler never sees: renaming the field in the decider would break the SQL
// silently. Build such SQL from these instead: `fieldOf<T>('chatId')` only
// compiles when `chatId` is a key of T, and `fieldsOf<T>()('a', 'b')` gives
// several at once. Part of `@bil/runtime/domain` (pure).

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** `key`, which must be a key of T; as safe to put in SQL as a literal (an identifier, checked). */
export function fieldOf<T, K extends keyof T & string = keyof T & string>(key: K): K {
  if (!IDENTIFIER.test(key)) throw new Error(`field name not usable in SQL: ${key}`);
  return key;
}

/** Several field names of T at once, as an object by name: `fieldsOf<Msg>()('chatId', 'seq').chatId`. */
export function fieldsOf<T>() {
  return <K extends keyof T & string>(...keys: K[]): { readonly [P in K]: P } =>
    Object.fromEntries(keys.map((k) => [k, fieldOf<T, K>(k)])) as { [P in K]: P };
}
