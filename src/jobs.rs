//! Scheduled jobs: a small registry of (name, cron schedule, function), a pure "is it due?"
//! check, and a [`Scheduler`] the daemon ticks with the time it reads from the clock (tests
//! tick it with times they choose).
//!
//! Invariants: every job runs once at start-up and then whenever its schedule fires; a job
//! that fails is logged and runs again at its next firing, it never stops the loop; names are
//! unique (a test checks), so logs and reports can name a job.

pub mod auto_close;

use chrono::{DateTime, Utc};
use tracing::{error, warn};

use crate::config::Config;
use crate::store::Store;
use auto_close::AutoCloseSettings;

/// What the jobs share: their own database connection and their settings.
pub struct JobContext {
    /// The store (a connection of its own, apart from intake's and the outbox worker's).
    pub store: Store,
    /// Settings of the auto-close job.
    pub auto_close: AutoCloseSettings,
}

impl JobContext {
    /// Copies the write-ahead log into the database file (see [`Store::checkpoint`]).
    pub fn checkpoint(&self) -> anyhow::Result<i64> {
        Ok(self.store.checkpoint()?)
    }
}

/// What one run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JobReport {
    /// Tickets changed.
    pub changed: usize,
    /// Mails queued (the caller wakes the outbox worker when this is not zero).
    pub queued: usize,
}

/// A job's body: runs once as of `now_ms`.
pub type JobFn = fn(&mut JobContext, i64) -> anyhow::Result<JobReport>;

/// One scheduled job.
#[derive(Clone)]
pub struct Job {
    /// A unique name, for logs.
    pub name: &'static str,
    /// When it runs (cron, seconds first).
    pub schedule: cron::Schedule,
    /// What it does.
    pub run: JobFn,
}

/// Every job of the daemon, with the schedules the config sets. The outbox worker is not
/// here: it runs continuously and is woken when mail is queued.
pub fn registry(config: &Config) -> Vec<Job> {
    vec![Job {
        name: "auto_close",
        schedule: config.tickets.close_schedule.schedule().clone(),
        run: auto_close::run,
    }]
}

/// True when `schedule` fires after `last_run` and at or before `now`.
pub fn is_due(schedule: &cron::Schedule, last_run: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    schedule
        .after(&last_run)
        .next()
        .is_some_and(|next| next <= now)
}

/// Runs the registry's jobs on their schedules.
pub struct Scheduler {
    jobs: Vec<(Job, Option<DateTime<Utc>>)>,
    context: JobContext,
}

/// What one pass of the scheduler did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pass {
    /// The jobs that ran (successfully or not), in registry order.
    pub ran: Vec<&'static str>,
    /// Their reports added up.
    pub total: JobReport,
}

impl Scheduler {
    /// A scheduler over `jobs`; no job has run yet, so the first [`Scheduler::tick`] runs
    /// them all (the start-up run).
    pub fn new(jobs: Vec<Job>, context: JobContext) -> Scheduler {
        Scheduler {
            jobs: jobs.into_iter().map(|job| (job, None)).collect(),
            context,
        }
    }

    /// Runs every job that has never run or whose schedule fired since its last run, as of
    /// `now`. A failing job is logged and tried again at its next firing.
    pub fn tick(&mut self, now: DateTime<Utc>) -> Pass {
        let mut pass = Pass::default();
        for (job, last_run) in &mut self.jobs {
            let due = last_run.is_none_or(|last| is_due(&job.schedule, last, now));
            if !due {
                continue;
            }
            *last_run = Some(now);
            pass.ran.push(job.name);
            match (job.run)(&mut self.context, now.timestamp_millis()) {
                Ok(report) => {
                    pass.total.changed += report.changed;
                    pass.total.queued += report.queued;
                }
                Err(e) => {
                    error!(job = job.name, error = %format!("{e:#}"), "Job failed; it runs again on its schedule")
                }
            }
        }
        // A sweep's commit leaves its pages in the WAL (the jobs' connection does not
        // checkpoint on commit); copy them into the database file now, without blocking
        // readers or writers. What a reader still needs is copied by a later checkpoint.
        if pass.total.changed > 0 {
            if let Err(e) = self.context.checkpoint() {
                warn!(error = %format!("{e:#}"), "Checkpoint after the jobs failed; a later one catches up");
            }
            // The pages of a big sweep are not needed until the next one.
            if let Err(e) = self.context.store.release_memory() {
                warn!(error = %e, "Could not release the jobs' page cache");
            }
        }
        pass
    }

    /// The store the jobs use (for reads in tests).
    pub fn store(&self) -> &Store {
        &self.context.store
    }
}

#[cfg(test)]
mod tests;
