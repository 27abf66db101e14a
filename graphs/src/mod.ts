export { graph, GraphBuilder, toGraphDef, isGraphBuilder, parseBudget, canonicalJson, schemaJson } from './builder.js';
export { GraphRegistry } from './registry.js';
export * from './types.js';
export * from './errors.js';
export * from './examples/mod.js';
