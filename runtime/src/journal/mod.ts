export { RunJournal } from './journal.js';
export type { ActorJournal, AppendExtra, JournalReplay, CheckpointSource } from './journal.js';
export { STAGE_FLUSH_MS } from './journal.js';
