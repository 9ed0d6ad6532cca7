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

    /// Its place in [`Tier::ALL`]: 0 for hot, 1 for warm, 2 for cold.
    pub fn index(self) -> usize {
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

    /// Admits module `id`, just loaded by a cold acquire at `now`: to a free
    /// hot place, else a free warm place, else in place of the warm module
    /// with the lowest rate if `id` was wanted more than it before this
    /// acquire (its rate without the acquire just counted, so a module seen
    /// once does not push out one seen often). The load has been paid for by
    /// the acquire, so admitting costs no work; the displaced module goes
    /// cold and is returned, for its caller to drop what it held.
    pub(crate) fn admit(&mut self, id: &str, now: f64) -> Admission {
        let Some(e) = self.entries.get(id) else {
            return Admission::Refused;
        };
        if e.tier != Tier::Cold {
            return Admission::Refused;
        }
        let [hot, warm, _] = self.counts;
        if hot < self.hot_capacity {
            self.set_tier(id, Tier::Hot);
            return Admission::Admitted;
        }
        if warm < self.warm_capacity {
            self.set_tier(id, Tier::Warm);
            return Admission::Admitted;
        }
        let wanted = self.decayed(e, now) - 1.0;
        let victim = self
            .entries
            .iter()
            .filter(|(_, v)| v.tier == Tier::Warm)
            .map(|(vid, v)| (vid, self.decayed(v, now), v.last))
            .min_by(|a, b| {
                a.1.total_cmp(&b.1)
                    .then_with(|| a.2.total_cmp(&b.2))
                    .then_with(|| b.0.cmp(a.0))
            });
        match victim {
            Some((vid, rate, _)) if wanted > rate => {
                let victim = vid.clone();
                self.set_tier(&victim, Tier::Cold);
                self.set_tier(id, Tier::Warm);
                Admission::Displacing(victim)
            }
            _ => Admission::Refused,
        }
    }

    /// Moves `id` to `to`, keeping the counts and the promotion tally.
    fn set_tier(&mut self, id: &str, to: Tier) {
        let Some(e) = self.entries.get_mut(id) else {
            return;
        };
        if e.tier == to {
            return;
        }
        self.counts[e.tier.index()] -= 1;
        self.counts[to.index()] += 1;
        if to < e.tier {
            self.promotions += 1;
        } else {
            self.demotions += 1;
        }
        e.tier = to;
    }

    /// Modules per tier: `[hot, warm, cold]`.
    pub(crate) fn counts(&self) -> [usize; 3] {
        self.counts
    }

    /// Ranks the resident (hot and warm) modules by decayed rate at `now`
    /// (ties by the last acquire, then id, so the result is deterministic): the top `hot_capacity`
    /// go hot, the rest warm. Cold modules stay cold: one earns residency
    /// by [`admit`](TierBook::admit) when its own acquire has loaded it, so
    /// a rebalance never loads a module on a guess (a module near the
    /// residency boundary would be loaded, dropped and loaded again as its
    /// noisy rate crosses the boundary back and forth).
    pub(crate) fn rebalance(&mut self, now: f64) -> Vec<Move> {
        let mut ranked: Vec<(String, f64, f64)> = self
            .entries
            .iter()
            .filter(|(_, e)| e.tier != Tier::Cold)
            .map(|(id, e)| (id.clone(), self.decayed(e, now), e.last))
            .collect();
        // Equal rates (all decayed to nothing, say) rank the most recently
        // acquired first, never by name.
        ranked.sort_by(|a, b| {
            b.1.total_cmp(&a.1)
                .then_with(|| b.2.total_cmp(&a.2))
                .then_with(|| a.0.cmp(&b.0))
        });
        let mut moves = Vec::new();
        for (rank, (id, _, _)) in ranked.into_iter().enumerate() {
            let to = if rank < self.hot_capacity {
                Tier::Hot
            } else {
                Tier::Warm
            };
            let Some(from) = self.tier(&id) else {
                continue;
            };
            if from != to {
                self.set_tier(&id, to);
                moves.push(Move { id, from, to });
            }
        }
        moves
    }
}

/// What [`TierBook::admit`] decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Admission {
    /// Not admitted: the module stays cold.
    Refused,
    /// Admitted to a free warm place.
    Admitted,
    /// Admitted in place of this module, now cold.
    Displacing(String),
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn the_most_acquired_resident_modules_go_hot_and_cold_ones_stay_cold() {
        let mut book = TierBook::new(1, 1, 100.0);
        for id in ["a", "b", "c"] {
            book.register(id);
        }
        book.touch("c", 1.0);
        assert_eq!(book.admit("c", 1.0), Admission::Admitted);
        book.touch("b", 1.0);
        assert_eq!(book.admit("b", 1.0), Admission::Admitted);
        assert_eq!(
            (book.tier("c"), book.tier("b")),
            (Some(Tier::Hot), Some(Tier::Warm))
        );
        for _ in 0..4 {
            book.touch("b", 1.0);
        }
        for _ in 0..9 {
            book.touch("a", 1.0);
        }
        // a is wanted most, but only a load of its own makes it resident.
        let moves = book.rebalance(1.0);
        assert_eq!(
            (book.tier("b"), book.tier("c"), book.tier("a")),
            (Some(Tier::Hot), Some(Tier::Warm), Some(Tier::Cold))
        );
        assert_eq!(moves.len(), 2);
        assert_eq!(book.counts(), [1, 1, 1]);
        assert_eq!((book.promotions, book.demotions), (3, 1));
    }

    #[test]
    fn a_miss_displaces_the_least_wanted_warm_module_only_if_wanted_more() {
        let mut book = TierBook::new(0, 1, 100.0);
        for id in ["a", "b"] {
            book.register(id);
        }
        book.touch("a", 0.0);
        book.touch("a", 0.0);
        assert_eq!(book.admit("a", 0.0), Admission::Admitted);
        // b's first acquire: wanted 0 before it, against a's 2.
        book.touch("b", 0.0);
        assert_eq!(book.admit("b", 0.0), Admission::Refused);
        for _ in 0..3 {
            book.touch("b", 0.0);
        }
        assert_eq!(book.admit("b", 0.0), Admission::Displacing("a".into()));
        assert_eq!(
            (book.tier("a"), book.tier("b")),
            (Some(Tier::Cold), Some(Tier::Warm))
        );
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
                        let before = book.tier(&format!("m{m}"));
                        let admission = book.admit(&format!("m{m}"), clock);
                        prop_assert!(book.counts()[0] <= hot && book.counts()[1] <= warm);
                        if admission != Admission::Refused {
                            prop_assert_eq!(before, Some(Tier::Cold), "only a cold module is admitted");
                        }
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
