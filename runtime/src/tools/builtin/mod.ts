import { noop } from './noop.js';
import { stripeRefund } from './stripe-refund.js';
import { webSearch } from './web-search.js';
import { httpRequestTool } from '../http/mod.js';

export { noop, stripeRefund, webSearch };

/**
 * The tools a node registers at start-up. `http_request` here reaches public addresses only;
 * `ao serve` replaces it with one configured from AO_HTTP_TOOL_ALLOW.
 */
export const builtinTools = [webSearch, stripeRefund, noop, httpRequestTool()] as const;
