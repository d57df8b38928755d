//! The threaded build's [`Parallel`]: Web Workers that share this module's memory, each
//! parked in [`worker_run`] until the calling thread hands out a job.
//!
//! One job at a time: the caller of [`Pool::for_each`] publishes the task closure, then takes
//! indices itself alongside the workers, and returns once every index has finished. All
//! state sits behind one mutex.
//!
//! Hand-off costs decide whether two threads beat one, so both sides spin a little before
//! they sleep:
//! - A worker that runs out of tasks watches [`SIGNAL`] (bumped with every job) for about
//!   [`WORKER_SPIN`] rounds before it sleeps on a condvar. A training step calls kernels back
//!   to back, separated by microseconds of JavaScript; a futex wake-up costs tens of
//!   microseconds, more where the idle core has to be woken first.
//! - The caller, once every index is taken, waits for the workers' last ones. The main thread
//!   of a browser must never block (`Atomics.wait` throws there), so by default it spins. Where
//!   JS says blocking is allowed ([`set_caller_may_block`]: Node, a Web Worker) it spins only
//!   [`CALLER_SPIN`] rounds, then sleeps on a second condvar until the last task reports: on
//!   a machine whose cores are busy with other processes, a spinning caller would take the
//!   core the straggling worker needs.

use std::hint::spin_loop;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError, TryLockError};

use ferroformer_kernels::Parallel;

type Task<'a> = &'a (dyn Fn(usize) + Sync);

struct State {
    /// Address of the caller's `Task` (a fat reference on its stack), 0 when idle. Valid
    /// while `unfinished > 0`: the caller does not return before that.
    job: usize,
    tasks: usize,
    next: usize,
    unfinished: usize,
    /// Workers wanted; each one with an `id` below this takes part.
    workers: usize,
    /// Tasks run by workers so far (not by the caller): shows that they take part.
    worker_tasks: usize,
    /// Bumped by every [`set_workers`], so that the workers of an earlier setting retire
    /// (JS starts fresh ones) rather than two workers ever sharing an id.
    epoch: u32,
    /// The caller sleeps on [`DONE`]: the worker that finishes the last task must wake it.
    caller_sleeping: bool,
}

static STATE: Mutex<State> = Mutex::new(State {
    job: 0, tasks: 0, next: 0, unfinished: 0, workers: 0, worker_tasks: 0, epoch: 0, caller_sleeping: false,
});
/// Idle workers sleep here.
static WORK: Condvar = Condvar::new();
/// A caller that may block sleeps here for the workers' last tasks.
static DONE: Condvar = Condvar::new();
/// Changes (under the lock) with every published job and every [`set_workers`]; spinning
/// workers read it without taking the lock.
static SIGNAL: AtomicU32 = AtomicU32::new(0);
static CALLER_MAY_BLOCK: AtomicBool = AtomicBool::new(false);

/// Rounds a worker watches for the next job before it sleeps. One round is an atomic load
/// and a branch, a nanosecond or two in V8, so this is some 50-100 µs: longer than the
/// JavaScript between two kernel calls of a training step, short enough that an idle model
/// does not keep a core busy.
const WORKER_SPIN: u32 = 1 << 16;

/// Rounds a caller that may block spins on the workers' last tasks before it sleeps (each
/// round takes the lock once, so a few times slower than a worker's).
const CALLER_SPIN: u32 = 1 << 12;

