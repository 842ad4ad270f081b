//! Pruning: which events lose their content once past their retention, and what stays.

use super::*;

/// What pruning an org's chain at `now` changes: the events whose retention ended lose their
/// content ([`Event::tombstone`]) wherever they are in the chain, so one long-retention event
/// keeps nobody else's data; events written before `body_hash` existed can only go as a
/// prefix, replaced by an anchor.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PrunePlan {
    /// Events to store in their pruned form.
    pub tombstones: Vec<Event>,
    /// Delete the events before this anchor and record it.
    pub cut: Option<Anchor>,
    /// How many events the cut deletes.
    pub dropped: usize,
}

impl PrunePlan {
    /// How many events the plan prunes.
    pub fn len(&self) -> usize {
        self.tombstones.len() + self.dropped
    }

    /// Whether it changes nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The events of `events` (those the plan was made from) that the plan deletes or prunes:
    /// what a store subtracts from its day tallies.
    pub fn removed<'a>(&self, events: &'a [Event]) -> impl Iterator<Item = &'a Event> {
        let pruned: std::collections::HashSet<u64> =
            self.tombstones.iter().map(|t| t.seq).collect();
        let dropped = self.dropped;
        events
            .iter()
            .enumerate()
            .filter(move |(i, e)| *i < dropped || pruned.contains(&e.seq))
            .map(|(_, e)| e)
    }
}

/// The [`PrunePlan`] of `events` (one org's, in chain order) at `now`.
pub fn prune_plan(events: &[Event], now: Millis, default_days: u32) -> PrunePlan {
    let expired = |e: &Event| retention_end(e, default_days) < now;
    let dropped = events
        .iter()
        .take_while(|e| e.body_hash.is_none() && expired(e))
        .count();
    let cut = if dropped == 0 {
        None
    } else {
        match events.get(dropped) {
            Some(first) => Some(Anchor {
                seq: first.seq,
                prev_hash: first.prev_hash.clone(),
            }),
            None => events.last().map(|last| Anchor {
                seq: last.seq + 1,
                prev_hash: last.hash.clone(),
            }),
        }
    };
    let tombstones = events
        .iter()
        .skip(dropped)
        .filter(|e| !e.pruned && expired(e))
        .filter_map(Event::tombstone)
        .collect();
    PrunePlan {
        tombstones,
        cut,
        dropped,
    }
}
