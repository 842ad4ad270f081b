//! What a policy kind is made of: [`Kind`], implemented on the kind's options type (how options
//! are read, checked, merged and compiled), and [`Policy`], what they compile to (how a request
//! or an answer is evaluated). `kinds!` turns the registration table in `policy/mod.rs` (one
//! line per kind) into [`PolicyKind`](super::PolicyKind), [`KindOptions`](super::KindOptions),
//! [`PolicyOptions`](super::PolicyOptions) and the dispatch the pack parser, the validator, the
//! targeting and the engine use; none of them names a kind.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::decision::{AuditStamp, Verdict};
use crate::detect::Detector;
use crate::escalation::EscalationStore;
use crate::identity::Principal;
use crate::pack::yaml::Seg;
use crate::redact::Redactor;
use crate::request::{ChatRequest, ChatResponse};
use crate::time::Millis;

/// What happens when a policy itself fails (an internal error, not a denial).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FailMode {
    /// Block the request (default for every kind).
    Closed,
    /// Let the request through with a diagnostic.
    Open,
}

impl FailMode {
    /// `fail_mode` as written, `closed` when absent.
    pub(crate) fn or_closed(m: Option<FailMode>) -> FailMode {
        m.unwrap_or(FailMode::Closed)
    }
}

/// A policy's verdict plus how the gateway should report it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Outcome {
    pub verdict: Verdict,
    pub status: u16,
    pub code: Option<&'static str>,
    pub reason: Option<String>,
    pub message: Option<String>,
    pub entities: BTreeMap<String, u32>,
    pub escalation_id: Option<String>,
    /// An approved escalation to consume (with this fingerprint) once the request goes through.
    pub consume: Option<String>,
}

impl Outcome {
    pub fn allow() -> Self {
        Outcome {
            verdict: Verdict::Allow,
            status: 200,
            code: None,
            reason: None,
            message: None,
            entities: BTreeMap::new(),
            escalation_id: None,
            consume: None,
        }
    }

    pub fn deny(
        verdict: Verdict,
        status: u16,
        code: &'static str,
        reason: &str,
        message: String,
    ) -> Self {
        Outcome {
            verdict,
            status,
            code: Some(code),
            reason: Some(reason.to_owned()),
            message: Some(message),
            entities: BTreeMap::new(),
            escalation_id: None,
            consume: None,
        }
    }
}

/// A policy failed to evaluate (a store error, …): failed closed or open per `fail_mode`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PolicyFailure {
    pub code: &'static str,
    pub message: String,
}

/// What a policy sees of a request besides its body.
pub(crate) struct Inputs<'a> {
    pub principal: &'a Principal,
    pub request_id: &'a str,
    pub escalation_id: Option<&'a str>,
    pub now: Millis,
    pub store: &'a dyn EscalationStore,
}

/// What a streamed answer's filter needs of a policy: whether a finding blocks, the detector and
/// the redactor (shared, so a filter can outlive the borrow of the engine).
pub(crate) type StreamParts = (bool, Arc<dyn Detector>, Arc<Redactor>);

/// A compiled policy: what one chain entry does. Every method has a default that does nothing,
/// so a kind implements only the phases it takes part in.
pub(crate) trait Policy: fmt::Debug + Send + Sync {
    /// The input phase: `None` when the kind has nothing to say about requests; a rewrite goes
    /// into `request` (borrowed mutably only when needed).
    fn input(
        &self,
        request: &mut Cow<'_, ChatRequest>,
        inputs: &Inputs<'_>,
    ) -> Option<Result<Outcome, PolicyFailure>> {
        let _ = (request, inputs);
        None
    }

    /// The output phase (a whole answer): `None` when the kind does not govern answers.
    fn output(&self, response: &mut Cow<'_, ChatResponse>) -> Option<Outcome> {
        let _ = response;
        None
    }

    /// The output phase of a streamed answer, when the kind governs answers.
    fn stream(&self) -> Option<StreamParts> {
        None
    }

    /// Whether the principal may use `model` (every routing candidate is asked).
    fn allows_model(&self, principal: &Principal, model: &str) -> bool {
        let _ = (principal, model);
        true
    }