/// For a caller that must never block (a browser's main thread).
fn lock_spinning() -> MutexGuard<'static, State> {
    loop {
        match STATE.try_lock() {
            Ok(guard) => return guard,
            Err(TryLockError::WouldBlock) => spin_loop(),
            // Built with panic = "abort": nothing can poison the lock.
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

/// # Safety
/// `job` must come from [`claim`] and its index not have been reported finished yet.
unsafe fn run_task(job: usize, index: usize) {
    let task = *(job as *const Task);
    task(index);
}

pub struct Pool;

impl Parallel for Pool {
    fn threads(&self) -> usize {
        lock_spinning().workers + 1
    }

    fn for_each(&self, tasks: usize, f: &(dyn Fn(usize) + Sync)) {
        if tasks <= 1 || lock_spinning().workers == 0 {
            (0..tasks).for_each(f);
            return;
        }
        let task: Task = f;
        let mut claimed = {
            let mut state = lock_spinning();
            state.job = &task as *const Task as usize;
            state.tasks = tasks;
            state.next = 0;
            state.unfinished = tasks;
            SIGNAL.fetch_add(1, Ordering::Release);
            claim(&mut state)
        };
        WORK.notify_all();
        // Work alongside the workers (and alone, if none has started yet); reporting one
        // index and claiming the next take the lock once.
        while let Some((job, index)) = claimed {
            // SAFETY: claimed just now, from the job published above.
            unsafe { run_task(job, index) };
            let mut state = lock_spinning();
            state.unfinished -= 1;
            claimed = claim(&mut state);
        }
        wait_for_workers();
    }
}

/// Every index is taken: waits for the workers' last ones, then retracts the job.
fn wait_for_workers() {
    let may_block = CALLER_MAY_BLOCK.load(Ordering::Relaxed);
    let mut spins = 0u32;
    loop {
        let mut state = lock_spinning();
        if state.unfinished == 0 {
            state.job = 0;
            return;
        }
        if may_block && spins >= CALLER_SPIN {
            state.caller_sleeping = true;
            while state.unfinished > 0 {
                state = DONE.wait(state).unwrap_or_else(PoisonError::into_inner);
            }
            state.caller_sleeping = false;
            state.job = 0;
            return;
        }
        drop(state);
        spins += 1;
        spin_loop();
    }
}

/// Sets how many workers take part and returns the new epoch, which JS passes to the
/// workers it starts for this setting; workers of earlier epochs retire.
pub fn set_workers(workers: usize) -> u32 {
    let epoch = {
        let mut state = lock_spinning();
        state.workers = workers;
        state.epoch = state.epoch.wrapping_add(1);
        SIGNAL.fetch_add(1, Ordering::Release);
        state.epoch
    };
    WORK.notify_all();
    epoch
}

/// Whether the thread that calls kernels may block (JS knows: not a browser's main thread).
pub fn set_caller_may_block(may_block: bool) {
    CALLER_MAY_BLOCK.store(may_block, Ordering::Relaxed);
}

pub fn worker_tasks() -> usize {
    lock_spinning().worker_tasks
}

/// A worker's life: runs tasks as jobs come, returns when retired.
pub fn worker_run(id: usize, epoch: u32) {
    let mut state = lock_blocking();
    // Whether this worker has already spun since it last found work (then it sleeps).
    let mut spun = false;
    while state.epoch == epoch && id < state.workers {
        if let Some((job, index)) = claim(&mut state) {
            state.worker_tasks += 1;
            drop(state);
            // SAFETY: claimed under the lock; the caller waits for our report below.
            unsafe { run_task(job, index) };
            state = lock_blocking();
            state.unfinished -= 1;
            if state.unfinished == 0 && state.caller_sleeping {
                DONE.notify_one();
            }
            spun = false;
        } else if !spun {
            let seen = SIGNAL.load(Ordering::Relaxed);
            drop(state);
            let mut spins = 0;
            while SIGNAL.load(Ordering::Acquire) == seen && spins < WORKER_SPIN {
                spins += 1;
                spin_loop();
            }
            state = lock_blocking();
            spun = true;
        } else {
            // Nothing came while spinning: sleep until the next job (or a new setting).
            state = WORK.wait(state).unwrap_or_else(PoisonError::into_inner);
            spun = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    fn run_every_index_once() {
        for tasks in [0, 1, 2, 7, 64, 1000] {
            let counts: Vec<AtomicUsize> = (0..tasks).map(|_| AtomicUsize::new(0)).collect();
            Pool.for_each(tasks, &|i| {
                counts[i].fetch_add(1, Ordering::Relaxed);
            });
            assert!(counts.iter().all(|c| c.load(Ordering::Relaxed) == 1), "tasks = {tasks}");
        }
    }

    /// Natively, std threads stand in for Web Workers: every index runs exactly once, with a
    /// spinning and with a sleeping caller, with and without workers, and retired workers
    /// return. One test, because the pool is process-wide state.
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
        set_caller_may_block(false);
        assert!(worker_tasks() > 0, "the workers never took part");
        set_workers(0);
        for worker in workers {
            worker.join().unwrap();
        }
        let ran = AtomicUsize::new(0);
        Pool.for_each(5, &|_| {
            ran.fetch_add(1, Ordering::Relaxed);
        });
        assert_eq!(ran.load(Ordering::Relaxed), 5);
    }
}
