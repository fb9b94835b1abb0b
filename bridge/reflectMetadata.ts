/**
 * The few `Reflect` metadata functions `@peculiar/x509`'s dependency injection (tsyringe) looks
 * for at load time (`defineMetadata`, `getMetadata`, `getOwnMetadata`), so the CA needs no
 * polyfill package. Imported before `@peculiar/x509`; a real polyfill, when present, wins.
 */
type Target = object;
const store = new WeakMap<Target, Map<string | symbol | undefined, Map<unknown, unknown>>>();

function own(target: Target, property: string | symbol | undefined): Map<unknown, unknown> | undefined {
  return store.get(target)?.get(property);
}

const R = Reflect as unknown as Record<string, unknown>;
if (typeof R.getMetadata !== 'function') {
  R.defineMetadata = (key: unknown, value: unknown, target: Target, property?: string | symbol) => {
    let byProperty = store.get(target);
    if (!byProperty) store.set(target, (byProperty = new Map()));
    let m = byProperty.get(property);
    if (!m) byProperty.set(property, (m = new Map()));
    m.set(key, value);
  };
  R.getOwnMetadata = (key: unknown, target: Target, property?: string | symbol) => own(target, property)?.get(key);
  R.getMetadata = (key: unknown, target: Target, property?: string | symbol) => {
    for (let t: Target | null = target; t; t = Object.getPrototypeOf(t) as Target | null) {
      const m = own(t, property);
      if (m?.has(key)) return m.get(key);
    }
    return undefined;
  };
}
