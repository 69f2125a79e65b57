// A page-wide store of values by key with per-key subscribers (trackStore, qualityStore). No DOM.

/** A store whose `subscribe(key, callback)` calls back at once with the current value and on every `set`. */
export function createKeyedStore() {
  return {
    values: new Map(),
    listeners: new Map(),
    set(key, value) {
      if (value) this.values.set(key, value);
      else this.values.delete(key);
      for (const callback of this.listeners.get(key) || []) callback(value || null);
    },
    get(key) {
      return this.values.get(key) || null;
    },
    subscribe(key, callback) {
      if (!this.listeners.has(key)) this.listeners.set(key, new Set());
      this.listeners.get(key).add(callback);
      callback(this.get(key));
      return () => this.listeners.get(key) && this.listeners.get(key).delete(callback);
    },
  };
}
