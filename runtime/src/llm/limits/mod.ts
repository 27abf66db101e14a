export { LlmLimitsSchema, bucketLimits, type LlmLimits } from './config.js';
export { reserve, adjust, hold, unhold, levelAt, type BucketState, type BucketLimits, type Rate, type Ask, type LimitName } from './bucket.js';
export { MemoryBucketTable, type BucketTable, type BucketUpdate } from './table.js';
export { ProfileLimiter, type ThrottleInfo, type Permit } from './limiter.js';
export { withLimits } from './limited-llm.js';
