// Checkpoint files on disk (Node): written atomically — a temporary file in the same folder,
// flushed, then renamed over the target — so a process killed mid-save leaves the previous
// checkpoint intact. `node:fs` is imported lazily so the browser bundle never needs it.
import { checkpointToBytes, loadCheckpointBytes, type CheckpointContents } from './checkpoint.js';
import type { Module } from '../nn/module.js';
import type { Adam } from '../optim/adam.js';

/** Writes bytes to `path` atomically (temp file + fsync + rename + directory fsync). */
export async function writeFileAtomic(path: string, bytes: Uint8Array): Promise<void> {
  const fs = await import('node:fs/promises');
  const { dirname, basename, join } = await import('node:path');
  const dir = dirname(path);
  const temp = join(dir, `.${basename(path)}.${process.pid}.${Date.now()}.${Math.random().toString(36).slice(2)}.tmp`);
  const handle = await fs.open(temp, 'w');
  try {
    await handle.writeFile(bytes);
    await handle.sync();
  } finally {
    await handle.close();
  }
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

export async function saveCheckpoint(path: string, contents: CheckpointContents): Promise<void> {
  await writeFileAtomic(path, checkpointToBytes(contents));
}

export async function loadCheckpoint(path: string, target: { model: Module; optimizer?: Adam }): Promise<{ step: number; extra: Record<string, unknown> }> {
  const fs = await import('node:fs/promises');
  return loadCheckpointBytes(new Uint8Array(await fs.readFile(path)), target);
}
