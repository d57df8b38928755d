// Checkpoint files on disk (Node): written atomically — a temporary file in the same folder,
// flushed, then renamed over the target — so a process killed mid-save leaves the previous
// checkpoint intact; the temp file such a process leaves is removed by the next save. Node's
// modules come from nodeBuiltin (not imported), so the browser bundle, which shares this
// module, never references them.
import { nodeBuiltin } from '../backend/node_builtin.js';
import { checkpointToBytes, loadCheckpointBytes, type CheckpointContents } from './checkpoint.js';
import type { Module } from '../nn/module.js';
import type { Adam } from '../optim/adam.js';

/** Writes bytes to `path` atomically (temp file + fsync + rename + directory fsync). */
export async function writeFileAtomic(path: string, bytes: Uint8Array): Promise<void> {
  const fs = nodeBuiltin('fs/promises', 'writeFileAtomic');
  const { dirname, basename, join } = nodeBuiltin('path', 'writeFileAtomic');
  const dir = dirname(path);
  const prefix = `.${basename(path)}.`;
  await removeStaleTemps(dir, prefix);
  const temp = join(dir, `${prefix}${process.pid}.${Date.now()}.${Math.random().toString(36).slice(2)}.tmp`);
  const handle = await fs.open(temp, 'w');
  try {
    await handle.writeFile(bytes);
    await handle.sync();
  } catch (e) {
    await handle.close();
    await fs.rm(temp, { force: true });
    throw e;
  }
  await handle.close();
  try {
    await fs.rename(temp, path);
  } catch (e) {
    await fs.rm(temp, { force: true });
    throw e;
  }
  // The rename itself must reach the disk for the new file to survive a power cut.
  const dirHandle = await fs.open(dir, 'r').catch(() => null);
  if (dirHandle) {
    await dirHandle.sync().catch(() => undefined);
    await dirHandle.close();
  }
}

/** Temp files of `path` left by processes that died mid-write (killed, power cut): removed
 * before each write, so they never accumulate. Files of live processes are left alone. */
async function removeStaleTemps(dir: string, prefix: string): Promise<void> {
  const fs = nodeBuiltin('fs/promises', 'writeFileAtomic');
  const { join } = nodeBuiltin('path', 'writeFileAtomic');
  let names: string[];
  try {
    names = await fs.readdir(dir);
  } catch {
    return;
  }
  for (const name of names) {
    if (!name.startsWith(prefix) || !name.endsWith('.tmp')) continue;
    const pid = Number(name.slice(prefix.length).split('.')[0]);
    if (!Number.isSafeInteger(pid) || pid <= 0 || pid === process.pid || processAlive(pid)) continue;
    await fs.rm(join(dir, name), { force: true }).catch(() => undefined);
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as { code?: string }).code === 'EPERM'; // exists, owned by someone else
  }
}

export async function saveCheckpoint(path: string, contents: CheckpointContents): Promise<void> {
  await writeFileAtomic(path, checkpointToBytes(contents));
}

export async function loadCheckpoint(path: string, target: { model: Module; optimizer?: Adam }): Promise<{ step: number; extra: Record<string, unknown> }> {
  const fs = nodeBuiltin('fs/promises', 'loadCheckpoint');
  return loadCheckpointBytes(new Uint8Array(await fs.readFile(path)), target);
}
