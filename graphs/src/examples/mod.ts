import { draftCritique } from './draft-critique.js';
import { researchSwarm } from './research-swarm.js';
import { triage } from './triage.js';
import { triageWithApproval } from './triage-with-approval.js';

export { draftCritique, researchSwarm, triage, triageWithApproval };
export { RefundApprovalSchema } from './triage-with-approval.js';
export { MAX_DRAFTS } from './draft-critique.js';

/** The example graphs a node registers at start-up. */
export const exampleGraphs = [researchSwarm, triage, draftCritique, triageWithApproval] as const;
