//! The tier bookkeeping of the WASM pool, kept free of wasmtime so its
//! invariants can be property-tested on their own.

use std::collections::HashMap;

use serde::Serialize;

/// Where a module lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    /// Instances already instantiated and ready.
    Hot,
    /// An `InstancePre` in memory: instantiate on acquire.
    Warm,
    /// Only in the AOT cache or as source: deserialize or compile on acquire.
    Cold,
}

impl Tier {
    /// All tiers, hottest first.
    pub const ALL: [Tier; 3] = [Tier::Hot, Tier::Warm, Tier::Cold];

    pub(crate) fn index(self) -> usize {
        match self {
            Tier::Hot => 0,
            Tier::Warm => 1,
            Tier::Cold => 2,
        }
    }

    /// `hot`, `warm` or `cold`.
    pub fn name(self) -> &'static str {
        ["hot", "warm", "cold"][self.index()]
    }
}

#[derive(Debug, Clone)]
struct Entry {
    tier: Tier,
    rate: f64,
    last: f64,
}

/// A module's move between tiers at a rebalance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Move {
    pub(crate) id: String,
    pub(crate) from: Tier,
    pub(crate) to: Tier,
}

/// Module tiers and their time-decayed access rates.
///
/// The rate of a module is an exponentially decayed count of its acquisitions:
/// each acquisition adds 1, and the sum halves every `half_life` units of the
/// clock the caller passes (seconds for the live pool; acquisitions, say, for
/// a deterministic workload).
#[derive(Debug, Clone)]
pub(crate) struct TierBook {
    entries: HashMap<String, Entry>,
    counts: [usize; 3],
    hot_capacity: usize,
    warm_capacity: usize,
    half_life: f64,
    pub(crate) promotions: u64,
    pub(crate) demotions: u64,
}

impl TierBook {
    pub(crate) fn new(hot_capacity: usize, warm_capacity: usize, half_life: f64) -> TierBook {
        TierBook {
            entries: HashMap::new(),
            counts: [0; 3],
            hot_capacity,
            warm_capacity,
            half_life,
            promotions: 0,
            demotions: 0,
        }
    }

    /// Adds a module, cold; a second registration of the same id changes nothing.
    pub(crate) fn register(&mut self, id: &str) -> bool {
        if self.entries.contains_key(id) {
            return false;
        }
        self.entries.insert(
            id.to_owned(),
            Entry {
                tier: Tier::Cold,
                rate: 0.0,
                last: 0.0,
            },
        );
        self.counts[Tier::Cold.index()] += 1;
        true
    }

    pub(crate) fn tier(&self, id: &str) -> Option<Tier> {
        self.entries.get(id).map(|e| e.tier)
    }

    fn decayed(&self, e: &Entry, now: f64) -> f64 {
        e.rate * 0.5_f64.powf(((now - e.last).max(0.0)) / self.half_life)
    }

    /// Counts an acquisition of `id` at `now`; returns its tier.
    pub(crate) fn touch(&mut self, id: &str, now: f64) -> Option<Tier> {
        let decayed = self.decayed(self.entries.get(id)?, now);
        let e = self.entries.get_mut(id)?;
        e.rate = decayed + 1.0;
        e.last = now;
        Some(e.tier)
    }

    /// The decayed rate of `id` at `now`.
    #[cfg(test)]
    pub(crate) fn rate(&self, id: &str, now: f64) -> f64 {
        self.entries.get(id).map_or(0.0, |e| self.decayed(e, now))
    }

    /// Moves a cold module to warm if the warm tier has room, as when a cold
    /// load has just produced what the warm tier keeps; never displaces anyone.
    pub(crate) fn admit_warm(&mut self, id: &str) -> bool {
        if self.counts[Tier::Warm.index()] >= self.warm_capacity {
            return false;
        }
        match self.entries.get_mut(id) {
            Some(e) if e.tier == Tier::Cold => {
                e.tier = Tier::Warm;
                self.counts[Tier::Cold.index()] -= 1;
                self.counts[Tier::Warm.index()] += 1;
                self.promotions += 1;
                true
            }
            _ => false,
        }
    }

    /// Modules per tier: `[hot, warm, cold]`.
    pub(crate) fn counts(&self) -> [usize; 3] {
        self.counts
    }

