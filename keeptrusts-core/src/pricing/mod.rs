//! Prices and cost estimates. Money is exact (`rust_decimal`); no float touches it.
//!
//! ## Token bounds
//! A reservation is an upper bound of the bill, whatever the provider's tokenizer. Input: a token
//! covers at least one byte of text (byte-level BPE tokenizers, as OpenAI's and Anthropic's are,
//! never produce an empty token), so the request's serialized JSON length bounds every billable
//! input it carries: messages, names, tool calls, tool schemas, response schemas. The JSON of each
//! message carries more than the provider's per-message overhead (`{"role":"user","content":""}`
//! is 28 bytes against 3 or 4 tokens), and 3 tokens are added for the reply priming. An image part
//! is not counted by its bytes (a URL is short, a data URL long) but as [`image_token_bound`]
//! tokens. Output: the reserved completion is `min(max_tokens or max_completion_tokens, the
//! model's output limit, wallets.default_max_output_tokens)` per choice, times `n`, and the
//! forwarded body carries that limit (see [`crate::exchange`]), so a provider that honours it
//! cannot bill more than was reserved.

use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::request::ChatRequest;

/// An ISO 4217 currency code (three uppercase ASCII letters), stored inline so money values copy
/// without allocating.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Currency([u8; 3]);

impl Currency {
    /// US dollars, the default.
    pub const USD: Currency = Currency(*b"USD");

    /// The code as text.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or("???")
    }
}

/// Text that is not three uppercase ASCII letters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an ISO 4217 currency code (three uppercase letters such as USD)")]
pub struct BadCurrency;

impl FromStr for Currency {
    type Err = BadCurrency;

