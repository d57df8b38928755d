// Progress of a long loop: a cli-progress bar (step, loss, lr, tokens/s, ETA) on a terminal;
// plain lines every `every` steps when stdout is not a terminal (CI logs, pipes). A bar hides
// the cursor and turns line wrapping off while it runs; stopAllProgress() gives both back (an
// interrupted command calls it, and so does the process's exit).
import cliProgress from 'cli-progress';

export interface ProgressValues {
  loss?: number;
  lr?: number;
  tokensPerSecond?: number;
}

export interface Progress {
  update(value: number, values?: ProgressValues): void;
  /** Prints a line above the bar (or plainly). */
  log(line: string): void;
  stop(): void;
}

const fmt = {
  loss: (v?: number): string => (v === undefined || !Number.isFinite(v) ? '-' : v.toFixed(4)),
  lr: (v?: number): string => (v === undefined ? '-' : v.toExponential(2)),
  tps: (v?: number): string => (v === undefined ? '-' : String(Math.round(v))),
};

function duration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '-';
  const s = Math.round(seconds);
  return s >= 60 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s` : `${s}s`;
}

const runningBars = new Set<cliProgress.SingleBar>();

/** Stops every bar still running, restoring the cursor and line wrapping. */
export function stopAllProgress(): void {
  for (const bar of runningBars) bar.stop();
  runningBars.clear();
}

process.on('exit', stopAllProgress);

export function createProgress(options: { label: string; total: number; start?: number; every?: number; tty?: boolean; training?: boolean }): Progress {
  const tty = options.tty ?? Boolean(process.stdout.isTTY);
  const start = options.start ?? 0;
  const training = options.training ?? true;
  if (tty) {
    const format = training
      ? `${options.label} {bar} {value}/{total} | loss {loss} | lr {lr} | {tps} tok/s | ETA {eta_formatted}`
      : `${options.label} {bar} {value}/{total} | ETA {eta_formatted}`;
    const bar = new cliProgress.SingleBar({ format, etaBuffer: 50, hideCursor: true, clearOnComplete: false, barsize: 24 }, cliProgress.Presets.shades_classic);
    bar.start(options.total, start, { loss: '-', lr: '-', tps: '-' });
    runningBars.add(bar);
    return {
      update(value, v = {}) {
        bar.update(value, { loss: fmt.loss(v.loss), lr: fmt.lr(v.lr), tps: fmt.tps(v.tokensPerSecond) });
      },
      log(line) {
        // cli-progress redraws on the current line: clear it, print, redraw.
        process.stdout.write('\r\x1b[2K' + line + '\n');
        bar.render();
      },
      stop() {
        runningBars.delete(bar);
        bar.stop();
      },
    };
  }
  const every = options.every ?? Math.max(1, Math.ceil((options.total - start) / 20));
  const began = performance.now();
  let last = start;
  return {
    update(value, v = {}) {
      if (value !== options.total && value - last < every) return;
      last = value;
      const seconds = (performance.now() - began) / 1000;
      const eta = value > start ? (seconds / (value - start)) * (options.total - value) : NaN;
      const parts = [`${options.label} ${String(value).padStart(String(options.total).length)}/${options.total}`];
      if (training) parts.push(`loss ${fmt.loss(v.loss)}`, `lr ${fmt.lr(v.lr)}`, `${fmt.tps(v.tokensPerSecond)} tok/s`);
      parts.push(`elapsed ${duration(seconds)}`, `ETA ${duration(eta)}`);
      console.log(parts.join('  '));
    },
    log(line) {
      console.log(line);
    },
    stop() {},
  };
}

export { duration };