    /// The audit settings this policy stamps on the decision's event.
    fn audit(&self) -> Option<AuditStamp> {
        None
    }
}

/// Where a kind reports what is wrong with its options, relative to where they are written
/// (`policy.<kind>` or a chain entry); the validator turns each report into a diagnostic at the
/// key's line and column.
pub(crate) trait Checks {
    /// An error at the key `at` below the options (`[K("detect_patterns"), I(2), K("name")]`),
    /// with `msg` and a suggestion (`hint`) to show, if any.
    fn error(&mut self, code: &'static str, at: &[Seg<'_>], msg: String, hint: Option<String>);

    /// A warning about the whole chain entry the options belong to.
    fn entry_warning(&mut self, code: &'static str, message: String);
}

/// Reads one kind's options from where they are written (the pack parser's YAML node).
pub(crate) trait OptionsReader {
    /// What a failed read reports.
    type Error;

    /// The options, `T::default()` for an empty block.
    fn read<T: Kind>(self) -> Result<T, Self::Error>;
}

/// A policy kind, implemented on its options type.
pub(crate) trait Kind:
    Clone + Default + fmt::Debug + PartialEq + Serialize + DeserializeOwned
{
    /// Where the kind runs in an effective chain: 0 before every other kind (identity), 1 in
    /// the order written, 2 after the others (stamping).
    const RANK: u8 = 1;

    /// Whether an entry that can never run (an earlier entry of the kind already applies to
    /// everyone it targets) is warned about (`W001`).
    const WARN_SHADOWED: bool = true;

    /// The options' `fail_mode`.
    fn fail_mode(&self) -> Option<FailMode>;

    /// These options (a `policy.<kind>` block) with every option an inline entry sets taken
    /// from `inline`.
    #[must_use]
    fn overlay(self, inline: &Self) -> Self;

    /// Errors in the options as written; `base` is the `policy.<kind>` block that inline
    /// options override.
    fn check(&self, base: Option<&Self>, checks: &mut dyn Checks) {
        let _ = (base, checks);
    }

    /// Warnings about a chain entry whose merged options are `merged` (`None`: it has none).
    fn check_entry(merged: Option<&Self>, checks: &mut dyn Checks) {
        let _ = (merged, checks);
    }

    /// The compiled policy (`key`: the secret of the `hash` marker format).
    ///
    /// # Errors
    /// What cannot be compiled, in words.
    fn compile(merged: Option<&Self>, key: &[u8; 32]) -> Result<Box<dyn Policy>, String>;
}

/// `base` with every field that `inline` sets taken from `inline`, for an options struct whose
/// fields are all `Option`s. The struct is destructured without `..`: a field added to it and not
/// listed here fails to compile.
macro_rules! overlay {
    ($ty:ident { $($field:ident),* $(,)? }, $base:expr, $inline:expr) => {{
        let $ty { $($field),* } = $inline.clone();
        let base = $base;
        $ty { $($field: $field.or(base.$field)),* }
    }};
}

