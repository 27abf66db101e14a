export { RunJournal } from './journal.js';
