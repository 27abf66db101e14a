import { noop } from './noop.js';
import { stripeRefund } from './stripe-refund.js';
import { webSearch } from './web-search.js';

export { noop, stripeRefund, webSearch };

/** The tools a node registers at start-up. */
export const builtinTools = [webSearch, stripeRefund, noop] as const;
