//! The threaded build's [`Parallel`]: Web Workers that share this module's memory, each
//! parked in [`worker_run`] until the JS main thread hands out a job.
//!
//! One job at a time: the caller of [`Pool::for_each`] publishes the task closure, then takes
//! indices itself alongside the workers, and returns once every index has finished. All
//! state sits behind one mutex. The caller is the JS main thread, where browsers forbid
//! blocking (`Atomics.wait` throws), so it only ever takes the lock by spinning on
//! `try_lock`; workers block normally (futex wait), and sleep on a condvar between jobs.

use std::hint::spin_loop;
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
}

static STATE: Mutex<State> =
    Mutex::new(State { job: 0, tasks: 0, next: 0, unfinished: 0, workers: 0, worker_tasks: 0, epoch: 0 });
static WORK: Condvar = Condvar::new();

/// For the main thread, which must never block.
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
        {
            let mut state = lock_spinning();
            state.job = &task as *const Task as usize;
            state.tasks = tasks;
            state.next = 0;
            state.unfinished = tasks;
        }
        WORK.notify_all();
        // Work alongside the workers (and alone, if none has started yet).
        loop {
            let claimed = claim(&mut lock_spinning());
            let Some((job, index)) = claimed else { break };
            // SAFETY: claimed just now, from the job published above.
            unsafe { run_task(job, index) };
            lock_spinning().unfinished -= 1;
        }
        // Every index is taken; wait for the workers' last ones, then retract the job.
        loop {
            let mut state = lock_spinning();
            if state.unfinished == 0 {
                state.job = 0;
                return;
            }
            drop(state);
            spin_loop();
        }
    }
}

/// Sets how many workers take part and returns the new epoch, which JS passes to the
/// workers it starts for this setting; workers of earlier epochs retire.
pub fn set_workers(workers: usize) -> u32 {
    let epoch = {
        let mut state = lock_spinning();
        state.workers = workers;
        state.epoch = state.epoch.wrapping_add(1);
        state.epoch
    };
    WORK.notify_all();
    epoch
}

pub fn worker_tasks() -> usize {
    lock_spinning().worker_tasks
}

/// A worker's life: runs tasks as jobs come, returns when retired.
pub fn worker_run(id: usize, epoch: u32) {
    let mut state = lock_blocking();
    while state.epoch == epoch && id < state.workers {
        match claim(&mut state) {
            Some((job, index)) => {
                state.worker_tasks += 1;
                drop(state);
                // SAFETY: claimed under the lock; the caller waits for our report below.
                unsafe { run_task(job, index) };
                state = lock_blocking();
                state.unfinished -= 1;
            }
            None => state = WORK.wait(state).unwrap_or_else(PoisonError::into_inner),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Natively, std threads stand in for Web Workers: every index runs exactly once, with
    /// and without workers, and retired workers return.
    #[test]
    fn every_index_runs_once_and_workers_retire() {
        let epoch = set_workers(3);
        let workers: Vec<_> = (0..3).map(|id| std::thread::spawn(move || worker_run(id, epoch))).collect();
        assert_eq!(Pool.threads(), 4);
        for tasks in [0, 1, 2, 7, 64, 1000] {
            let counts: Vec<AtomicUsize> = (0..tasks).map(|_| AtomicUsize::new(0)).collect();
            Pool.for_each(tasks, &|i| {
                counts[i].fetch_add(1, Ordering::Relaxed);
            });
            assert!(counts.iter().all(|c| c.load(Ordering::Relaxed) == 1), "tasks = {tasks}");
        }
        assert!(worker_tasks() <= 1 + 2 + 7 + 64 + 1000);
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
