export * from './run-file.js';
