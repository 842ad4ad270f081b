//! Verifying a chain: every link and hash, the anchor after pruning, the head kept elsewhere.

use super::*;

/// Where a verified chain starts after pruning.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Anchor {
    /// Sequence number of the first kept event.
    pub seq: u64,
    /// Its `prev_hash`.
    pub prev_hash: String,
}

/// The last event of an org's chain, as the store records it apart from the events (and as an
/// operator may keep it elsewhere: `kt events head`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Head {
    /// Its sequence number.
    pub seq: u64,
    /// Its hash.
    pub hash: String,
}

impl std::fmt::Display for Head {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.seq, self.hash)
    }
}

impl std::str::FromStr for Head {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("`{s}`: expected SEQ:HASH, as `kt events head` prints it");
        let (seq, hash) = s.trim().split_once(':').ok_or_else(bad)?;
        let seq = seq.parse().map_err(|_| bad())?;
        if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad());
        }
        Ok(Head {
            seq,
            hash: hash.to_ascii_lowercase(),
        })
    }
}

/// An org's chain as read in one snapshot: its events, the anchor left by pruning, and the head
/// the store recorded.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chain {
    /// The events, in chain order.
    pub events: Vec<Event>,
    /// Where the kept chain starts, after a prefix was pruned.
    pub anchor: Option<Anchor>,
    /// The last event appended, as recorded with each append.
    pub head: Option<Head>,
}

impl Chain {
    /// The newest events of a chain (`events`, in chain order) as a chain of their own, anchored
    /// at the first of them unless that is where the kept chain starts, so [`verify_chain`]
    /// checks their hashes and links and that the last is the recorded head: what a gateway
    /// checks when it starts, without reading the whole chain.
    pub fn tail(events: Vec<Event>, anchor: Option<Anchor>, head: Option<Head>) -> Chain {
        let start = anchor.as_ref().map_or(0, |a| a.seq);
        let anchor = match events.first() {
            Some(first) if first.seq > start => Some(Anchor {
                seq: first.seq,
                prev_hash: first.prev_hash.clone(),
            }),
            _ => anchor,
        };
        Chain {
            events,
            anchor,
            head,
        }
    }
}

/// What [`verify_chain`] checks beyond the links.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifyOptions {
    /// Now: a pruned event must be past its retention.
    pub now: Millis,
    /// The retention of events without an audit stamp, as pruning used it.
    pub default_days: u32,
    /// A head kept elsewhere: the chain must reach it, with that hash.
    pub expect_head: Option<Head>,
}

/// What a sound chain holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verified {
    /// Events stored.
    pub events: usize,
    /// Of which pruned (content removed at the end of its retention).
    pub pruned: usize,
    /// The last event.
    pub head: Option<Head>,
}

/// What [`verify`] found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize)]
pub enum Tamper {
    /// An event's content no longer matches its hash (edited).
    #[error("event at position {position} (seq {seq}) was modified")]
    Modified {
        /// Index in the list.
        position: usize,
        /// Its sequence number.
        seq: u64,
    },
    /// The sequence skips (an event was deleted) or goes backwards (reordered).
    #[error("sequence broken at position {position}: expected seq {expected}, found {found}")]
    Sequence {
        /// Index in the list.
        position: usize,
        /// The seq that should be there.
        expected: u64,
        /// The seq that is there.
        found: u64,
    },
    /// An event does not point at the hash of the one before it.
    #[error("link broken at position {position} (seq {seq})")]
    Link {
        /// Index in the list.
        position: usize,
        /// Its sequence number.
        seq: u64,
    },
    /// Events are missing at the end: the store recorded (or the operator kept) a later head.
    #[error("the chain ends at {last:?} but its head is seq {head}: newer events were removed")]
    Truncated {
        /// The head's seq.
        head: u64,
        /// The last event's seq (`None`: no event left).
        last: Option<u64>,
    },
    /// The event at the head's position is not the one the head names (rewritten).
    #[error("the event at seq {seq} is not the recorded head")]
    HeadMismatch {
        /// Its seq.
        seq: u64,
    },
    /// Events exist but the store recorded no head for them.
    #[error("the store has events but no recorded head")]
    HeadMissing,
    /// An event's content was removed before its retention ended.
    #[error("event at position {position} (seq {seq}) was pruned before its retention ended")]
    PrunedEarly {
        /// Index in the list.
        position: usize,
        /// Its sequence number.
        seq: u64,
    },
}

