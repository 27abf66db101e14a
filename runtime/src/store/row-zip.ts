import { crc32, deflateRawSync, inflateRawSync } from 'node:zlib';
import { AoError } from '@ao/graphs';

/**
 * Checkpoint states compressed by the store itself (issue 18, W4). Postgres compresses a value
 * only when its row passes about 2 KB, and a checkpoint state is about 1-2 KB of JSON: stored as
 * it was, it cost its whole text at every step. Each state is deflated (raw deflate, zlib) with a
 * preset dictionary of the strings every state (and envelope) repeats: the scheduler's, the
 * ledger's and the usage's shapes, envelope types, field names and actor paths. The dictionary is
 * what makes a small value compress: alone, a 1.5 KB state has too little of itself to refer back
 * to. (Journal rows are deflated against their run's first rows instead: ./journal-zip.ts.)
 *
 * The dictionary is part of the stored format: states deflated with {@link STATE_DICT_V1} are
 * the checkpoints' `zstate`; another dictionary would need a marker of its own, read beside this
 * one, never a change of this one.
 */
/**
 * Pieces of a state as the run supervisor writes it (`JSON.stringify`, its keys in this order),
 * most common last: deflate finds the nearest match first.
 */
const STATE_PIECES = [
  '{"v":1,"step":',
  ',"sched":{"nodes":{',
  '":{"status":"pending","iteration":0,"attempt":0}',
  '":{"status":"failed","iteration":1,"attempt":1,"startedAt":"',
  '":{"status":"skipped","iteration":0,"attempt":0}',
  '","error":{"code":"AO_',
  '"},"waits":{"',
  '","kind":"interrupt","prompt":"',
  '"closedWaits":["supervisor/',
  '"edges":["taken","not_taken","unresolved"],"deferred":[],"outputs":{},"finished":false}',
  ',"$refs":[{"path":["sched","outputs","',
  '"],"id":"',
  '","field":["output"]}',
  ',"deadline":',
  ',"live":[{"node":"',
  '","name":"',
  '","startId":"',
  ',"usage":{"inputTokens":',
  ',"outputTokens":',
  ',"totalTokens":',
  ',"llmCalls":',
  ',"toolCalls":',
  ',"perTool":{"',
  ',"ledger":{"used":{"tokens":',
  ',"usd":0,"tools":',
  '},"byNode":{"',
  '":{"tokens":',
  '},"reserved":{}}}',
  '":{"status":"running","iteration":1,"attempt":1,"startedAt":"2026-',
  '":{"status":"succeeded","iteration":1,"attempt":1,"startedAt":"2026-',
  'T00:00:00.000Z","finishedAt":"2026-',
];
/** The preset dictionary of `zstate` (never changed: another would need a marker of its own). */
export const STATE_DICT_V1 = Buffer.from(STATE_PIECES.join(''), 'utf8');

/** Small rows deflate in a 4 KiB window (cheaper to set up); a larger one in the full 32 KiB. */
const SMALL = 8_192;

/** A state's JSON deflated with the dictionary. */
export function zipState(text: string): Buffer {
  const buf = Buffer.from(text, 'utf8');
  const small = buf.length <= SMALL;
  return deflateRawSync(buf, { level: 3, dictionary: STATE_DICT_V1, windowBits: small ? 12 : 15, memLevel: small ? 8 : 9 });
}

/** The state {@link zipState} deflated. */
export function unzipState(bytes: Uint8Array): string {
  return inflateRawSync(bytes, { dictionary: STATE_DICT_V1, windowBits: 15 }).toString('utf8');
}

/**
 * A state deflated against an earlier checkpoint of its run (its base, a keyframe: a state
 * deflated with the dictionary alone), issue 18, 2026-12-06. A step's state is mostly its
 * previous one (the same nodes, ledger and usage, a few times and counts moved), which the
 * dictionary alone does not know: against the keyframe, a W4 state deflates to about 200 bytes
 * instead of 340. Every {@link KEYFRAME_EVERY}th checkpoint of a run this process writes is a
 * keyframe (and its first after a restart), so reading any checkpoint takes at most one other.
 *
 * Its bytes: {@link DELTA} (a first byte no raw deflate stream starts with: block type 3 is
 * reserved), the base's step and the CRC-32 of the base's text (4 bytes each, big-endian), then
 * the raw deflate stream, with {@link STATE_DICT_V1} and the base's text as its dictionary. A
 * state read against any other text fails with `AO_STORE_CORRUPT`; retention keeps a keyframe
 * while a kept checkpoint is deflated against it.
 */
