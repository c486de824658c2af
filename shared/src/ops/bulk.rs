//! `hooks replay` by filter: every event the worker acts on whose work ended (a run done
//! or failed, a give-up) that the filter selects, found through the `received` index (a
//! `Query` per shard within the window, never a scan), counted first, then replayed as
//! one replay of each at a bounded rate.
//!
//! Idempotent by construction, no state on the operator's machine: each run has a name
//! (`--run`, by default a digest of the flags as typed, `--since 24h` as those letters),
//! added to the event's `replay_runs` in the write that reopens it, and an event that
//! holds the name is not reopened again. So the same command run again after an
//! interruption sends what the first did not, and sends again (without reopening) what
//! it reopened whose replayed run has not completed since: a send that failed, a run that
//! failed again after a second fix. What it replayed to completion it never sends again. The same write checks that the event's work is
//! still in the state `--work` selected: work that succeeded meanwhile is left done.

use std::time::Duration;

use crate::adapters::dynamo::Received;
use crate::ports::{Claims, ReconcileStore, Reopened, Rerun, WorkState};
use crate::prediction::Status;
use serde_json::{Value, json};
use time::OffsetDateTime;
use tokio::time::Instant;

use super::Ops;
use super::error::Result;

/// The work states `--work` selects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Work {
    /// Not done, and its last run failed.
    Failed,
    /// Given up on by the reconciler and sent to the dead-letter queue.
    DeadLettered,
    /// Run to completion.
    Done,
}

impl Work {
    pub(crate) fn state(self) -> WorkState {
        match self {
            Self::Failed => WorkState::Failed,
            Self::DeadLettered => WorkState::DeadLettered,
            Self::Done => WorkState::Done,
        }
    }
}

/// A time as typed (`--since 24h`), and what it meant when the command started.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct When {
    /// As typed: what names the run.
    pub typed: String,
    /// What it meant.
    pub at: OffsetDateTime,
}

/// What a bulk replay selects; each part given narrows it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Filter {
    /// Received at or after (default: as far back as events are kept).
    pub since: Option<When>,
    /// Received at or before (default: when the run starts).
    pub until: Option<When>,
    /// Of this status only.
    pub status: Option<Status>,
    /// Of this model only: `owner/name`.
    pub model: Option<String>,
    /// Whose work is in this state only.
    pub work: Option<Work>,
}

/// How many matches a dry run lists.
const LISTED: usize = 20;

impl Filter {
    /// Whether it selects by nothing: refused, since it would replay everything.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    fn matches(&self, event: &Received) -> bool {
        self.work.is_none_or(|w| w.state() == event.work)
            && self.status.as_ref().is_none_or(|s| *s == event.status)
            && self.model.as_deref().is_none_or(|m| event.model.as_deref() == Some(m))
    }

    /// The run's name when `--run` is not given: the same for the same flags as typed
    /// and steps to forget, whenever it is run, so running the command again resumes it.
    pub fn run_name(&self, forget: &[String]) -> String {
        let typed = |t: &Option<When>| t.as_ref().map_or("-", |t| t.typed.as_str()).to_owned();
        let work = self.work.map_or("-".to_owned(), |w| w.state().as_str().to_owned());
        let status = self.status.as_ref().map_or("-", Status::as_str);
        let what = format!(
            "since={}\nuntil={}\nstatus={status}\nmodel={}\nwork={work}\nforget={}",
            typed(&self.since),
            typed(&self.until),
            self.model.as_deref().unwrap_or("-"),
            forget.join("\n"),
        );
        format!("f-{:016x}", crate::shards::fnv1a(what.as_bytes()))
    }
}

/// The longest model name a filter can select by: what an event keeps of it.
pub const MODEL_BYTES: usize = crate::ports::MODEL_KEPT_BYTES;

/// How a bulk replay goes: its name, what it selected, its pace, whether it only counts.
pub struct Run<'a> {
    /// Its name: an event it reopened keeps it, so the same run sends it once.
    pub name: &'a str,
    /// The state each event's work must still be in when it is reopened (`--work`).
    pub only: Option<Work>,
    /// Events sent a second, at most.
    pub rate: u32,
    /// Only count and list what the filter selects.
    pub dry_run: bool,
    /// The steps to run again rather than return their recorded outcomes.
    pub forget: &'a [String],
    /// Tell progress on stderr as it goes (the command line does).
    pub progress: bool,
}

