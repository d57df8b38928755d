//! The threads behind [`Parallel`] for both builds: the napi addon's OS threads and the
//! threaded wasm build's Web Workers (which share this module's memory). Each worker is
//! parked in [`worker_run`] until the calling thread hands out a job.
//!
//! One job at a time: the caller of [`Pool::for_each`] publishes the task closure, then takes
//! indices itself alongside the workers, and returns once every index has finished. So a
//! worker that is slow to wake never makes a call slower than the caller alone: the caller
//! claims the indices nobody has taken. A caller that finds a job already running (a second
//! JS thread on the addon, or a task that itself calls a kernel) runs its tasks alone.
//!
//! Hand-off costs decide whether two threads beat one, so both sides spin before they sleep
//! (as OpenMP's runtimes do, which PyTorch uses):
//! - A worker that runs out of tasks watches [`SIGNAL`] (bumped with every job) and sleeps on
//!   a condvar only once [`WORKER_SPIN`] has passed without a job it may take part in (a
//!   small call may leave workers out: [`crate::parallel::for_work`]). A training step calls
//!   kernels back to back, separated by JavaScript and by kernels too small to split; a futex
//!   wake-up costs tens of microseconds, and several hundred on a virtual machine whose idle
//!   core must first be woken (measured at W4's sizes: bench/notes.md).
//! - The caller, once every index is taken, waits for the workers' last ones. The main thread
//!   of a browser must never block (`Atomics.wait` throws there), so by default it spins. Where
//!   the caller may block ([`set_caller_may_block`]: Node's threads, a Web Worker) it spins
//!   [`CALLER_SPIN`], then sleeps on a second condvar until the last task reports: on a
//!   machine whose cores are busy with other processes, a spinning caller would take the core
//!   the straggling worker needs.
//!
//! A panic in a task (natively; wasm aborts) is caught where it happens and resumed on the
//! caller once every index has finished, so the addon's `catch_unwind` turns it into a JS
//! error and the pool stays usable.

use std::any::Any;
use std::cell::Cell;
use std::hint::spin_loop;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError, TryLockError};

use crate::Parallel;

type Task<'a> = &'a (dyn Fn(usize) + Sync);

struct State {
    /// Address of the caller's `Task` (a fat reference on its stack), 0 when idle. Valid
    /// while [`UNFINISHED`] > 0: the caller does not return before that.
    job: usize,
    tasks: usize,
    next: usize,
    /// Workers wanted; each one with an `id` below this takes part.
    workers: usize,
    /// Workers that may take indices of the current job: those with an `id` below this.
    helpers: usize,
    /// Workers asleep on [`WORK`] (the caller wakes them only if there are any).
    sleeping: usize,
    /// Tasks run by workers so far (not by the caller): shows that they take part.
    worker_tasks: usize,
    /// Bumped by every [`set_workers`], so that the workers of an earlier setting retire
    /// (their owner starts fresh ones) rather than two workers ever sharing an id.
    epoch: u32,
    /// The caller sleeps on [`DONE`]: the worker that finishes the last task must wake it.
    caller_sleeping: bool,
    /// The first panic of the current job's tasks, resumed on the caller.
    panic: Option<Box<dyn Any + Send>>,
}

static STATE: Mutex<State> = Mutex::new(State {
    job: 0, tasks: 0, next: 0, workers: 0, helpers: 0, sleeping: 0, worker_tasks: 0, epoch: 0,
    caller_sleeping: false, panic: None,
});
/// Tasks of the current job not yet finished; read while spinning, without the lock.
static UNFINISHED: AtomicUsize = AtomicUsize::new(0);
/// `State::workers`, readable without the lock (kernels ask for it on every call).
static WORKERS: AtomicUsize = AtomicUsize::new(0);
/// `State::helpers` of the last published job (everyone after a new setting), read by spinning
/// workers so that those left out of a job keep spinning instead of queueing for the lock.
static HELPERS: AtomicUsize = AtomicUsize::new(usize::MAX);
/// Idle workers sleep here.
static WORK: Condvar = Condvar::new();
/// A caller that may block sleeps here for the workers' last tasks.
static DONE: Condvar = Condvar::new();
/// Changes (under the lock) with every published job and every [`set_workers`]; spinning
/// workers read it without taking the lock.
static SIGNAL: AtomicU32 = AtomicU32::new(0);
static CALLER_MAY_BLOCK: AtomicBool = AtomicBool::new(false);

