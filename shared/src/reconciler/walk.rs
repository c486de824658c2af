//! A walk of a sparse index, oldest first across its partitions. Each partition
//! (`wriftai_hooks::shards`) is read a page at a time, in order of its sort key; the walk holds
//! each one's next page and hands out the oldest item among their heads, so the items come
//! out in one order whatever shard each is in. Pages are read a few partitions at once,
//! only when a partition's last page is used up.
//!
//! Its place between runs is a time, not a key per partition: every item older than the
//! last one handed out has been handed out, so a walk that resumes reads each partition
//! from that time on, less the items of that very time it already handed out (`Place`).

use std::collections::VecDeque;
use std::future::Future;

use futures_util::{StreamExt, stream};
use serde_json::json;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::error::Result;
use crate::ports::{OpenPrediction, Page, StaleWork};

/// Partitions read at once.
const AT_ONCE: usize = 16;

/// Keys of one time a place lists at most. Every writer stamps its own time to the
/// nanosecond, so this many items of one time is out of the ordinary; past it the place
/// moves a nanosecond on, and what else that time holds waits for the next pass, rather
/// than the place outgrowing its item (DynamoDB's 400 KB).
const MOST_SEEN: usize = 1000;

/// An item of a walk: its place in its index, and what tells it from others of that time.
pub trait Dated {
    fn since(&self) -> OffsetDateTime;
    fn key(&self) -> String;
}

impl Dated for OpenPrediction {
    fn since(&self) -> OffsetDateTime {
        self.registered_at
    }
    fn key(&self) -> String {
        self.id.to_string()
    }
}

impl Dated for StaleWork {
    fn since(&self) -> OffsetDateTime {
        self.since
    }
    fn key(&self) -> String {
        format!("{}/{}", self.id, self.status)
    }
}

/// Where a walk stopped: every item older than `from` was handed out, and of the items of
/// `from` itself, those in `seen`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Place {
    pub from: Option<OffsetDateTime>,
    seen: Vec<String>,
}

impl Place {
    /// A saved place; the start for none, or for one this code never wrote (a cursor of
    /// the walks before sharding: the walk starts again from the oldest).
    pub fn parse(saved: Option<&str>) -> Self {
        let Some(saved) = saved.and_then(|s| serde_json::from_str::<serde_json::Value>(s).ok()) else {
            return Self::default();
        };
        let Some(from) = saved["from"].as_str().and_then(|f| OffsetDateTime::parse(f, &Rfc3339).ok()) else {
            return Self::default();
        };
        let seen = saved["seen"].as_array().into_iter().flatten().filter_map(|k| k.as_str().map(String::from));
        Self { from: Some(from), seen: seen.collect() }
    }

    /// What is saved: none at the start.
    pub fn saved(&self) -> Option<String> {
        let from = self.from?.format(&Rfc3339).ok()?;
        Some(json!({"from": from, "seen": self.seen}).to_string())
    }

    /// Whether `item` was handed out before this place.
    fn passed<T: Dated>(&self, item: &T) -> bool {
        self.from.is_some_and(|from| item.since() < from || (item.since() == from && self.seen.contains(&item.key())))
    }

    /// The place after `items`, handed out oldest first.
    pub fn after<T: Dated>(&mut self, items: &[T]) {
        for item in items {
            match self.from {
                Some(from) if item.since() < from => continue, // behind a place moved past a crowded time
                Some(from) if item.since() == from => {}
                _ => {
                    self.from = Some(item.since());
                    self.seen.clear();
                }
            }
            self.seen.push(item.key());
            if self.seen.len() >= MOST_SEEN {
                tracing::warn!(at = %item.since(), "over {MOST_SEEN} items of one time: the rest wait for the next pass");
                self.from = Some(item.since() + time::Duration::nanoseconds(1));
                self.seen.clear();
            }
        }
    }
}

struct Partition<T> {
    name: String,
    held: VecDeque<T>,
    /// Where its next page starts.
    next: Option<String>,
    /// Its last page has been read.
    ended: bool,
}

/// The partitions of one index, merged, from a place.
pub struct Merged<T> {
    partitions: Vec<Partition<T>>,
    place: Place,
}

impl<T: Dated> Merged<T> {
    /// A walk of `partitions` whose pages are read from `place.from`.
    pub fn new(partitions: Vec<String>, place: Place) -> Self {
        let partitions = partitions
            .into_iter()
            .map(|name| Partition { name, held: VecDeque::new(), next: None, ended: false })
            .collect();
        Self { partitions, place }
    }

    /// Whether every item has been handed out.
    pub fn ended(&self) -> bool {
        self.partitions.iter().all(|p| p.ended && p.held.is_empty())
    }

    /// The place to save after the items handed out so far: none once all were, so the
    /// next walk starts from the oldest.
    pub fn place(&self) -> Option<String> {
        if self.ended() { None } else { self.place.saved() }
    }

    /// The next `n` items, oldest first across the partitions: fewer at the end.
    /// `page(partition, after)` reads one page of a partition.
    pub async fn next<F, Fut>(&mut self, n: usize, page: F) -> Result<Vec<T>>
    where
        F: Fn(String, Option<String>) -> Fut,
        Fut: Future<Output = Result<Page<T>>>,
    {
        let mut taken = Vec::with_capacity(n);
        while taken.len() < n {
            self.refill(&page).await?;
            let oldest = self.partitions.iter_mut().filter(|p| !p.held.is_empty()).min_by_key(|p| p.held[0].since());
            match oldest.and_then(|p| p.held.pop_front()) {
                Some(item) if self.place.passed(&item) => {}
                Some(item) => taken.push(item),
                None => break,
            }
        }
        self.place.after(&taken);
        Ok(taken)
    }

