/**
 * A reader that went away (\`ao show <id> | head -1\`) is not an error: what it did not read is
 * dropped, and the command finishes (a run it hosts included) and exits as it would have.
 */
let stdoutGone = false;
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code !== 'EPIPE') throw e;
  stdoutGone = true;
});
/** Whether stdout's reader went away: a command that only prints (\`ao watch\`) then stops. */
export const readerGone = () => stdoutGone || process.stdout.destroyed;
export const out = (s: string) => {
  if (!stdoutGone) process.stdout.write(`${s}\n`);
};
/** `text` as it is (no newline added), unless stdout's reader went away. */
export const outRaw = (text: string) => {
  if (!stdoutGone) process.stdout.write(text);
};