/// How long a worker watches for the next job before it sleeps. Natively a time: longer than
/// the gaps between the split kernels of a training step (W4: up to a few hundred µs of
/// JavaScript and small kernels), short enough that an idle model gives its cores back at
/// once. In wasm, where there is no clock, a number of rounds of an atomic load and a branch
/// (a nanosecond or two in V8, so some 50-100 µs).
#[cfg(not(target_arch = "wasm32"))]
const WORKER_SPIN: Spin = Spin::Micros(2_000);
#[cfg(target_arch = "wasm32")]
const WORKER_SPIN: Spin = Spin::Rounds(1 << 16);

/// How long a caller that may block spins on the workers' last tasks before it sleeps.
#[cfg(not(target_arch = "wasm32"))]
const CALLER_SPIN: Spin = Spin::Micros(500);
#[cfg(target_arch = "wasm32")]
const CALLER_SPIN: Spin = Spin::Rounds(1 << 14);

#[derive(Clone, Copy)]
enum Spin {
    #[allow(dead_code)]
    Micros(u64),
    #[allow(dead_code)]
    Rounds(u32),
}

impl Spin {
    /// Spins until `done()` holds or the budget is spent; returns whether `done()` held.
    fn until(self, done: impl Fn() -> bool) -> bool {
        match self {
            Spin::Rounds(rounds) => {
                for _ in 0..rounds {
                    if done() {
                        return true;
                    }
                    spin_loop();
                }
            }
            Spin::Micros(micros) => {
                #[cfg(not(target_arch = "wasm32"))]
                {
                    let start = std::time::Instant::now();
                    let budget = std::time::Duration::from_micros(micros);
                    loop {
                        // The clock is read once per 64 rounds (a PAUSE is ~10-140 cycles).
                        for _ in 0..64 {
                            if done() {
                                return true;
                            }
                            spin_loop();
                        }
                        if start.elapsed() >= budget {
                            break;
                        }
                    }
                }
                #[cfg(target_arch = "wasm32")]
                let _ = micros;
            }
        }
        done()
    }
}

/// For a caller, which may be a browser's main thread and must then never block.
fn lock_spinning() -> MutexGuard<'static, State> {
    loop {
        match STATE.try_lock() {
            Ok(guard) => return guard,
            Err(TryLockError::WouldBlock) => spin_loop(),
            // A panic never unwinds while the lock is held (tasks run outside it).
            Err(TryLockError::Poisoned(poisoned)) => return poisoned.into_inner(),
        }
    }
}

/// For workers, which may block.
fn lock_blocking() -> MutexGuard<'static, State> {
    STATE.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Takes the next index of the current job: (job address, index).
fn claim(state: &mut State) -> Option<(usize, usize)> {
    if state.job == 0 || state.next >= state.tasks {
        return None;
    }
    state.next += 1;
    Some((state.job, state.next - 1))
}

/// Runs one task, keeping a panic for the caller instead of unwinding through the pool.
///
/// # Safety
/// `job` must come from [`claim`] and its index not have been reported finished yet.
unsafe fn run_task(job: usize, index: usize) {
    // SAFETY: per the contract, the caller's `Task` is alive until this index is reported.
    let task = unsafe { *(job as *const Task) };
    if let Err(payload) = catch_unwind(AssertUnwindSafe(|| task(index))) {
        lock_spinning().panic.get_or_insert(payload);
    }
}

/// Reports one finished task; the last one wakes a sleeping caller.
fn finish_task() {
    if UNFINISHED.fetch_sub(1, Ordering::AcqRel) == 1 {
        // Under the lock, so that a caller between its check and its sleep cannot miss it.
        if lock_spinning().caller_sleeping {
            DONE.notify_one();
        }
    }
}

/// The process-wide pool: `threads()` is the workers plus the calling thread.
pub struct Pool;

impl Parallel for Pool {
    fn threads(&self) -> usize {
        WORKERS.load(Ordering::Relaxed) + 1
    }

    fn for_each(&self, tasks: usize, f: &(dyn Fn(usize) + Sync)) {
        self.for_each_on(usize::MAX, tasks, f)
    }

