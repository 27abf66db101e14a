import { z } from 'zod';
import type { NodeInfo } from './port.js';

/** A node's membership entry (`NodeInfo`) as it crosses the wire and the HTTP API (`GET /nodes`): one schema for both. */
export const NodeInfoSchema = z.object({
  id: z.string(),
  host: z.string().optional(),
  pid: z.number().int().optional(),
  started: z.string(),
  runsHosted: z.number().int(),
  activeRuns: z.number().int(),
  tasksDone: z.number().int(),
  activeTasks: z.number().int().optional(),
  runs: z.array(z.string()).optional(),
  load: z.object({ cpu: z.number(), eventLoopDelayMs: z.number(), rssBytes: z.number() }).optional(),
  lastHeartbeat: z.string(),
});

// The schema and the port's interface (which documents each field) describe the same entry.
true satisfies z.infer<typeof NodeInfoSchema> extends NodeInfo ? (NodeInfo extends z.infer<typeof NodeInfoSchema> ? true : false) : false;
