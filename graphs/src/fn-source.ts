/**
 * A function's source as a graph version hashes it (edge predicates, node `args`), the same
 * whichever tool compiled it. `Function.prototype.toString` returns the text the function was
 * compiled from, and the same TypeScript module reaches the engine as different text: tsx prints
 * it with whitespace minified (`ctx=>ctx.input?.intent==="refund"`), esbuild's bundle of the CLI
 * and vitest print it formatted (`(ctx) => ctx.input?.intent === "refund"`), and a hand-written
 * `.mjs` is the author's own text (`(ctx) => ctx.input?.intent === 'refund'`). Hashing the text as
 * it comes gave one graph three versions.
 *
 * The canonical form is the function's tokens, comments and whitespace dropped, joined as
 * esbuild's whitespace-minified printer joins them (a space only where two tokens would otherwise
 * run into one), with what the printers format differently made one way: string literals in
 * double quotes (by value), a lone arrow parameter without parentheses, no `;` before `}`. It is
 * idempotent on tsx's output, so versions computed from source before stay what they were.
 * What a function does is in its tokens, so a change of behaviour written in it changes the form;
 * a closure's captured values and the functions it calls are not in it (they never were).
 */

const WORD = /[\p{ID_Continue}$\u200c\u200d]/u;
const WORD_START = /[\p{ID_Start}$_\\]/u;
const DIGIT = /[0-9]/;
/** Punctuators, longest first. */
const PUNCTUATORS = [
  '>>>=',
  '...',
  '===',
  '!==',
  '**=',
  '<<=',
  '>>=',
  '>>>',
  '&&=',
  '||=',
  '??=',
  '=>',
  '==',
  '!=',
  '<=',
  '>=',
  '&&',
  '||',
  '??',
  '?.',
  '++',
  '--',
  '+=',
  '-=',
  '*=',
  '/=',
  '%=',
  '&=',
  '|=',
  '^=',
  '**',
  '<<',
  '>>',
  '{',
  '}',
  '(',
  ')',
  '[',
  ']',
  ';',
  ',',
  '<',
  '>',
  '+',
  '-',
  '*',
  '/',
  '%',
  '&',
  '|',
  '^',
  '!',
  '~',
  '?',
  ':',
  '=',
  '.',
  '@',
  '#',
];
/** After these words an expression starts, so a `/` is a regular expression, not a division. */
const BEFORE_EXPRESSION = new Set(['return', 'typeof', 'instanceof', 'in', 'of', 'new', 'delete', 'void', 'throw', 'case', 'do', 'else', 'yield', 'await']);

type Token = { kind: 'word' | 'number' | 'string' | 'template' | 'regex' | 'punct'; text: string };

/** The canonical source of a function (see above). */
export function canonicalSource(fn: (...a: never[]) => unknown): string {
  return join(normalise(tokenise(fn.toString())));
}

/** The canonical form of a piece of JavaScript source (an expression or a function). */
export function canonicalCode(code: string): string {
  return join(normalise(tokenise(code)));
}

function tokenise(src: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  const regexAllowed = (): boolean => {
    const prev = out.at(-1);
    if (!prev) return true;
    if (prev.kind === 'word') return BEFORE_EXPRESSION.has(prev.text);
    if (prev.kind === 'punct') return prev.text !== ')' && prev.text !== ']' && prev.text !== '}';
    return false;
  };
  while (i < src.length) {
    const c = src[i]!;
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    if (c === '/' && src[i + 1] === '/') {
      while (i < src.length && src[i] !== '\n') i++;
      continue;
    }
    if (c === '/' && src[i + 1] === '*') {
      const end = src.indexOf('*/', i + 2);
      i = end < 0 ? src.length : end + 2;
      continue;
    }
    if (c === '"' || c === "'") {
      let j = i + 1;
      while (j < src.length && src[j] !== c) j += src[j] === '\\' ? 2 : 1;
      out.push({ kind: 'string', text: JSON.stringify(unquote(src.slice(i + 1, j))) });
      i = j + 1;
      continue;
    }
    if (c === '`') {
      const { text, end } = template(src, i);
      out.push({ kind: 'template', text });
      i = end;
      continue;
    }
    if (c === '/' && regexAllowed()) {
      let j = i + 1;
      let inClass = false;
      while (j < src.length && (inClass || src[j] !== '/')) {
        if (src[j] === '\\') j++;
        else if (src[j] === '[') inClass = true;
        else if (src[j] === ']') inClass = false;
        j++;
      }
      j++;
      while (j < src.length && WORD.test(src[j]!)) j++;
      out.push({ kind: 'regex', text: src.slice(i, j) });
      i = j;
      continue;
    }
    if (DIGIT.test(c) || (c === '.' && DIGIT.test(src[i + 1] ?? ''))) {
      let j = i + 1;
      while (
        j < src.length &&
        (WORD.test(src[j]!) || src[j] === '.' || ((src[j] === '+' || src[j] === '-') && /[eE]/.test(src[j - 1]!) && !/^0[xX]/.test(src.slice(i, j))))
      )
        j++;
      out.push({ kind: 'number', text: src.slice(i, j) });
      i = j;
      continue;
    }
    if (WORD_START.test(c)) {
      let j = i + 1;
      while (j < src.length && (WORD.test(src[j]!) || src[j] === '\\')) j++;
      out.push({ kind: 'word', text: src.slice(i, j) });
      i = j;
      continue;
    }
    const p = PUNCTUATORS.find((x) => src.startsWith(x, i)) ?? c;
    out.push({ kind: 'punct', text: p });
    i += p.length;
  }
  return out;
}

