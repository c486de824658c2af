//! `hooks replay` by filter: every event the worker acts on that the filter selects,
//! found through the `received` index (a `Query` per shard within the window, never a
//! scan), counted first, then replayed as one replay of each at a bounded rate.
//!
//! Idempotent by construction, no state on the operator's machine: each run has a name
//! (`--run`, by default a digest of the filter as given), stamped on each event in the
//! write that reopens it, and an event stamped with the name is not sent again. So the
//! same command run again after an interruption sends only what the first did not.

use std::time::Duration;

use serde_json::{Value, json};
use shared::adapters::dynamo::{Received, WorkState};
use shared::ports::{Claims, Reopened};
use shared::prediction::Status;
use time::OffsetDateTime;
use tokio::time::Instant;

use super::Ops;
use crate::error::Result;

/// The work states `--work` selects.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Work {
    /// Not done, and its last run failed.
    Failed,
    /// Given up on by the reconciler and sent to the dead-letter queue.
    DeadLettered,
    /// Run to completion.
    Done,
}

/// What a bulk replay selects; each part given narrows it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Filter {
    /// Received at or after (default: as far back as events are kept).
    pub since: Option<OffsetDateTime>,
    /// Received at or before (default: when the run starts).
    pub until: Option<OffsetDateTime>,
    pub status: Option<Status>,
    /// `owner/name`.
    pub model: Option<String>,
    pub work: Option<Work>,
}

/// How many matches a dry run lists.
const LISTED: usize = 20;

impl Filter {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    fn matches(&self, event: &Received) -> bool {
        let work = match self.work {
            None => true,
            Some(Work::Done) => event.work == WorkState::Done,
            Some(Work::DeadLettered) => event.work == WorkState::DeadLettered,
            Some(Work::Failed) => event.work == WorkState::Failed,
        };
        work && self.status.as_ref().is_none_or(|s| *s == event.status)
            && self.model.as_deref().is_none_or(|m| event.model.as_deref() == Some(m))
    }

    /// The run's name when `--run` is not given: the same for the same filter and steps
    /// to forget, whenever it is run, so running the command again resumes it.
    pub fn run_name(&self, forget: &[String]) -> String {
        let time =
            |t: Option<OffsetDateTime>| t.map_or_else(|| "-".to_owned(), |t| t.unix_timestamp_nanos().to_string());
        let work = self.work.map_or("-".to_owned(), |w| format!("{w:?}"));
        let status = self.status.as_ref().map_or("-", Status::as_str);
        let what = format!(
            "since={}\nuntil={}\nstatus={status}\nmodel={}\nwork={work}\nforget={}",
            time(self.since),
            time(self.until),
            self.model.as_deref().unwrap_or("-"),
            forget.join("\n"),
        );
        format!("f-{:016x}", shared::shards::fnv1a(what.as_bytes()))
    }
}

/// How a bulk replay goes: its name, its pace, and whether it only counts.
pub struct Run<'a> {
    pub name: &'a str,
    /// Events sent a second, at most.
    pub rate: u32,
    pub dry_run: bool,
    pub forget: &'a [String],
}

/// Counts what `filter` selects, then (unless a dry run) replays each match once for
/// the run, at most `run.rate` a second, telling progress on stderr.
pub async fn replay(ops: &Ops, filter: &Filter, run: &Run<'_>) -> Result<Value> {
    let until = filter.until.unwrap_or_else(OffsetDateTime::now_utc);
    let since = filter.since.unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let matched: Vec<Received> =
        ops.ledger().received_between(since, until).await?.into_iter().filter(|e| filter.matches(e)).collect();
    let (done, to_send): (Vec<&Received>, Vec<&Received>) =
        matched.iter().partition(|e| e.replay_run.as_deref() == Some(run.name));
    let mut lines = vec![format!(
        "replay {}: {} matched ({}); {} already replayed by this run; {} to send",
        run.name,
        matched.len(),
        by_work(&matched),
        done.len(),
        to_send.len()
    )];
    if run.dry_run {
        lines.extend(
            to_send
                .iter()
                .take(LISTED)
                .map(|e| format!("  {} {} received {} work {}", e.id, e.status, e.received_at, work_name(e.work))),
        );
        if to_send.len() > LISTED {
            lines.push(format!("  ... and {} more", to_send.len() - LISTED));
        }
        lines.push("dry run: nothing sent".to_owned());
        return Ok(json!(lines.join("\n")));
    }
    eprintln!("{}", lines[0]);
    let tally = send(ops, &to_send, run).await?;
    lines.push(format!(
        "replay {}: sent {} of {}; {} held by a run now, {} no longer in the table",
        run.name,
        tally.sent,
        to_send.len(),
        tally.busy,
        tally.gone
    ));
    if tally.busy > 0 {
        lines.push("run the same command again once they end: it sends only what this run did not".to_owned());
    }
    Ok(json!(lines.join("\n")))
}