    /// Ranks modules by decayed rate at `now` (ties by id, so the result is
    /// deterministic) and assigns the top `hot_capacity` to hot, the next
    /// `warm_capacity` to warm, the rest to cold. Modules never acquired stay
    /// cold whatever the capacity.
    pub(crate) fn rebalance(&mut self, now: f64) -> Vec<Move> {
        let mut ranked: Vec<(String, f64)> = self
            .entries
            .iter()
            .map(|(id, e)| (id.clone(), self.decayed(e, now)))
            .collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        let mut moves = Vec::new();
        for (rank, (id, rate)) in ranked.into_iter().enumerate() {
            let to = if rate <= 0.0 {
                Tier::Cold
            } else if rank < self.hot_capacity {
                Tier::Hot
            } else if rank < self.hot_capacity + self.warm_capacity {
                Tier::Warm
            } else {
                Tier::Cold
            };
            let Some(e) = self.entries.get_mut(&id) else {
                continue;
            };
            if e.tier != to {
                self.counts[e.tier.index()] -= 1;
                self.counts[to.index()] += 1;
                if to < e.tier {
                    self.promotions += 1;
                } else {
                    self.demotions += 1;
                }
                moves.push(Move {
                    id,
                    from: e.tier,
                    to,
                });
                e.tier = to;
            }
        }
        moves
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn the_most_acquired_modules_go_hot_then_warm() {
        let mut book = TierBook::new(1, 1, 100.0);
        for id in ["a", "b", "c"] {
            book.register(id);
        }
        for _ in 0..5 {
            book.touch("b", 1.0);
        }
        book.touch("c", 1.0);
        let moves = book.rebalance(1.0);
        assert_eq!(
            (book.tier("b"), book.tier("c"), book.tier("a")),
            (Some(Tier::Hot), Some(Tier::Warm), Some(Tier::Cold))
        );
        assert_eq!(moves.len(), 2);
        assert_eq!(book.counts(), [1, 1, 1]);
        assert_eq!((book.promotions, book.demotions), (2, 0));
    }

    #[test]
    fn rates_halve_every_half_life() {
        let mut book = TierBook::new(1, 1, 10.0);
        book.register("a");
        book.touch("a", 0.0);
        book.touch("a", 0.0);
        assert!((book.rate("a", 10.0) - 1.0).abs() < 1e-12);
        assert!((book.rate("a", 20.0) - 0.5).abs() < 1e-12);
    }

    #[derive(Debug, Clone)]
    enum Op {
        Register(u8),
        Touch(u8, u16),
        Rebalance(u16),
        Admit(u8),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0u8..12).prop_map(Op::Register),
            (0u8..12, 0u16..1000).prop_map(|(m, t)| Op::Touch(m, t)),
            (0u16..1000).prop_map(Op::Rebalance),
            (0u8..12).prop_map(Op::Admit),
        ]
    }

    proptest! {
        #[test]
        fn tier_counts_always_match_the_modules_and_respect_capacity(
            ops in prop::collection::vec(op(), 1..200),
            hot in 0usize..5,
            warm in 0usize..5,
        ) {
            let mut book = TierBook::new(hot, warm, 50.0);
            let mut registered = std::collections::HashSet::new();
            let mut clock = 0.0;
            for op in ops {
                match op {
                    Op::Register(m) => {
                        let fresh = book.register(&format!("m{m}"));
                        prop_assert_eq!(fresh, registered.insert(m), "a module registered twice must count once");
                    }
                    Op::Touch(m, dt) => {
                        clock += f64::from(dt);
                        let tier = book.touch(&format!("m{m}"), clock);
                        prop_assert_eq!(tier.is_some(), registered.contains(&m));
                    }
                    Op::Admit(m) => {
                        book.admit_warm(&format!("m{m}"));
                        prop_assert!(book.counts()[1] <= warm);
                    }
                    Op::Rebalance(dt) => {
                        clock += f64::from(dt);
                        book.rebalance(clock);
                        let c = book.counts();
                        prop_assert!(c[0] <= hot && c[1] <= warm);
                    }
                }
                // No module counted twice, no count lost: the counts always sum
                // to the modules, tier by tier.
                let c = book.counts();
                prop_assert_eq!(c.iter().sum::<usize>(), registered.len());
                for t in Tier::ALL {
                    let actual = registered.iter().filter(|m| book.tier(&format!("m{m}")) == Some(t)).count();
                    prop_assert_eq!(c[t.index()], actual);
                }
            }
        }
    }
}
