// One worker of the loss landscape: loads the model and evaluation batch from the run folder
// on its own backend instance, then evaluates the loss at each grid point it was dealt,
// posting { index, loss } per point (see surfaceInWorkers in landscape.ts).
import { parentPort, workerData } from 'node:worker_threads';
import { init } from '../index.js';
import { surfaceInThread } from './landscape.js';
import { loadRun } from './run.js';

interface Data {
  runDir: string;
  backend: 'native' | 'wasm' | 'reference';
  base: Float32Array;
  d1: Float32Array;
  d2: Float32Array;
  points: [number, number][];
}

const data = workerData as Data;
await init({ backend: data.backend });
const run = loadRun(data.runDir);
surfaceInThread(run.model, run.evalBatch, data.base, data.d1, data.d2, data.points, (index, loss) => {
  parentPort!.postMessage({ index, loss });
});
run.model.dispose();
