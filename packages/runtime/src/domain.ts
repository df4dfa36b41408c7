// `@bil/runtime/domain`: what a pure domain module may use, and nothing that
// does I/O (no gRPC, NATS, PostgreSQL or Redis import behind it): deciders and
// events, the error type, the clock, typed field names for SQL, and a
// weight-bounded LRU map. The
// services' `src/domain/` modules import from here only (a test in each
// service checks it: no import of '@bil/runtime' itself).
export * from './clock.js';
export * from './decider.js';
export * from './errors.js';
export * from './fields.js';
export * from './weighted-lru.js';
