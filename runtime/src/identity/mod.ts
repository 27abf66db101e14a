export { beatIntervalMs, NodeIdentity, nodeIdInUse, pidRunning, thisProcess, type ProcessRef, type TakeNodeIdOptions } from './identity.js';
export { generateNodeId, NODE_ID_PATTERN, resolveNodeId, type NodeIdSource } from './node-id.js';
export {
  DataDirLock,
  dataDirLocked,
  LOCK_BEAT_MS,
  LOCK_FILE,
  LOCK_STALE_MS,
  type DataDirHolder,
  type DataDirLockOptions,
  type HolderState,
} from './data-dir-lock.js';