    fn from_str(s: &str) -> Result<Self, BadCurrency> {
        match s.as_bytes() {
            [a, b, c] if [a, b, c].iter().all(|x| x.is_ascii_uppercase()) => {
                Ok(Currency([*a, *b, *c]))
            }
            _ => Err(BadCurrency),
        }
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Currency {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A model's price per million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Price {
    /// Price of 1M input (prompt) tokens.
    pub input_per_1m: Decimal,
    /// Price of 1M output (completion) tokens.
    pub output_per_1m: Decimal,
    /// ISO 4217 code.
    pub currency: Currency,
}

impl Price {
    /// Exact cost of a number of input and output tokens, or `None` on overflow.
    pub fn cost(&self, input_tokens: u64, output_tokens: u64) -> Option<Decimal> {
        let million = Decimal::from(1_000_000u32);
        let i = Decimal::from(input_tokens).checked_mul(self.input_per_1m)?;
        let o = Decimal::from(output_tokens).checked_mul(self.output_per_1m)?;
        i.checked_add(o)?.checked_div(million)
    }
}

/// One row of the built-in price table.
#[derive(Debug, Clone, Copy)]
pub struct Listed {
    /// Model name, or the prefix of dated snapshots (`claude-sonnet-4` matches `claude-sonnet-4-20250514`).
    pub model: &'static str,
    /// USD per 1M input tokens, as decimal text.
    pub input_per_1m: &'static str,
    /// USD per 1M output tokens, as decimal text.
    pub output_per_1m: &'static str,
    /// Largest completion the model returns.
    pub max_output_tokens: u32,
}

/// List prices (USD per 1M tokens) of current OpenAI and Anthropic models, as published by the
/// providers. Packs override them per target with `pricing:`.
pub const BUILTIN: &[Listed] = &[
    Listed {
        model: "gpt-4o-mini",
        input_per_1m: "0.15",
        output_per_1m: "0.60",
        max_output_tokens: 16_384,
    },
    Listed {
        model: "gpt-4o",
        input_per_1m: "2.50",
        output_per_1m: "10.00",
        max_output_tokens: 16_384,
    },
    Listed {
        model: "gpt-4.1-nano",
        input_per_1m: "0.10",
        output_per_1m: "0.40",
        max_output_tokens: 32_768,
    },
    Listed {
        model: "gpt-4.1-mini",
        input_per_1m: "0.40",
        output_per_1m: "1.60",
        max_output_tokens: 32_768,
    },
    Listed {
        model: "gpt-4.1",
        input_per_1m: "2.00",
        output_per_1m: "8.00",
        max_output_tokens: 32_768,
    },
    Listed {
        model: "gpt-5-nano",
        input_per_1m: "0.05",
        output_per_1m: "0.40",
        max_output_tokens: 128_000,
    },
    Listed {
        model: "gpt-5-mini",
        input_per_1m: "0.25",
        output_per_1m: "2.00",
        max_output_tokens: 128_000,
    },
    Listed {
        model: "gpt-5",
        input_per_1m: "1.25",
        output_per_1m: "10.00",
        max_output_tokens: 128_000,
    },
    Listed {
        model: "o4-mini",
        input_per_1m: "1.10",
        output_per_1m: "4.40",
        max_output_tokens: 100_000,
    },
    Listed {
        model: "o3-mini",
        input_per_1m: "1.10",
        output_per_1m: "4.40",
        max_output_tokens: 100_000,
    },
    Listed {
        model: "o3",
        input_per_1m: "2.00",
        output_per_1m: "8.00",
        max_output_tokens: 100_000,
    },
    Listed {
        model: "o1",
        input_per_1m: "15.00",
        output_per_1m: "60.00",
        max_output_tokens: 100_000,
    },
    Listed {
        model: "gpt-3.5-turbo",
        input_per_1m: "0.50",
        output_per_1m: "1.50",
        max_output_tokens: 4_096,
    },
    // embedding models: input only (their output limit is 0: nothing is reserved for output)
    Listed {
        model: "text-embedding-3-small",
        input_per_1m: "0.02",
        output_per_1m: "0",
        max_output_tokens: 0,
    },
    Listed {
        model: "text-embedding-3-large",
        input_per_1m: "0.13",
        output_per_1m: "0",
        max_output_tokens: 0,
    },
    Listed {
        model: "text-embedding-ada-002",
        input_per_1m: "0.10",
        output_per_1m: "0",
        max_output_tokens: 0,
    },
    Listed {
        model: "claude-opus-4-1",
        input_per_1m: "15.00",
        output_per_1m: "75.00",
        max_output_tokens: 32_000,
    },
    Listed {
        model: "claude-opus-4",
        input_per_1m: "15.00",
        output_per_1m: "75.00",
        max_output_tokens: 32_000,
    },
    Listed {
        model: "claude-sonnet-4-5",
        input_per_1m: "3.00",
        output_per_1m: "15.00",
        max_output_tokens: 64_000,
    },
    Listed {
        model: "claude-sonnet-4",
        input_per_1m: "3.00",
        output_per_1m: "15.00",
        max_output_tokens: 64_000,
    },
    Listed {
        model: "claude-haiku-4-5",
        input_per_1m: "1.00",
        output_per_1m: "5.00",
        max_output_tokens: 64_000,
    },
    Listed {
        model: "claude-3-7-sonnet",
        input_per_1m: "3.00",
        output_per_1m: "15.00",
        max_output_tokens: 64_000,
    },
    Listed {
        model: "claude-3-5-sonnet",
        input_per_1m: "3.00",
        output_per_1m: "15.00",
        max_output_tokens: 8_192,
    },
    Listed {
        model: "claude-3-5-haiku",
        input_per_1m: "0.80",
        output_per_1m: "4.00",
        max_output_tokens: 8_192,
    },
    Listed {
        model: "claude-3-haiku",
        input_per_1m: "0.25",
        output_per_1m: "1.25",
        max_output_tokens: 4_096,
    },
];

/// The built-in row for `model`: an exact name, or the longest listed prefix followed by `-`
/// (dated snapshots such as `gpt-4o-2024-08-06`).
pub fn listed(model: &str) -> Option<&'static Listed> {
    BUILTIN
        .iter()
        .filter(|l| {
            model == l.model
                || model
                    .strip_prefix(l.model)
                    .is_some_and(|rest| rest.starts_with('-'))
        })
        .max_by_key(|l| l.model.len())
}

/// The built-in price of `model`, in USD.
pub fn builtin_price(model: &str) -> Option<(Price, u32)> {
    let l = listed(model)?;
    Some((
        Price {
            input_per_1m: l.input_per_1m.parse().ok()?,
            output_per_1m: l.output_per_1m.parse().ok()?,
            currency: Currency::USD,
        },
        l.max_output_tokens,
    ))
}

/// Counts the bytes written to it.
struct ByteCount(u64);

impl std::io::Write for ByteCount {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 = self.0.saturating_add(buf.len() as u64);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The JSON length of `v` (`u64::MAX` if it cannot be serialized: the bound errs high).
fn json_len<T: Serialize + ?Sized>(v: &T) -> u64 {
    let mut c = ByteCount(0);
    match serde_json::to_writer(&mut c, v) {
        Ok(()) => c.0,
        Err(_) => u64::MAX,
    }
}

/// Whether a content part is an image (`image_url`, `input_image`, `image`).
pub(crate) fn is_image(part: &crate::request::ContentPart) -> bool {
    matches!(part.kind.as_str(), "image_url" | "input_image" | "image")
}

/// Input tokens one image may bill on `model`: OpenAI's high-detail images cost at most 1,445
/// tokens on `gpt-4o` (a 768 x 2048 tile grid) and Anthropic's about 1,600; OpenAI's small models
/// multiply image tokens (`gpt-4o-mini` by 33.3: at most 48,169 tokens; the `-mini` and `-nano`
/// models of later families by 1.6 to 2.5).
pub fn image_token_bound(model: &str) -> u64 {
    if model.starts_with("gpt-4o-mini") {
        50_000
    } else if model.contains("-mini") || model.contains("-nano") {
        4_000
    } else {
        2_000
    }
}

/// An upper bound of the input tokens of a request (see the module docs).
pub fn estimate_input_tokens(request: &ChatRequest) -> u64 {
    input_tokens_on(request, request.model.as_deref().unwrap_or(""))
}

/// [`estimate_input_tokens`] of the request sent to `model`: its images at that model's bound,
/// and, when it names another model, both names counted (an upper bound either way).
pub fn input_tokens_on(request: &ChatRequest, model: &str) -> u64 {
    let (mut images, mut image_bytes) = (0u64, 0u64);
    for m in &request.messages {
        if let Some(crate::request::Content::Parts(parts)) = &m.content {
            for p in parts.iter().filter(|p| is_image(p)) {
                images += 1;
                image_bytes = image_bytes.saturating_add(json_len(p));
            }
        }
    }
    // sent to another model, the body names that one instead: count both names
    let other_name = if request.model.as_deref() == Some(model) {
        0
    } else {
        model.len() as u64
    };
    json_len(request)
        .saturating_add(other_name)
        .saturating_sub(image_bytes)
        .saturating_add(images.saturating_mul(image_token_bound(model)))
        .saturating_add(3)
}

/// The number of choices a request asks for (`n`, at least 1).
pub fn choices(request: &ChatRequest) -> u64 {
    request
        .extra
        .get("n")
        .and_then(serde_json::Value::as_u64)
        .unwrap_or(1)
        .max(1)
}

/// Output tokens reserved for one choice of a request: the client's limit (`max_tokens`,
/// `max_completion_tokens`, the smaller when both), the model's output limit and the pack's
/// default, whichever is smallest.
pub fn output_limit(request: &ChatRequest, model_limit: Option<u32>, default_max: u32) -> u32 {
    let mut n = default_max;
    let asked = request
        .extra
        .get("max_completion_tokens")
        .and_then(serde_json::Value::as_u64)
        .map(|v| u32::try_from(v).unwrap_or(u32::MAX));
    for m in [request.max_tokens, asked].into_iter().flatten() {
        n = n.min(m);
    }
    if let Some(l) = model_limit {
        n = n.min(l);
    }
    n
}

/// Output tokens reserved for a request: [`output_limit`] per choice, times `n`.
pub fn estimate_output_tokens(
    request: &ChatRequest,
    model_limit: Option<u32>,
    default_max: u32,
) -> u64 {
    u64::from(output_limit(request, model_limit, default_max)).saturating_mul(choices(request))
}

/// A cost estimate for one request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Estimate {
    /// The price used.
    pub price: Price,
    /// Upper bound of the input tokens.
    pub input_tokens: u64,
    /// Reserved output tokens (every choice).
    pub output_tokens: u64,
    /// `price.cost(input_tokens, output_tokens)`.
    pub amount: Decimal,
}

/// Provider-reported token usage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Usage {
    /// Prompt tokens.
    pub prompt_tokens: u64,
    /// Completion tokens.
    pub completion_tokens: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshots_resolve_to_the_longest_prefix() {
        assert_eq!(
            listed("gpt-4o-mini-2024-07-18").unwrap().model,
            "gpt-4o-mini"
        );
        assert_eq!(listed("gpt-4o-2024-08-06").unwrap().model, "gpt-4o");
        assert_eq!(
            listed("claude-sonnet-4-20250514").unwrap().model,
            "claude-sonnet-4"
        );
        assert_eq!(
            listed("claude-sonnet-4-5-20250929").unwrap().model,
            "claude-sonnet-4-5"
        );
        assert!(listed("gpt-4").is_none());
        assert!(listed("my-finetune").is_none());
    }

