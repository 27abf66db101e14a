export { SecretVault, type RunSecrets } from './vault.js';
export { parseSecretKey, resolveSecretKey } from './key.js';
export {
  fieldOf,
  handleFor,
  handlesIn,
  hasSecretMarks,
  isHandle,
  redactArgs,
  REDACTED,
  sealResult,
  secretPointers,
  substituteHandles,
  toolSecrets,
  type JsonSchema,
  type ToolSecrets,
} from './marks.js';
