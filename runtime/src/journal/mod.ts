export { RunJournal } from './journal.js';
export type { ActorJournal, JournalReplay, CheckpointSource } from './journal.js';
