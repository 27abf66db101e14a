// `@ao/gateway/testing`: helpers for users' own test suites. Here, not in @ao/actors, because
// verifying a recording needs the composition root: the built-in tools (their schemas are part of
// every prompt), the example graphs and the configured model profiles, which only the gateway wires.
export { RecordingNotVerified, verifyRecording } from './verify-recording.js';
export type { VerifyRecordingOptions } from './verify-recording.js';
export type { Verdict } from '@ao/actors';
export { parseRunFile, RunFileSchema } from '@ao/runtime';
export type { RunFile } from '@ao/runtime';
