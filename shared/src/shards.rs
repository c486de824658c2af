//! The partition key values of the sparse indexes. DynamoDB holds one partition key value
//! to 1,000 write units a second, on the table and on each index apart, and an index short
//! of capacity throttles the table's writes: one value per index (`OPEN`, `WORK`) caps
//! the stack at a few hundred predictions a second. So each index spreads its items over
//! `INDEX_SHARDS` values, `OPEN#<n>`, `WORK#<n>` and `RECV#<n>`, `n` from the prediction's ID:
//! always the same for one prediction. Readers walk every shard, and the one value a
//! table written before sharding holds (`OPEN`, `WORK`), until its items have left it.
//! The arithmetic is in docs/design.md, "Partition keys and their rates".

use crate::prediction::PredictionId;

/// Shards per index when `INDEX_SHARDS` is unset: at 10,000 new predictions a second with
/// the worker acting on all four of their events (12 write units each on `work`), each
/// shard takes under 500 of its 1,000 write units a second; with the terminal ones only
/// (the default), under 120.
pub const DEFAULT: u16 = 256;

/// The sparse indexes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Index {
    /// Unfinished predictions (`open_pk`, `open_since`).
    Open,
    /// Events whose work is not done (`work_pk`, `work_since`).
    Work,
    /// Events the worker acts on, by when they were received (`recv_pk`, `received_at`),
    /// from the end of their work's first run (or a give-up) for as long as the event is
    /// kept: what `hooks replay` by filter reads.
    Received,
}

impl Index {
    pub fn name(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Work => "work",
            Self::Received => "received",
        }
    }

    /// What each of its partition key values starts with.
    fn prefix(self) -> &'static str {
        match self {
            Self::Open => "OPEN",
            Self::Work => "WORK",
            Self::Received => "RECV",
        }
    }

    /// The one partition key value tables written before sharding used; the `received`
    /// index came with its shards.
    pub fn legacy(self) -> Option<&'static str> {
        match self {
            Self::Open | Self::Work => Some(self.prefix()),
            Self::Received => None,
        }
    }

    /// The partition key value `id`'s items take in this index.
    pub fn partition(self, id: PredictionId, shards: u16) -> String {
        format!("{}#{}", self.prefix(), shard(id, shards))
    }

    /// Every value a walk of this index reads: each shard, then the legacy one.
    pub fn partitions(self, shards: u16) -> Vec<String> {
        (0..shards.max(1)).map(|n| format!("{}#{n}", self.prefix())).chain(self.legacy().map(str::to_owned)).collect()
    }
}

/// `id`'s shard among `shards`: FNV-1a of its bytes, the same on every machine and in
/// every version.
pub fn shard(id: PredictionId, shards: u16) -> u16 {
    (fnv1a(id.as_bytes()) % u64::from(shards.max(1))) as u16
}

/// FNV-1a, 64 bits: a stable hash of `bytes`, never a secret's.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in bytes {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prediction_always_lands_on_the_same_shard_and_shards_fill_evenly() {
        let id = PredictionId::parse("a1b2c3d4-5678-9abc-def0-1234567890ab").unwrap();
        assert_eq!(shard(id, 100), shard(id, 100));
        assert_eq!(Index::Open.partition(id, 100), format!("OPEN#{}", shard(id, 100)));
        // A fixed value: the shard of an ID never changes across versions.
        assert_eq!(shard(id, 64), 46);
        let mut counts = [0u32; 64];
        for _ in 0..64_000 {
            counts[usize::from(shard(PredictionId::random(), 64))] += 1;
        }
        let (least, most) = (counts.iter().min().unwrap(), counts.iter().max().unwrap());
        assert!(*least > 850 && *most < 1150, "about 1,000 each: {least} to {most}");
    }

    #[test]
    fn a_walk_reads_every_shard_and_the_legacy_value() {
        let partitions = Index::Work.partitions(3);
        assert_eq!(partitions, ["WORK#0", "WORK#1", "WORK#2", "WORK"]);
        assert_eq!(Index::Open.partitions(1), ["OPEN#0", "OPEN"]);
        assert_eq!(Index::Received.partitions(2), ["RECV#0", "RECV#1"], "no table before sharding wrote it");
    }
}