    /// The job goes to the workers with an `id` below `threads - 1` only.
    fn for_each_on(&self, threads: usize, tasks: usize, f: &(dyn Fn(usize) + Sync)) {
        if tasks <= 1 || threads <= 1 || WORKERS.load(Ordering::Relaxed) == 0 {
            (0..tasks).for_each(f);
            return;
        }
        let task: Task = f;
        let (mut claimed, wake) = {
            let mut state = lock_spinning();
            if state.job != 0 || state.workers == 0 {
                // Busy (another thread's call, or a kernel inside a task): run alone.
                drop(state);
                (0..tasks).for_each(f);
                return;
            }
            state.job = &task as *const Task as usize;
            state.helpers = (threads - 1).min(state.workers);
            HELPERS.store(state.helpers, Ordering::Relaxed);
            state.tasks = tasks;
            state.next = 0;
            state.panic = None;
            UNFINISHED.store(tasks, Ordering::Release);
            SIGNAL.fetch_add(1, Ordering::Release);
            (claim(&mut state), state.sleeping > 0)
        };
        if wake {
            WORK.notify_all();
        }
        // Work alongside the workers (and alone, if none has started yet).
        while let Some((job, index)) = claimed {
            // SAFETY: claimed just now, from the job published above.
            unsafe { run_task(job, index) };
            finish_task();
            claimed = claim(&mut lock_spinning());
        }
        if let Some(payload) = wait_for_workers() {
            resume_unwind(payload);
        }
    }
}

/// Every index is taken: waits for the workers' last ones, retracts the job and returns the
/// first panic of its tasks.
fn wait_for_workers() -> Option<Box<dyn Any + Send>> {
    let finished = || UNFINISHED.load(Ordering::Acquire) == 0;
    let may_block = CALLER_MAY_BLOCK.load(Ordering::Relaxed);
    if !may_block {
        while !finished() {
            spin_loop();
        }
    } else if !CALLER_SPIN.until(finished) {
        let mut state = lock_spinning();
        state.caller_sleeping = true;
        while !finished() {
            state = DONE.wait(state).unwrap_or_else(PoisonError::into_inner);
        }
        state.caller_sleeping = false;
    }
    let mut state = lock_spinning();
    state.job = 0;
    state.panic.take()
}

/// Sets how many workers take part and returns the new epoch, which the owner passes to the
/// workers it starts for this setting; workers of earlier epochs retire.
pub fn set_workers(workers: usize) -> u32 {
    let epoch = {
        let mut state = lock_spinning();
        state.workers = workers;
        WORKERS.store(workers, Ordering::Relaxed);
        HELPERS.store(usize::MAX, Ordering::Relaxed);
        state.epoch = state.epoch.wrapping_add(1);
        SIGNAL.fetch_add(1, Ordering::Release);
        state.epoch
    };
    WORK.notify_all();
    epoch
}

/// Whether the thread that calls kernels may block (natively yes; in wasm JS knows: not a
/// browser's main thread).
pub fn set_caller_may_block(may_block: bool) {
    CALLER_MAY_BLOCK.store(may_block, Ordering::Relaxed);
}

/// Tasks run by workers (not the calling thread) so far.
pub fn worker_tasks() -> usize {
    lock_spinning().worker_tasks
}

/// Stack of each OS worker thread: the sgemm's pack buffers (576 KiB) and the attention tiles
/// live on the stack (kernels never allocate).
#[cfg(not(target_arch = "wasm32"))]
const OS_WORKER_STACK: usize = 4 << 20;

/// Starts `threads - 1` OS threads as the workers of a new setting (those of the previous one
/// retire), for a native caller that may block: the addon's `setThreads`, the examples.
/// If one cannot be started, the ones started retire and kernels run on the calling thread.
#[cfg(not(target_arch = "wasm32"))]
pub fn start_os_threads(threads: usize) -> Result<(), String> {
    set_caller_may_block(true);
    let epoch = set_workers(threads.saturating_sub(1));
    for id in 0..threads.saturating_sub(1) {
        let spawned = std::thread::Builder::new()
            .name(format!("ferroformer-{id}"))
            .stack_size(OS_WORKER_STACK)
            .spawn(move || worker_run(id, epoch));
        if let Err(e) = spawned {
            set_workers(0);
            return Err(format!("could not start {threads} threads: {e}"));
        }
    }
    Ok(())
}