/// Counts what `filter` selects, then (unless a dry run) replays each match once for
/// the run, at most `run.rate` a second, telling progress on stderr.
pub async fn replay(ops: &Ops, filter: &Filter, run: &Run<'_>) -> Result<Value> {
    if filter.is_empty() {
        return Err(super::OpsError::EmptyFilter);
    }
    let until = filter.until.as_ref().map_or_else(crate::clock::now, |w| w.at);
    let since = filter.since.as_ref().map_or(OffsetDateTime::UNIX_EPOCH, |w| w.at);
    let matched = ops.ledger().received_between(since, until, |e| filter.matches(e)).await?;
    let (stamped, to_send): (Vec<&Received>, Vec<&Received>) = matched.iter().partition(|e| e.replayed_by(run.name));
    // Of those this run reopened, the ones whose replayed run has not completed (the
    // replay still asked for: its send failed, or its run failed again) are sent again,
    // never reopened again, so no step the run forgot is forgotten twice. A message
    // sent twice is absorbed by the claim.
    let mut pending = Vec::new();
    for event in &stamped {
        let item = ops.ledger().event_item(event.id, &event.status).await?;
        let asked = |item: &Value| !item["replay"].is_null() && item["forgotten_at"].is_null();
        if item.as_ref().is_some_and(asked) {
            pending.push((*event, ops.ledger().work_payload(event.id, &event.status).await?));
        }
    }
    let done = stamped.len() - pending.len();
    let mut lines = vec![format!(
        "replay {}: {} matched ({}); {} replayed by this run already, {} of them unfinished and sent again; {} to send",
        run.name,
        matched.len(),
        by_work(&matched),
        stamped.len(),
        pending.len(),
        to_send.len()
    )];
    if run.dry_run {
        let listed = to_send.iter().take(LISTED);
        lines.extend(
            listed.map(|e| format!("  {} {} received {} work {}", e.id, e.status, e.received_at, e.work.as_str())),
        );
        if to_send.len() > LISTED {
            lines.push(format!("  ... and {} more", to_send.len() - LISTED));
        }
        lines.push("dry run: nothing sent".to_owned());
        return Ok(json!(lines.join("\n")));
    }
    if done > 0 {
        // The name is what keeps a run once per event: what it replayed to completion,
        // the same command never sends again.
        lines.push(format!(
            "{done} were replayed by run {} to completion already and are not sent again; to replay them once more, name a new run: --run <name>",
            run.name
        ));
    }
    if run.progress {
        eprintln!("{}", lines[0]);
    }
    // At the run's rate, as the first sends were.
    let (start, gap) = (Instant::now(), Duration::from_secs(1) / run.rate.max(1));
    for (n, (event, payload)) in pending.iter().enumerate() {
        tokio::time::sleep_until(start + gap * u32::try_from(n).unwrap_or(u32::MAX)).await;
        ops.ingest.resend(event.id, &event.status, payload.as_deref()).await?;
    }
    let tally = send(ops, &to_send, run).await?;
    lines.push(format!(
        "replay {}: sent {} of {} ({} more sent again); {} held by a run now, {} no longer selected, {} no longer in the table",
        run.name,
        tally.sent,
        to_send.len(),
        pending.len(),
        tally.busy,
        tally.moved,
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
    moved: usize,
    gone: usize,
}

async fn send(ops: &Ops, events: &[&Received], run: &Run<'_>) -> Result<Tally> {
    let start = Instant::now();
    let gap = Duration::from_secs(1) / run.rate.max(1);
    let mut told = start;
    let mut tally = Tally::default();
    for (n, event) in events.iter().enumerate() {
        tokio::time::sleep_until(start + gap * u32::try_from(n).unwrap_or(u32::MAX)).await;
        let rerun = Rerun { run: run.name, only: run.only.map(Work::state) };
        match ops.ledger().reopen(event.id, &event.status, run.forget, Some(rerun)).await? {
            Reopened::Reopened { payload, .. } => {
                // A send that fails leaves the event reopened and stamped: the same command
                // run again sends it (issue 33, defect 11), and the reconciler enqueues
                // it once stale meanwhile.
                ops.ingest.resend(event.id, &event.status, payload.as_deref()).await?;
                tally.sent += 1;
            }
            // Reopened by this run meanwhile (another copy of the command): not twice.
            Reopened::AlreadyReplayed => {}
            Reopened::Running => tally.busy += 1,
            Reopened::NotSelected => tally.moved += 1,
            Reopened::NoWork | Reopened::Missing => tally.gone += 1,
        }
        if run.progress && (told.elapsed() >= Duration::from_secs(1) || n + 1 == events.len()) {
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
        states.iter().filter(|s| count(**s) > 0).map(|s| format!("{} {}", count(*s), s.as_str())).collect();
    if parts.is_empty() { "none".to_owned() } else { parts.join(", ") }
}

#[cfg(test)]
mod tests {
    use crate::prediction::PredictionId;

    use super::*;

    fn event(status: Status, model: Option<&str>, work: WorkState) -> Received {
        Received {
            id: PredictionId::random(),
            status,
            received_at: "2026-12-04T00:00:00.000000000Z".to_owned(),
            model: model.map(str::to_owned),
            work,
            replayed_by: Vec::new(),
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
        let typed = |at| Some(When { typed: "24h".to_owned(), at });
        let now = crate::clock::now();
        let since = Filter { since: typed(now), ..filter.clone() };
        assert_ne!(name, since.run_name(&[]), "a window given is part of the name");
        let an_hour_on = Filter { since: typed(now + time::Duration::hours(1)), ..filter.clone() };
        assert_eq!(since.run_name(&[]), an_hour_on.run_name(&[]), "--since 24h names one run whenever it is typed");
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