    /// Reads a page of every partition whose pages held are used up, until each holds an
    /// item or has ended.
    async fn refill<F, Fut>(&mut self, page: &F) -> Result<()>
    where
        F: Fn(String, Option<String>) -> Fut,
        Fut: Future<Output = Result<Page<T>>>,
    {
        loop {
            let wanted: Vec<(usize, String, Option<String>)> = self
                .partitions
                .iter()
                .enumerate()
                .filter(|(_, p)| p.held.is_empty() && !p.ended)
                .map(|(n, p)| (n, p.name.clone(), p.next.clone()))
                .collect();
            if wanted.is_empty() {
                return Ok(());
            }
            let read: Vec<(usize, Result<Page<T>>)> = stream::iter(wanted)
                .map(|(n, name, after)| async move { (n, page(name, after).await) })
                .buffer_unordered(AT_ONCE)
                .collect()
                .await;
            for (n, page) in read {
                let page = page?;
                let partition = &mut self.partitions[n];
                partition.held.extend(page.items);
                partition.ended = page.next.is_none();
                partition.next = page.next;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::prediction::PredictionId;

    fn at(secs: i64) -> OffsetDateTime {
        OffsetDateTime::UNIX_EPOCH + time::Duration::seconds(secs)
    }

    /// Partitions of open predictions registered at the given seconds, served two a page;
    /// the pages read, by partition.
    struct Served {
        partitions: Vec<Vec<i64>>,
        reads: Mutex<Vec<String>>,
    }

    impl Served {
        async fn page(&self, partition: String, after: Option<String>) -> Result<Page<OpenPrediction>> {
            self.reads.lock().unwrap().push(partition.clone());
            let times = &self.partitions[partition.parse::<usize>().unwrap()];
            let start: usize = after.map_or(0, |a| a.parse().unwrap());
            // The same item has the same ID on every read.
            let number: usize = partition.parse().unwrap();
            let items = times.iter().enumerate().skip(start).take(2).map(|(n, s)| OpenPrediction {
                id: PredictionId::parse(&format!("00000000-0000-4000-8000-{number:06}{n:06}")).unwrap(),
                registered_at: at(*s),
            });
            let end = start + 2;
            Ok(Page { items: items.collect(), next: (end < times.len()).then(|| end.to_string()) })
        }
    }

    #[tokio::test]
    async fn items_come_out_oldest_first_across_partitions_and_each_page_is_read_once() {
        let served =
            Served { partitions: vec![vec![1, 5, 6, 9], vec![2, 3], vec![], vec![4, 7, 8]], reads: Mutex::default() };
        let mut walk = Merged::new((0..4).map(|n| n.to_string()).collect(), Place::default());
        let mut seen = Vec::new();
        while !walk.ended() {
            let wave = walk.next(3, |p, a| served.page(p, a)).await.unwrap();
            seen.extend(wave.iter().map(|item| item.registered_at.unix_timestamp()));
        }
        assert_eq!(seen, [1, 2, 3, 4, 5, 6, 7, 8, 9]);
        // Two pages of partitions 0 and 3, one of 1 and 2: six reads, none twice.
        assert_eq!(served.reads.lock().unwrap().len(), 6);
    }

    #[tokio::test]
    async fn a_walk_resumed_from_its_place_hands_out_the_rest_and_nothing_twice() {
        // Three items of one time, split across a wave's end and across two partitions.
        let served = Served { partitions: vec![vec![1, 3, 3], vec![3, 4]], reads: Mutex::default() };
        let partitions = || (0..2).map(|n| n.to_string()).collect::<Vec<_>>();
        let mut first = Merged::new(partitions(), Place::default());
        let wave = first.next(3, |p, a| served.page(p, a)).await.unwrap();
        let place = first.place().expect("items are left");
        // The next walk reads its pages from that time (the served pages are the same).
        let mut second = Merged::new(partitions(), Place::parse(Some(&place)));
        assert_eq!(second.place.from, Some(at(3)));
        let mut rest = Vec::new();
        while !second.ended() {
            rest.extend(second.next(3, |p, a| served.page(p, a)).await.unwrap());
        }
        let mut keys: Vec<String> = wave.iter().chain(&rest).map(Dated::key).collect();
        keys.sort();
        keys.dedup();
        assert_eq!((wave.len() + rest.len(), keys.len()), (5, 5), "every item once");
        assert_eq!(second.place(), None, "a full pass starts from the oldest again");
    }

    #[test]
    fn a_place_is_a_time_and_a_place_of_another_kind_starts_from_the_oldest() {
        let mut place = Place::default();
        let items = [OpenPrediction { id: PredictionId::random(), registered_at: at(90) }];
        place.after(&items);
        assert_eq!(Place::parse(place.saved().as_deref()), place);
        assert_eq!(Place::parse(Some(r#"{"open_pk":"OPEN","pk":"PRED#x"}"#)), Place::default());
        assert_eq!(Place::parse(None), Place::default());
    }

    #[test]
    fn a_place_lists_a_bounded_number_of_keys_of_one_time() {
        let mut place = Place::default();
        let items: Vec<_> =
            (0..1500).map(|_| OpenPrediction { id: PredictionId::random(), registered_at: at(90) }).collect();
        place.after(&items);
        assert!(place.seen.len() < MOST_SEEN, "{} keys", place.seen.len());
        assert_eq!(place.from, Some(at(90) + time::Duration::nanoseconds(1)), "moved past the crowded time");
        assert!(place.saved().unwrap().len() < 100_000, "the saved place fits its item");
    }
}