#[derive(Default)]
struct Tally {
    sent: usize,
    busy: usize,
    gone: usize,
}

async fn send(ops: &Ops, events: &[&Received], run: &Run<'_>) -> Result<Tally> {
    let start = Instant::now();
    let gap = Duration::from_secs(1) / run.rate.max(1);
    let mut told = start;
    let mut tally = Tally::default();
    for (n, event) in events.iter().enumerate() {
        tokio::time::sleep_until(start + gap * u32::try_from(n).unwrap_or(u32::MAX)).await;
        match ops.ledger().reopen(event.id, &event.status, run.forget, Some(run.name)).await? {
            Reopened::Reopened { payload, .. } => {
                ops.ingest.resend(event.id, &event.status, payload.as_deref()).await?;
                tally.sent += 1;
            }
            // Reopened by this run meanwhile (another copy of the command): not twice.
            Reopened::AlreadyReplayed => {}
            Reopened::Running => tally.busy += 1,
            Reopened::NoWork | Reopened::Missing => tally.gone += 1,
        }
        if told.elapsed() >= Duration::from_secs(1) || n + 1 == events.len() {
            told = Instant::now();
            eprintln!("replay {}: {} of {} sent", run.name, tally.sent, events.len());
        }
    }
    Ok(tally)
}

fn by_work(events: &[Received]) -> String {
    let count = |state| events.iter().filter(|e| e.work == state).count();
    let states = [WorkState::Failed, WorkState::DeadLettered, WorkState::Done, WorkState::Waiting];
    let parts: Vec<String> =
        states.iter().filter(|s| count(**s) > 0).map(|s| format!("{} {}", count(*s), work_name(*s))).collect();
    if parts.is_empty() { "none".to_owned() } else { parts.join(", ") }
}

fn work_name(state: WorkState) -> &'static str {
    match state {
        WorkState::Failed => "failed",
        WorkState::DeadLettered => "dead-lettered",
        WorkState::Done => "done",
        WorkState::Waiting => "waiting",
    }
}

#[cfg(test)]
mod tests {
    use shared::prediction::PredictionId;

    use super::*;

    fn event(status: Status, model: Option<&str>, work: WorkState) -> Received {
        Received {
            id: PredictionId::random(),
            status,
            received_at: "2026-12-04T00:00:00.000000000Z".to_owned(),
            model: model.map(str::to_owned),
            work,
            replay_run: None,
        }
    }

    #[test]
    fn each_part_of_a_filter_narrows_what_it_selects() {
        let failed_echo = event(Status::Failed, Some("acme/echo"), WorkState::Failed);
        let done_echo = event(Status::Succeeded, Some("acme/echo"), WorkState::Done);
        let lettered = event(Status::Succeeded, None, WorkState::DeadLettered);
        let all = [&failed_echo, &done_echo, &lettered];
        let selected = |filter: Filter| all.iter().filter(|e| filter.matches(e)).count();
        assert_eq!(selected(Filter::default()), 3);
        assert_eq!(selected(Filter { work: Some(Work::Failed), ..Filter::default() }), 1);
        assert_eq!(selected(Filter { work: Some(Work::DeadLettered), ..Filter::default() }), 1);
        assert_eq!(selected(Filter { work: Some(Work::Done), ..Filter::default() }), 1);
        assert_eq!(selected(Filter { model: Some("acme/echo".into()), ..Filter::default() }), 2);
        assert_eq!(selected(Filter { status: Some(Status::Succeeded), ..Filter::default() }), 2);
        let narrow = Filter { status: Some(Status::Succeeded), model: Some("acme/echo".into()), ..Filter::default() };
        assert_eq!(selected(narrow), 1);
        assert_eq!(selected(Filter { model: Some("acme/other".into()), ..Filter::default() }), 0);
    }

    #[test]
    fn a_run_is_named_by_its_filter_and_steps_whenever_it_runs() {
        let filter = Filter { work: Some(Work::Failed), model: Some("acme/echo".into()), ..Filter::default() };
        let name = filter.run_name(&[]);
        assert_eq!(name, filter.clone().run_name(&[]), "the same command resumes the same run");
        assert!(name.starts_with("f-") && name.len() == 18, "{name}");
        assert_ne!(name, filter.run_name(&["notify".to_owned()]));
        assert_ne!(name, Filter { work: Some(Work::Done), ..filter.clone() }.run_name(&[]));
        let since = Filter { since: Some(OffsetDateTime::UNIX_EPOCH), ..filter.clone() };
        assert_ne!(name, since.run_name(&[]), "a window given is part of the name");
    }

    #[test]
    fn the_count_names_each_work_state_it_found() {
        let events = [
            event(Status::Failed, None, WorkState::Failed),
            event(Status::Failed, None, WorkState::Failed),
            event(Status::Succeeded, None, WorkState::Done),
        ];
        assert_eq!(by_work(&events), "2 failed, 1 done");
        assert_eq!(by_work(&[]), "none");
    }
}