/// Verifies one org's events, in stored order, from `anchor` (genesis when `None`).
///
/// # Errors
/// The first break found, with its position.
pub fn verify(events: &[Event], anchor: Option<&Anchor>) -> Result<(), Tamper> {
    let (mut expected_seq, mut prev) = match anchor {
        Some(a) => (a.seq, a.prev_hash.clone()),
        None => (0, GENESIS.to_owned()),
    };
    for (position, e) in events.iter().enumerate() {
        if e.seq != expected_seq {
            return Err(Tamper::Sequence {
                position,
                expected: expected_seq,
                found: e.seq,
            });
        }
        if !e.intact() {
            return Err(Tamper::Modified {
                position,
                seq: e.seq,
            });
        }
        if e.prev_hash != prev {
            return Err(Tamper::Link {
                position,
                seq: e.seq,
            });
        }
        prev = e.hash.clone();
        expected_seq += 1;
    }
    Ok(())
}

/// Verifies an org's chain as read in one snapshot: the links and hashes ([`verify`]), that
/// every pruned event was past its retention, that nothing is missing at the end (the last event
/// is the head the store recorded), and that it reaches `expect_head` with that hash.
///
/// # Errors
/// The first break found.
pub fn verify_chain(chain: &Chain, opts: &VerifyOptions) -> Result<Verified, Tamper> {
    verify(&chain.events, chain.anchor.as_ref())?;
    for (position, e) in chain.events.iter().enumerate() {
        if e.pruned && retention_end(e, opts.default_days) >= opts.now {
            return Err(Tamper::PrunedEarly {
                position,
                seq: e.seq,
            });
        }
    }
    // the last event, or (everything pruned as a prefix) the one the anchor follows
    let last = match (chain.events.last(), &chain.anchor) {
        (Some(e), _) => Some(e.head()),
        (None, Some(a)) if a.seq > 0 => Some(Head {
            seq: a.seq - 1,
            hash: a.prev_hash.clone(),
        }),
        _ => None,
    };
    match (&chain.head, &last) {
        (None, None) => {}
        (None, Some(_)) => return Err(Tamper::HeadMissing),
        (Some(h), Some(l)) if h == l => {}
        (Some(h), l) if l.as_ref().is_none_or(|l| l.seq < h.seq) => {
            return Err(Tamper::Truncated {
                head: h.seq,
                last: l.as_ref().map(|l| l.seq),
            })
        }
        (Some(_), Some(l)) => return Err(Tamper::HeadMismatch { seq: l.seq }),
        (Some(_), None) => unreachable!("handled as truncated"),
    }
    if let Some(x) = &opts.expect_head {
        if last.as_ref().is_none_or(|l| l.seq < x.seq) {
            return Err(Tamper::Truncated {
                head: x.seq,
                last: last.as_ref().map(|l| l.seq),
            });
        }
        let at = chain.events.iter().find(|e| e.seq == x.seq);
        let hash = at.map(|e| e.hash.as_str()).or(match &last {
            Some(l) if l.seq == x.seq => Some(l.hash.as_str()),
            _ => None,
        });
        // an expected head older than a pruned prefix cannot be compared any more
        if hash.is_some_and(|h| h != x.hash) {
            return Err(Tamper::HeadMismatch { seq: x.seq });
        }
    }
    Ok(Verified {
        events: chain.events.len(),
        pruned: chain.events.iter().filter(|e| e.pruned).count(),
        head: last,
    })
}

/// What a host reports of a verification ([`check`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    /// Whether the chain is sound.
    pub valid: bool,
    /// Events stored.
    pub events: usize,
    /// Of which pruned.
    pub pruned: usize,
    /// The last event (when sound).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub head: Option<Head>,
    /// What is wrong, in words.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    /// What is wrong, as data.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tamper: Option<Tamper>,
}

/// Reads an org's chain in one snapshot and verifies it ([`verify_chain`]).
///
/// # Errors
/// A store failure (a broken chain is a report, not an error).
pub fn check(
    store: &dyn EventStore,
    org: &str,
    opts: &VerifyOptions,
) -> Result<VerifyReport, StoreError> {
    let chain = store.snapshot(org)?;
    let pruned = chain.events.iter().filter(|e| e.pruned).count();
    Ok(match verify_chain(&chain, opts) {
        Ok(v) => VerifyReport {
            valid: true,
            events: v.events,
            pruned: v.pruned,
            head: v.head,
            problem: None,
            tamper: None,
        },
        Err(t) => VerifyReport {
            valid: false,
            events: chain.events.len(),
            pruned,
            head: None,
            problem: Some(t.to_string()),
            tamper: Some(t),
        },
    })
}
