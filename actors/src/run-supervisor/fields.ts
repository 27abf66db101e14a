/**
 * A field of a value that is an object, or undefined: how the supervisor reads what a person
 * answered (a wait outcome's payload, checked against the wait's schema when it was taken) and a
 * wait's own payload, both `unknown` in their types, without asserting a shape.
 */
export function fieldOf<K extends string>(value: unknown, key: K): unknown {
  return typeof value === 'object' && value !== null && key in value ? (value as Record<K, unknown>)[key] : undefined;
}

/** A field that is a number, or undefined. */
export function numberField(value: unknown, key: string): number | undefined {
  const v = fieldOf(value, key);
  return typeof v === 'number' ? v : undefined;
}