/// The registration table: `Variant(OptionsVariant: OptionsType) module = "yaml-name";`, one
/// line per kind (its doc comment above it), in the order kinds are listed everywhere.
macro_rules! kinds {
    ($( $(#[$doc:meta])* $kind:ident($variant:ident: $opts:ident) $module:ident = $name:literal; )+) => {
        $( pub mod $module; )+
        $( pub use self::$module::$opts; )+

        const KIND_COUNT: usize = [$($name),+].len();

        /// The built-in policy kinds, one module of `policy/` each.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        pub enum PolicyKind {
            $( $(#[$doc])* #[serde(rename = $name)] $kind, )+
        }

        impl PolicyKind {
            /// Every kind, in a stable order.
            pub const ALL: [PolicyKind; KIND_COUNT] = [$(PolicyKind::$kind),+];

            /// Every kind's YAML name.
            pub const NAMES: [&'static str; KIND_COUNT] = [$($name),+];

            /// The YAML name.
            pub fn as_str(self) -> &'static str {
                match self {
                    $( PolicyKind::$kind => $name, )+
                }
            }

            /// Where the kind runs in an effective chain ([`Kind::RANK`]).
            pub(crate) fn rank(self) -> u8 {
                match self {
                    $( PolicyKind::$kind => <$opts as Kind>::RANK, )+
                }
            }

            /// Whether an entry that can never run is warned about ([`Kind::WARN_SHADOWED`]).
            pub(crate) fn warns_shadowed(self) -> bool {
                match self {
                    $( PolicyKind::$kind => <$opts as Kind>::WARN_SHADOWED, )+
                }
            }

            /// Reads this kind's options.
            pub(crate) fn read_options<R: OptionsReader>(
                self,
                reader: R,
            ) -> Result<KindOptions, R::Error> {
                match self {
                    $( PolicyKind::$kind => reader.read::<$opts>().map(KindOptions::$variant), )+
                }
            }

            /// Warnings about a chain entry of this kind ([`Kind::check_entry`]).
            pub(crate) fn check_entry(self, merged: Option<&KindOptions>, checks: &mut dyn Checks) {
                match self {
                    $( PolicyKind::$kind => <$opts as Kind>::check_entry(
                        match merged {
                            Some(KindOptions::$variant(o)) => Some(o),
                            _ => None,
                        },
                        checks,
                    ), )+
                }
            }

            /// Compiles an entry of this kind from its merged options.
            pub(crate) fn compile(
                self,
                merged: Option<&KindOptions>,
                key: &[u8; 32],
            ) -> Result<Box<dyn Policy>, String> {
                match self {
                    $( PolicyKind::$kind => <$opts as Kind>::compile(
                        match merged {
                            Some(KindOptions::$variant(o)) => Some(o),
                            _ => None,
                        },
                        key,
                    ), )+
                }
            }
        }

        /// Options of one kind, as written under `policy.<kind>` or inline in a chain entry.
        #[derive(Debug, Clone, PartialEq, Serialize)]
        #[serde(untagged)]
        pub enum KindOptions {
            $( #[doc = concat!("`", $name, "`")] $variant($opts), )+
        }

        impl KindOptions {
            /// The kind these options belong to.
            pub fn kind(&self) -> PolicyKind {
                match self {
                    $( KindOptions::$variant(_) => PolicyKind::$kind, )+
                }
            }

            /// The options' `fail_mode`.
            pub(crate) fn fail_mode(&self) -> Option<FailMode> {
                match self {
                    $( KindOptions::$variant(o) => o.fail_mode(), )+
                }
            }

            /// Field-wise merge of `inline` over these options (the `policy.<kind>` block);
            /// options of another kind replace them.
            #[must_use]
            pub(crate) fn overlay(self, inline: KindOptions) -> KindOptions {
                match (self, inline) {
                    $( (KindOptions::$variant(b), KindOptions::$variant(i)) => {
                        KindOptions::$variant(b.overlay(&i))
                    } )+
                    #[allow(unreachable_patterns)]
                    (_, i) => i,
                }
            }

            /// Errors in the options as written ([`Kind::check`]).
            pub(crate) fn check(&self, base: Option<&KindOptions>, checks: &mut dyn Checks) {
                match self {
                    $( KindOptions::$variant(o) => o.check(
                        match base {
                            Some(KindOptions::$variant(b)) => Some(b),
                            _ => None,
                        },
                        checks,
                    ), )+
                }
            }
        }

        /// `policy:` — options per kind, shared by every chain entry of that kind.
        #[derive(Debug, Clone, PartialEq, Default, Serialize)]
        pub struct PolicyOptions {
            $(
                #[doc = concat!("`policy.", $name, "`")]
                #[serde(rename = $name, skip_serializing_if = "Option::is_none")]
                pub $module: Option<$opts>,
            )+
        }

        impl PolicyOptions {
            /// Whether no kind has options.
            pub fn is_empty(&self) -> bool {
                true $( && self.$module.is_none() )+
            }

            /// The options block for `kind`, if any.
            pub fn get(&self, kind: PolicyKind) -> Option<KindOptions> {
                match kind {
                    $( PolicyKind::$kind => self.$module.clone().map(KindOptions::$variant), )+
                }
            }

            pub(crate) fn set(&mut self, options: KindOptions) {
                match options {
                    $( KindOptions::$variant(o) => self.$module = Some(o), )+
                }
            }
        }
    };
}
