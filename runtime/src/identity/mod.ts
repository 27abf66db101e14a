export { beatIntervalMs, NodeIdentity, nodeIdInUse, pidRunning, thisProcess, type ProcessRef, type TakeNodeIdOptions } from './identity.js';
export { generateNodeId, NODE_ID_PATTERN, resolveNodeId, type NodeIdSource } from './node-id.js';
