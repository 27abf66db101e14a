import { parseArgs } from 'node:util';
import type { ParseArgsConfig } from 'node:util';

/** Every option of every `ao` command (but `keys` and `verify`, which parse their own). */
const OPTIONS = {
  input: { type: 'string', short: 'i' },
  watch: { type: 'boolean', short: 'w', default: false },
  port: { type: 'string' },
  host: { type: 'string' },
  status: { type: 'string' },
  graph: { type: 'string' },
  since: { type: 'string' },
  until: { type: 'string' },
  id: { type: 'string' },
  limit: { type: 'string' },
  events: { type: 'boolean', default: false },
  json: { type: 'boolean', default: false },
  url: { type: 'string' },
  'from-step': { type: 'string' },
  recorded: { type: 'boolean', default: false },
  lenient: { type: 'boolean', default: false },
  overrides: { type: 'string' },
  node: { type: 'string' },
  wait: { type: 'string' },
  payload: { type: 'string' },
  approve: { type: 'boolean', default: false },
  reject: { type: 'boolean', default: false },
  comment: { type: 'string' },
  help: { type: 'boolean', short: 'h', default: false },
  'no-node': { type: 'boolean', default: false },
  output: { type: 'string', short: 'o' },
  'no-checkpoints': { type: 'boolean', default: false },
  as: { type: 'string' },
} satisfies NonNullable<ParseArgsConfig['options']>;

/** A command line's options and positionals. */
export const parseCommandLine = (argv: string[]) => parseArgs({ args: argv, allowPositionals: true, options: OPTIONS });

/** The options a command line gave. */
export type Values = ReturnType<typeof parseCommandLine>['values'];
