export { FakeProvider, type FakeAnswer, type FakeFault, type FakeReply, type FakeRequest } from './fake-provider.js';
export { FakeLimiter, type FakeLimits } from './fake-limits.js';
