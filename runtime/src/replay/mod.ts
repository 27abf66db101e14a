export { Recording, ORDERED_TYPES, CIRCUMSTANTIAL_TYPES } from './recording.js';
export type { RecordedStep, RecordedStepEnd } from './recording.js';
export { contentHash, describeChange, describeDivergence, emitterOf, gistOf, sameGist, withoutRunIds } from './describe.js';
export { compareLogs } from './compare.js';
export type { LogComparison, LogDifference, NodeOutputDifference } from './compare.js';
