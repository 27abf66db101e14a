export { RunJournal } from './journal.js';
export type { JournalReplay, CheckpointSource } from './journal.js';
