// `@bil/crypto/protocol`: the one definition of the bytes that get signed,
// for the services that check what clients sign. Canonical JSON (RFC 8785
// subset) and the signed structures' types and member lists; pure, no keys,
// no crypto backend, no I/O. The client library (`@bil/crypto`) exports the
// same functions and constants.
export { canonicalize, canonicalBytes, type CanonicalValue, type CanonicalObject } from './canonical-json.js';
export * from './signed-fields.js';
