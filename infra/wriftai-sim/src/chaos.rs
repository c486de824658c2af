//! Seedable chaos: duplicate, reorder, drop and delay webhook deliveries, reproducibly.
//!
//! Randomness comes from the seed and a creation counter, never from timing: the same
//! seed and the same sequence of creations give the same decisions. Setting `seed` at
//! run time resets the counter, so "set the seed, then create N predictions" replays.

use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChaosSettings {
    pub seed: u64,
    /// Probability that a delivery is sent twice.
    pub duplicate_rate: f64,
    /// Probability that a prediction's `started` delivery is held back and sent after
    /// its terminal one.
    pub reorder_rate: f64,
    /// Probability that a delivery is dropped, as if its retries were exhausted.
    pub drop_rate: f64,
    /// Upper bound of a random extra delay before each delivery.
    pub delay_ms: u64,
    /// Attempts per delivery, the first included.
    pub max_attempts: u32,
}

impl Default for ChaosSettings {
    fn default() -> Self {
        Self { seed: 0, duplicate_rate: 0.0, reorder_rate: 0.0, drop_rate: 0.0, delay_ms: 0, max_attempts: 5 }
    }
}

/// A `PUT /_sim/chaos` body: any subset of the settings.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChaosPatch {
    seed: Option<u64>,
    duplicate_rate: Option<f64>,
    reorder_rate: Option<f64>,
    drop_rate: Option<f64>,
    delay_ms: Option<u64>,
    max_attempts: Option<u32>,
}

/// The live settings and the creation counter that per-prediction randomness derives from.
#[derive(Debug)]
pub struct Chaos {
    inner: Mutex<(ChaosSettings, u64)>,
}

impl Chaos {
    pub fn new(settings: ChaosSettings) -> Self {
        Self { inner: Mutex::new((settings, 0)) }
    }

    pub fn settings(&self) -> ChaosSettings {
        lock(&self.inner).0.clone()
    }

    /// Applies a patch whole or not at all.
    pub fn apply(&self, patch: ChaosPatch) -> Result<ChaosSettings, String> {
        for (name, value) in [
            ("duplicate_rate", patch.duplicate_rate),
            ("reorder_rate", patch.reorder_rate),
            ("drop_rate", patch.drop_rate),
        ] {
            if value.is_some_and(|r| !(0.0..=1.0).contains(&r)) {
                return Err(format!("{name} must be a probability in [0, 1]"));
            }
        }
        if patch.max_attempts == Some(0) {
            return Err("max_attempts must be at least 1".into());
        }
        let mut guard = lock(&self.inner);
        let (settings, counter) = &mut *guard;
        if let Some(seed) = patch.seed {
            settings.seed = seed;
            *counter = 0;
        }
        settings.duplicate_rate = patch.duplicate_rate.unwrap_or(settings.duplicate_rate);
        settings.reorder_rate = patch.reorder_rate.unwrap_or(settings.reorder_rate);
        settings.drop_rate = patch.drop_rate.unwrap_or(settings.drop_rate);
        settings.delay_ms = patch.delay_ms.unwrap_or(settings.delay_ms);
        settings.max_attempts = patch.max_attempts.unwrap_or(settings.max_attempts);
        Ok(settings.clone())
    }

    /// The randomness of the next created prediction. Called once per creation, in
    /// creation order.
    pub fn plan_next(&self) -> Plan {
        let mut guard = lock(&self.inner);
        let (settings, counter) = &mut *guard;
        let base = settings.seed ^ counter.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        *counter += 1;
        let mut decisions = SplitMix64::new(base);
        let reorder = decisions.chance(settings.reorder_rate);
        Plan {
            decisions,
            // A separate stream for retry jitter and signature noise, so how often a
            // receiver fails does not shift the chaos decisions that follow.
            noise: SplitMix64::new(base ^ 0xD1B5_4A32_D192_ED03),
            reorder,
        }
    }
}

/// One prediction's chaos: whether its `started` is reordered, and the random streams
/// its deliveries draw from.
#[derive(Debug)]
pub struct Plan {
    decisions: SplitMix64,
    pub noise: SplitMix64,
    pub reorder: bool,
}

/// What happens to one delivery.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Decision {
    pub drop: bool,
    pub duplicate: bool,
    pub delay: Duration,
}

impl Plan {
    /// Draws the same three numbers for every delivery, whatever they decide, so one
    /// delivery's outcome never shifts the next one's draws.
    pub fn decide(&mut self, settings: &ChaosSettings) -> Decision {
        let drop = self.decisions.chance(settings.drop_rate);
        let duplicate = self.decisions.chance(settings.duplicate_rate);
        let delay_fraction = self.decisions.next_f64();
        // Truncation is fine: the delay is "up to delay_ms" at millisecond grain.
        let delay_ms = (settings.delay_ms as f64 * delay_fraction) as u64;
        Decision { drop, duplicate, delay: Duration::from_millis(delay_ms) }
    }
}

/// SplitMix64: tiny, fast, and good enough for test chaos; no dependency needed.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1), from the top 53 bits.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// True with probability `p`; `p = 0` is never, `p = 1` always.
    pub fn chance(&mut self, p: f64) -> bool {
        self.next_f64() < p
    }
}

/// A poisoned lock only means another task panicked mid-update of plain data; the data
/// is still usable for a simulator, so carry on rather than cascade the panic.
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rates(p: f64) -> ChaosSettings {
        ChaosSettings {
            seed: 7,
            duplicate_rate: p,
            reorder_rate: p,
            drop_rate: p,
            delay_ms: 100,
            ..ChaosSettings::default()
        }
    }

    #[test]
    fn the_same_seed_and_creation_order_give_the_same_decisions() {
        let run = || {
            let chaos = Chaos::new(rates(0.5));
            (0..20)
                .map(|_| {
                    let mut plan = chaos.plan_next();
                    (plan.reorder, plan.decide(&rates(0.5)))
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(run(), run());
    }

    #[test]
    fn setting_the_seed_restarts_the_sequence() {
        let chaos = Chaos::new(rates(0.5));
        let first: Vec<bool> = (0..16).map(|_| chaos.plan_next().reorder).collect();
        let patch = ChaosPatch { seed: Some(7), ..ChaosPatch::default() };
        assert!(chaos.apply(patch).is_ok());
        let again: Vec<bool> = (0..16).map(|_| chaos.plan_next().reorder).collect();
        assert_eq!(first, again);
        assert!(first.contains(&true) && first.contains(&false));
    }

    #[test]
    fn rates_of_zero_and_one_are_never_and_always() {
        let chaos = Chaos::new(rates(1.0));
        let mut plan = chaos.plan_next();
        assert!(plan.reorder);
        let d = plan.decide(&rates(1.0));
        assert!(d.drop && d.duplicate);
        let mut plan = Chaos::new(rates(0.0)).plan_next();
        let d = plan.decide(&rates(0.0));
        assert!(!plan.reorder && !d.drop && !d.duplicate);
    }

    #[test]
    fn a_rate_outside_zero_to_one_is_refused_and_changes_nothing() {
        let chaos = Chaos::new(ChaosSettings::default());
        let patch = ChaosPatch { drop_rate: Some(1.5), delay_ms: Some(9), ..ChaosPatch::default() };
        assert!(chaos.apply(patch).is_err());
        assert_eq!(chaos.settings(), ChaosSettings::default());
    }
}
