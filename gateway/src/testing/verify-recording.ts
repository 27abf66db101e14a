import { readFile } from 'node:fs/promises';
import type { Verdict } from '@ao/actors';
import { loadConfig, parseRunFile, runRecordOf } from '@ao/runtime';
import type { RunFile, ToolDefinition } from '@ao/runtime';
import { verdictLines, verifierFor } from '../cli/verify.js';
import type { AnyGraph } from '../node.js';

/** A recording that did not verify: its message is the verdict as `ao verify` prints it (the diff included). */
export class RecordingNotVerified extends Error {
  constructor(
    readonly verdict: Verdict,
    where: string,
  ) {
    super(
      `${where}: ${verdict.outcome === 'diverged' ? 'the replay diverged from the recording' : 'the recording could not be verified'}\n${verdictLines(verdict).join('\n')}`,
    );
    this.name = 'RecordingNotVerified';
  }
}

export interface VerifyRecordingOptions {
  /** Tools besides the built-in ones (a tool replaces a built-in one of its name), as AO_GRAPHS modules export them. */
  tools?: readonly ToolDefinition[];
  /** The environment whose model profiles count prompt tokens as the recording's did (default process.env; no model is called). */
  env?: NodeJS.ProcessEnv;
}

/**
 * Replay a recorded run (a file `ao export` wrote, or its parsed document) against `graphs` (and the
 * example graphs they do not replace) in recorded mode, in this process, as `ao verify run.json`
 * does: no model or tool is called, nothing is written anywhere. Resolves with the verdict when
 * every decision reproduced the recording's; rejects with {@link RecordingNotVerified}, whose
 * message is the readable diff of the first divergence, otherwise. For a test suite:
 *
 * @example
 * ```ts
 * import { verifyRecording } from '@ao/gateway/testing';
 * import { graphs, tools } from '../src/graphs.js';
 *
 * it('the refund flow decides as recorded', () => verifyRecording('test/recordings/refund.json', graphs, { tools }));
 * ```
 */
export async function verifyRecording(recording: string | RunFile, graphs: readonly AnyGraph[] = [], o: VerifyRecordingOptions = {}): Promise<Verdict> {
  const where = typeof recording === 'string' ? recording : `run ${recording.run.id}`;
  const file = typeof recording === 'string' ? parseRunFile(await readFile(recording, 'utf8'), recording) : parseRunFile(recording);
  const env = o.env ?? process.env;
  const verifier = verifierFor(loadConfig(env), { graphs, tools: o.tools ?? [] }, env);
  try {
    const verdict = await verifier.verify(runRecordOf(file), file.events, file.checkpoints);
    if (verdict.outcome !== 'identical') throw new RecordingNotVerified(verdict, where);
    return verdict;
  } finally {
    await verifier.close();
  }
}
