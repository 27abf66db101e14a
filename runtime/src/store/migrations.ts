import { fileURLToPath } from 'node:url';

/** The committed drizzle-kit migrations, resolved from this file so it works from any cwd. */
export const migrationsFolder = fileURLToPath(new URL('./drizzle', import.meta.url));