/** A quoted string's value (its escapes read as JavaScript reads them). */
function unquote(body: string): string {
  return body.replace(/\\(u\{[0-9a-fA-F]+\}|u[0-9a-fA-F]{4}|x[0-9a-fA-F]{2}|\r\n|[\s\S])/g, (_m, e: string) => {
    if (e[0] === 'u' && e[1] === '{') return String.fromCodePoint(parseInt(e.slice(2, -1), 16));
    if (e[0] === 'u' || e[0] === 'x') return String.fromCharCode(parseInt(e.slice(1), 16));
    if (e === '\n' || e === '\r\n' || e === '\r' || e === '\u2028' || e === '\u2029') return '';
    return ({ n: '\n', r: '\r', t: '\t', b: '\b', f: '\f', v: '\v', '0': '\0' } as Record<string, string>)[e] ?? e;
  });
}

/** A template literal from `start` (its backtick): its text parts kept, its `${}` parts canonical. */
function template(src: string, start: number): { text: string; end: number } {
  let out = '`';
  let i = start + 1;
  while (i < src.length && src[i] !== '`') {
    if (src[i] === '\\') {
      out += src.slice(i, i + 2);
      i += 2;
    } else if (src[i] === '$' && src[i + 1] === '{') {
      // The expression runs to the brace that closes this one (strings and templates inside skipped).
      let depth = 1;
      let j = i + 2;
      while (j < src.length && depth > 0) {
        const c = src[j]!;
        if (c === '{') depth++;
        else if (c === '}') depth--;
        else if (c === '"' || c === "'") {
          j++;
          while (j < src.length && src[j] !== c) j += src[j] === '\\' ? 2 : 1;
        } else if (c === '`') j = template(src, j).end - 1;
        j++;
      }
      out += `\${${canonicalCode(src.slice(i + 2, j - 1))}}`;
      i = j;
    } else {
      out += src[i];
      i++;
    }
  }
  return { text: `${out}\``, end: i + 1 };
}

/** What printers write differently, made one way: `(x) =>` as `x =>`, no `;` before `}`. */
function normalise(tokens: Token[]): Token[] {
  const out: Token[] = [];
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i]!;
    const [a, b, c] = [tokens[i + 1], tokens[i + 2], tokens[i + 3]];
    if (t.text === '(' && t.kind === 'punct' && a?.kind === 'word' && b?.text === ')' && c?.text === '=>') {
      out.push(a);
      i += 2;
      continue;
    }
    if (t.text === ';' && t.kind === 'punct' && a?.text === '}') continue;
    out.push(t);
  }
  return out;
}

/** Tokens joined with a space only where they would otherwise read as other tokens. */
function join(tokens: Token[]): string {
  let out = '';
  let prev: Token | undefined;
  for (const t of tokens) {
    if (prev && needsSpace(prev, t)) out += ' ';
    out += t.text;
    prev = t;
  }
  return out;
}

function needsSpace(a: Token, b: Token): boolean {
  const wordy = (t: Token) => t.kind === 'word' || t.kind === 'number';
  if (wordy(a) && (wordy(b) || (b.kind === 'punct' && b.text === '.' && a.kind === 'number' && /^\d+$/.test(a.text)))) return true;
  if (a.kind === 'word' && b.kind === 'punct' && b.text === '#') return true;
  if (a.kind === 'punct' && b.kind === 'punct') {
    const last = a.text.at(-1);
    if ((last === '+' || last === '-') && b.text[0] === last) return true;
  }
  return a.kind === 'punct' && a.text.endsWith('/') && (b.kind === 'regex' || b.text.startsWith('/'));
}
