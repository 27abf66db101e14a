/** Port conformance suites, for adapters living outside this package. Test-only (imports vitest). */
export { busConformance } from './bus/conformance.js';
export { storeConformance } from './store/conformance.js';
