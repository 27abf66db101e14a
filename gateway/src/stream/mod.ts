export { StreamHub } from './hub.js';
export type { RunStreamRecord } from './hub.js';
export { DEFAULT_STREAM_LIMITS, RunStream } from './run-stream.js';
export type { RunSource, RunStreamStats, StreamLimits } from './run-stream.js';
export { StatusFeed } from './status-feed.js';
export { CLOSE, StreamFrame } from './frames.js';
export type { RunFrameT, StreamFrameT } from './frames.js';
export { FrameWriter } from './writer.js';
export type { FrameSocket, WriterLimits } from './writer.js';
