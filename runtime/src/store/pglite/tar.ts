import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, sep } from 'node:path';

/**
 * A template's tree (see template.ts): its files and directories, and the tree as an uncompressed
 * ustar tarball (POSIX.1-1988), which PGlite loads an in-memory store from.
 */

/** Every file under `dir` (relative paths with `/`, sorted) and every directory, for hashing and copying. */
export function walk(dir: string): { files: string[]; dirs: string[] } {
  const files: string[] = [];
  const dirs: string[] = [];
  for (const e of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    const rel = relative(dir, join(e.parentPath, e.name)).split(sep).join('/');
    if (e.isDirectory()) dirs.push(rel);
    else if (e.isFile()) files.push(rel);
  }
  files.sort();
  dirs.sort();
  return { files, dirs };
}

/** One 512-byte ustar header (POSIX.1-1988) for a regular file or a directory. */
function tarHeader(name: string, size: number, mode: number, mtimeSec: number, dir: boolean): Buffer {
  const h = Buffer.alloc(512);
  if (Buffer.byteLength(name) > 99) throw new Error(`a template file's name is too long for a tarball: ${name}`);
  const octal = (v: number, width: number, at: number) => h.write(`${v.toString(8).padStart(width - 1, '0')}\0`, at, 'latin1');
  h.write(name, 0, 'utf8');
  octal(mode & 0o7777, 8, 100);
  octal(0, 8, 108);
  octal(0, 8, 116);
  octal(size, 12, 124);
  octal(mtimeSec, 12, 136);
  h.write(dir ? '5' : '0', 156, 'latin1');
  h.write('ustar\u000000', 257, 'latin1');
  // The checksum is the byte sum of the header with its own field read as spaces.
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
  return h;
}

/** The tree `from` as an uncompressed ustar archive (directories first, then files; names relative). */
export function tarTree(from: string): Buffer {
  const { files, dirs } = walk(from);
  const parts: Buffer[] = [];
  const mtime = (p: string) => Math.floor(statSync(p).mtimeMs / 1000);
  for (const d of dirs) parts.push(tarHeader(`${d}/`, 0, statSync(join(from, d)).mode, mtime(join(from, d)), true));
  for (const f of files) {
    const path = join(from, f);
    const body = readFileSync(path);
    const st = statSync(path);
    parts.push(tarHeader(f, body.length, st.mode, Math.floor(st.mtimeMs / 1000), false), body);
    const pad = (512 - (body.length % 512)) % 512;
    if (pad) parts.push(Buffer.alloc(pad));
  }
  parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}
