/** Seeded words: `n` characters of text that does not compress to nothing, the same for a seed. */
export function seededWords(seed: number, n: number): string {
  let x = seed;
  let out = '';
  while (out.length < n) {
    x = (x * 1103515245 + 12345) % 2 ** 31;
    out += `w${(x % 100_000).toString(36)} `;
  }
  return out.slice(0, n);
}