/// A worker's life: runs tasks as jobs come, returns when retired.
pub fn worker_run(id: usize, epoch: u32) {
    let mut state = lock_blocking();
    // Whether this worker spun for a whole WORKER_SPIN without a job for it (then it sleeps).
    let mut spun = false;
    while state.epoch == epoch && id < state.workers {
        let claimed = if id < state.helpers { claim(&mut state) } else { None };
        if let Some((job, index)) = claimed {
            state.worker_tasks += 1;
            drop(state);
            // SAFETY: claimed under the lock; the caller waits for our report.
            unsafe { run_task(job, index) };
            finish_task();
            state = lock_blocking();
            spun = false;
        } else if !spun {
            let seen = Cell::new(SIGNAL.load(Ordering::Relaxed));
            drop(state);
            // A job this worker is left out of moves `seen` on without taking the lock.
            // HELPERS is stored before SIGNAL is bumped (Release), so it is at least as new as
            // the bump seen here; the lock then decides.
            let woke = WORKER_SPIN.until(|| {
                let now = SIGNAL.load(Ordering::Acquire);
                if now == seen.get() {
                    return false;
                }
                seen.set(now);
                id < HELPERS.load(Ordering::Relaxed)
            });
            state = lock_blocking();
            spun = !woke;
        } else {
            // Nothing came while spinning: sleep until the next job (or a new setting).
            state.sleeping += 1;
            state = WORK.wait(state).unwrap_or_else(PoisonError::into_inner);
            state.sleeping -= 1;
            spun = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_every_index_once() {
        for tasks in [0, 1, 2, 7, 64, 1000] {
            let counts: Vec<AtomicUsize> = (0..tasks).map(|_| AtomicUsize::new(0)).collect();
            Pool.for_each(tasks, &|i| {
                counts[i].fetch_add(1, Ordering::Relaxed);
            });
            assert!(counts.iter().all(|c| c.load(Ordering::Relaxed) == 1), "tasks = {tasks}");
        }
    }

    /// Std threads as workers: every index runs exactly once, with a spinning and with a
    /// sleeping caller, with and without workers, a job for fewer threads stays on as many,
    /// nested and concurrent calls run alone, a panic reaches the caller and leaves the pool
    /// usable, and retired workers return. One test, because the pool is process-wide state.
    #[test]
    fn every_index_runs_once_and_workers_retire() {
        let epoch = set_workers(3);
        let workers: Vec<_> = (0..3).map(|id| std::thread::spawn(move || worker_run(id, epoch))).collect();
        assert_eq!(Pool.threads(), 4);
        run_every_index_once();
        set_caller_may_block(true);
        run_every_index_once();
        // Slow tasks: the caller runs out of indices long before the workers finish theirs,
        // so it goes to sleep and the last worker must wake it.
        let ran = AtomicUsize::new(0);
        Pool.for_each(4, &|_| {
            std::thread::sleep(std::time::Duration::from_millis(20));
            ran.fetch_add(1, Ordering::Relaxed);
        });
        assert_eq!(ran.load(Ordering::Relaxed), 4);
        // A job for at most N threads runs on at most N (the caller and the first workers),
        // however long its tasks.
        for threads in [2, 3] {
            let seen = Mutex::new(Vec::new());
            Pool.for_each_on(threads, 12, &|_| {
                std::thread::sleep(std::time::Duration::from_millis(2));
                let mut seen = seen.lock().unwrap();
                let me = std::thread::current().id();
                if !seen.contains(&me) {
                    seen.push(me);
                }
            });
            let seen = seen.into_inner().unwrap();
            assert!((1..=threads).contains(&seen.len()), "{threads} threads: ran on {}", seen.len());
        }
        // A task that calls the pool again: the inner call runs on that task's thread.
        let inner = AtomicUsize::new(0);
        Pool.for_each(3, &|_| Pool.for_each(5, &|_| {
            inner.fetch_add(1, Ordering::Relaxed);
        }));
        assert_eq!(inner.load(Ordering::Relaxed), 15);
        // Two callers at once: both complete every index.
        std::thread::scope(|s| {
            for _ in 0..2 {
                s.spawn(|| (0..50).for_each(|_| run_every_index_once()));
            }
        });
        // A panicking task: the caller sees the panic after every other index ran.
        let ran = AtomicUsize::new(0);
        let caught = catch_unwind(AssertUnwindSafe(|| {
            Pool.for_each(8, &|i| {
                if i == 5 {
                    panic!("task {i} failed");
                }
                ran.fetch_add(1, Ordering::Relaxed);
            })
        }));
        let payload = caught.expect_err("the panic must reach the caller");
        assert_eq!(payload.downcast_ref::<String>().map(String::as_str), Some("task 5 failed"));
        assert_eq!(ran.load(Ordering::Relaxed), 7);
        run_every_index_once();
        set_caller_may_block(false);
        assert!(worker_tasks() > 0, "the workers never took part");
        set_workers(0);
        for worker in workers {
            worker.join().unwrap();
        }
        assert_eq!(Pool.threads(), 1);
        let ran = AtomicUsize::new(0);
        Pool.for_each(5, &|_| {
            ran.fetch_add(1, Ordering::Relaxed);
        });
        assert_eq!(ran.load(Ordering::Relaxed), 5);
    }
}