    #[test]
    fn cost_is_exact() {
        let (p, _) = builtin_price("gpt-4o-mini").unwrap();
        // 1000 input at $0.15/M + 500 output at $0.60/M = 0.00015 + 0.0003
        assert_eq!(
            p.cost(1000, 500).unwrap(),
            "0.00045".parse::<Decimal>().unwrap()
        );
    }

    #[test]
    fn estimates() {
        let mut r = ChatRequest::user("gpt-4o", "abcdefghi");
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(estimate_input_tokens(&r), json.len() as u64 + 3);
        // sent to another model: that model's name is counted as well
        assert_eq!(
            input_tokens_on(&r, "gpt-4o-mini"),
            json.len() as u64 + 11 + 3
        );
        assert_eq!(estimate_output_tokens(&r, Some(16_384), 1024), 1024);
        r.max_tokens = Some(100);
        assert_eq!(estimate_output_tokens(&r, Some(16_384), 1024), 100);
        assert_eq!(estimate_output_tokens(&r, Some(50), 1024), 50);
        r.extra.insert("n".into(), serde_json::json!(3));
        assert_eq!(estimate_output_tokens(&r, Some(16_384), 1024), 300);
        r.extra
            .insert("max_completion_tokens".into(), serde_json::json!(40));
        assert_eq!(output_limit(&r, Some(16_384), 1024), 40);
    }

    #[test]
    fn the_input_bound_covers_every_byte_and_images() {
        // a hostile prompt: one token per byte would still be covered
        let text = "\u{4e00}x!".repeat(300);
        let mut r = ChatRequest::user("gpt-4o", &text);
        assert!(estimate_input_tokens(&r) >= text.len() as u64);
        // tools are billed input: their schema counts
        let before = estimate_input_tokens(&r);
        r.extra.insert(
            "tools".into(),
            serde_json::json!([{"type": "function", "function": {"name": "lookup", "description": "x".repeat(500)}}]),
        );
        assert!(estimate_input_tokens(&r) >= before + 500);
        // an image counts its bound, not its URL's length
        let img: ChatRequest = serde_json::from_value(serde_json::json!({
            "model": "gpt-4o",
            "messages": [{"role": "user", "content": [
                {"type": "text", "text": "what is this"},
                {"type": "image_url", "image_url": {"url": "https://x.test/a.png"}}]}]
        }))
        .unwrap();
        assert!(estimate_input_tokens(&img) >= 2_000);
        assert!(estimate_input_tokens(&img) < 2_200);
    }
}
