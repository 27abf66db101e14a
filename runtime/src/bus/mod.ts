export type { Bus, EnvelopeHandler, Subscription } from './port.js';
export { InProcessBus } from './in-process/in-process-bus.js';
