// A tiny typed event emitter with no dependency on Node's `events`, so the same
// code runs in browsers. Listener failures are isolated: one throwing listener
// neither stops the others nor fails the SDK call that emitted the event.

export type Listener<T> = (event: T) => void;

/**
 * @example
 * const events = new TypedEmitter<{ ping: { at: number } }>();
 * const off = events.on('ping', (e) => console.log(e.at));
 * events.emit('ping', { at: Date.now() });
 * off();
 */
export class TypedEmitter<Events extends object> {
  readonly #listeners = new Map<keyof Events, Set<Listener<never>>>();

  /** Subscribes; returns the function that unsubscribes. */
  on<K extends keyof Events>(type: K, listener: Listener<Events[K]>): () => void {
    let set = this.#listeners.get(type);
    if (!set) this.#listeners.set(type, (set = new Set()));
    set.add(listener as Listener<never>);
    return () => this.off(type, listener);
  }

  /** Subscribes for the next event only. */
  once<K extends keyof Events>(type: K, listener: Listener<Events[K]>): () => void {
    const off = this.on(type, (event) => {
      off();
      listener(event);
    });
    return off;
  }

  off<K extends keyof Events>(type: K, listener: Listener<Events[K]>): void {
    this.#listeners.get(type)?.delete(listener as Listener<never>);
  }

  /** Number of listeners for `type`. */
  listenerCount(type: keyof Events): number {
    return this.#listeners.get(type)?.size ?? 0;
  }

  emit<K extends keyof Events>(type: K, event: Events[K]): void {
    for (const listener of [...(this.#listeners.get(type) ?? [])]) {
      try {
        (listener as Listener<Events[K]>)(event);
      } catch (err) {
        reportListenerError(err);
      }
    }
  }
}

/** Surfaces a listener's exception the way the platform reports uncaught errors, without unwinding the emitter. */
function reportListenerError(err: unknown): void {
  const report = (globalThis as { reportError?: (e: unknown) => void }).reportError;
  if (typeof report === 'function') report(err);
  else
    queueMicrotask(() => {
      throw err;
    });
}