export const DELTA = 0xfe;
const DELTA_HEAD = 9;
/** One checkpoint in this many of a run is a keyframe (see {@link DELTA}). */
export const KEYFRAME_EVERY = 16;

/** A keyframe as later states of its run are deflated against it. */
export interface StateBase {
  step: number;
  crc: number;
  dict: Buffer;
  /** The keyframe's JSON length. */
  length: number;
}

export const stateBase = (step: number, text: string): StateBase => ({
  step,
  crc: crc32(text),
  dict: Buffer.concat([STATE_DICT_V1, Buffer.from(text, 'utf8')]),
  length: text.length,
});

/** The step of the keyframe a stored state is deflated against, or undefined for a keyframe. */
export function stateBaseOf(z: Uint8Array): number | undefined {
  return z[0] === DELTA && z.length >= DELTA_HEAD ? Buffer.from(z.buffer, z.byteOffset, z.length).readUInt32BE(1) : undefined;
}

/** A state's JSON deflated against its run's keyframe `base`. */
export function zipStateAgainst(text: string, base: StateBase): Buffer {
  const buf = Buffer.from(text, 'utf8');
  const head = Buffer.alloc(DELTA_HEAD);
  head[0] = DELTA;
  head.writeUInt32BE(base.step, 1);
  head.writeUInt32BE(base.crc, 5);
  // The window holds the dictionary and the text: 4 KiB (cheaper to set up) when they fit.
  const small = base.dict.length + buf.length <= 4_096;
  return Buffer.concat([head, deflateRawSync(buf, { level: 3, dictionary: base.dict, windowBits: small ? 12 : 15, memLevel: small ? 8 : 9 })]);
}

/** A state {@link zipStateAgainst} deflated, read against its keyframe (`base`, undefined when not found). */
export function unzipStateAgainst(z: Buffer, base: StateBase | undefined, where: string): string {
  const step = stateBaseOf(z);
  const fail = (why: string, cause?: unknown) => new AoError('AO_STORE_CORRUPT', `${where} cannot be read: ${why}`, cause ? { cause } : {});
  if (step === undefined || !base || base.step !== step) throw fail(`it is deflated against the checkpoint at step ${String(step)}, which was not found`);
  if (base.crc !== z.readUInt32BE(5)) throw fail(`it is deflated against another state than the one of step ${step}`);
  try {
    return inflateRawSync(z.subarray(DELTA_HEAD), { dictionary: base.dict, windowBits: 15 }).toString('utf8');
  } catch (e) {
    throw fail('its deflated state is damaged', e);
  }
}

/** Each recent run's latest keyframe this process wrote, and how many states it has deflated against it. */
export class StateBases {
  private readonly runs = new Map<string, { base: StateBase; since: number }>();

  constructor(private readonly maxRuns = 2_000) {}

  /** How one commit deflates its checkpoint states. */
  zipper(): StateZipper {
    return new StateZipper(this);
  }

  /**
   * The run's keyframe to deflate a state of `step` (`length` its JSON's) against, unless it is
   * time for a new one: every {@link KEYFRAME_EVERY}th state, or one whose length is a quarter
   * off its keyframe's (a run's first states grow as its nodes run: W4's first 11 checkpoints
   * take 201 B a step so, 267 against its first state).
   */
  take(runId: string, step: number, length: number): StateBase | undefined {
    const known = this.runs.get(runId);
    if (!known || known.base.step >= step || known.since >= KEYFRAME_EVERY - 1 || Math.abs(length - known.base.length) * 4 > known.base.length)
      return undefined;
    known.since++;
    return known.base;
  }

  /** A keyframe landed: the run's next states are deflated against it. */
  add(runId: string, base: StateBase): void {
    this.runs.delete(runId);
    if (this.runs.size >= this.maxRuns) this.runs.delete(this.runs.keys().next().value!);
    this.runs.set(runId, { base, since: 0 });
  }

  forget(runId: string): void {
    this.runs.delete(runId);
  }
}

/** A commit's checkpoint states, deflated; its keyframes are known once it lands (a state is never deflated against one that may not be stored). */
export class StateZipper {
  private readonly fresh: Array<[string, StateBase]> = [];

  constructor(private readonly bases: StateBases) {}

  zip(runId: string, step: number, text: string): Buffer {
    const base = this.bases.take(runId, step, text.length);
    if (base) return zipStateAgainst(text, base);
    this.fresh.push([runId, stateBase(step, text)]);
    return zipState(text);
  }

  landed(): void {
    for (const [runId, base] of this.fresh) this.bases.add(runId, base);
  }
}
