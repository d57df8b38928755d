// Ctrl-C and SIGTERM: a training loop stops cleanly at a step boundary; anything else stops at
// once, but only after the progress bars have given the terminal back its cursor and wrapping.
import { stopAllProgress } from './progress.js';

/** SIGINT (Ctrl-C) and SIGTERM during a long command. The first signal is recorded in
 * `signal`, and a training loop stops at its next step, saves a checkpoint and says how to
 * resume. After
 * exitNow(), or at a second signal, the bars are stopped (restoring the terminal) and the
 * process exits with 128 + the signal number. */
export class Interruption {
  signal: NodeJS.Signals | null = null;
  private message: (() => string) | null = null;
  private readonly onSignal = (signal: NodeJS.Signals): void => {
    const first = this.signal === null;
    this.signal ??= signal;
    if (first && this.message === null) return;
    stopAllProgress();
    if (this.message !== null) console.error(this.message());
    process.exit(this.exitCode());
  };

  constructor() {
    process.on('SIGINT', this.onSignal);
    process.on('SIGTERM', this.onSignal);
  }

  exitCode(): number {
    return this.signal === 'SIGTERM' ? 143 : 130;
  }

  /** From now on a signal exits at once after printing `message()`, also for one that came
   * already. */
  exitNow(message: () => string): void {
    this.message = message;
    if (this.signal !== null) this.onSignal(this.signal);
  }

  dispose(): void {
    process.off('SIGINT', this.onSignal);
    process.off('SIGTERM', this.onSignal);
  }
}
