// Reads docs/ and the code's own lists; no servers.
export { default } from '../../vitest.base.js';
