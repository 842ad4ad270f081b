//! OpenAI's embeddings API (`POST /v1/embeddings`) over the one lifecycle: each input string is
//! a user message of the governed request, so the team's detectors scan (and redact or block)
//! every input, the reservation covers the input tokens at the embedding model's input price
//! (no output is reserved: the request's output limit is 0), and the answer settles on the
//! provider's `usage.prompt_tokens`. Inputs given as token arrays are refused
//! (`unsupported_input`): no detector can read them.

use keeptrusts_core::request::{ChatRequest, Content};
use serde_json::{json, Map, Value};

use super::Unsupported;

const KNOWN: &[&str] = &["model", "input", "encoding_format", "dimensions", "user"];

/// The chat completion request that stands for an embeddings request.
///
/// # Errors
/// A missing or token-array `input`, an unknown field.
pub fn to_chat(v: &Value) -> Result<Value, Unsupported> {
    Unsupported::unknown_field(v, KNOWN, "embeddings API")?;
    let tokens = || {
        Unsupported::new(
            "unsupported_input",
            "`input` given as token ids cannot be read by the team's detectors: send text",
        )
    };
    let inputs: Vec<&str> = match v.get("input") {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(a)) if !a.is_empty() => {
            let mut out = Vec::with_capacity(a.len());
            for (i, x) in a.iter().enumerate() {
                match x {
                    Value::String(s) => out.push(s.as_str()),
                    Value::Number(_) | Value::Array(_) => return Err(tokens()),
                    _ => return Err(Unsupported::invalid(format!("input[{i}] must be a string"))),
                }
            }
            out
        }
        _ => {
            return Err(Unsupported::invalid(
                "`input` is required: a string or a non-empty list of strings",
            ))
        }
    };
    if let Some(f) = v.get("encoding_format").filter(|f| !f.is_null()) {
        if f != "float" && f != "base64" {
            return Err(Unsupported::invalid(
                "`encoding_format` must be `float` or `base64`",
            ));
        }
    }
    let messages: Vec<Value> = inputs
        .iter()
        .map(|t| json!({"role": "user", "content": t}))
        .collect();
    let mut chat = Map::new();
    if let Some(m) = v.get("model") {
        chat.insert("model".into(), m.clone());
    }
    chat.insert("messages".into(), messages.into());
    // an embedding produces no output tokens: none is reserved
    chat.insert("max_tokens".into(), 0.into());
    if let Some(u) = v.get("user").filter(|u| !u.is_null()) {
        chat.insert("user".into(), u.clone());
    }
    Ok(Value::Object(chat))
}

/// The governed inputs (redacted where a detector redacted), in order.
pub fn inputs(governed: &ChatRequest) -> Vec<String> {
    governed
        .messages
        .iter()
        .map(|m| match &m.content {
            Some(Content::Text(t)) => t.clone(),
            Some(Content::Parts(p)) => p.iter().filter_map(|x| x.text.clone()).collect(),
            None => String::new(),
        })
        .collect()
}

/// The body sent to an OpenAI-style provider: the client's request with the governed inputs
/// and the target's model.
pub fn upstream_body(governed: &ChatRequest, original: &Value, model: &str) -> Value {
    let inputs = inputs(governed);
    let input = match (original.get("input"), inputs.as_slice()) {
        (Some(Value::String(_)), [one]) => json!(one),
        _ => json!(inputs),
    };
    let mut body = Map::new();
    body.insert("model".into(), model.into());
    body.insert("input".into(), input);
    for k in ["encoding_format", "dimensions", "user"] {
        if let Some(x) = original.get(k).filter(|x| !x.is_null()) {
            body.insert(k.into(), x.clone());
        }
    }
    if let Some(u) = governed.extra.get("user") {
        body.insert("user".into(), u.clone());
    }
    Value::Object(body)
}

/// The provider's input tokens (`usage.prompt_tokens`), when it reported them.
pub fn prompt_tokens(answer: &Value) -> Option<u64> {
    answer
        .pointer("/usage/prompt_tokens")
        .and_then(Value::as_u64)
}

/// The answer the client gets: the provider's vectors, with the usage that was settled.
///
/// # Errors
/// The provider's answer has no `data` list, or not one embedding per input (`inputs`): a
/// client would pair its texts with the wrong vectors.
pub fn answer(
    upstream: &Value,
    model: &str,
    inputs: usize,
    prompt_tokens: u64,
) -> Result<Value, String> {
    let data = upstream
        .get("data")
        .and_then(Value::as_array)
        .ok_or("the provider's answer has no `data` list of embeddings")?;
    if data.len() != inputs {
        return Err(format!(
            "the provider answered {} embedding(s) for {inputs} input(s)",
            data.len()
        ));
    }
    Ok(json!({"object": "list", "data": data,
        "model": upstream.get("model").and_then(Value::as_str).unwrap_or(model),
        "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens}}))
}

/// The mock provider's embedding of `text`: `dimensions` (default 8) numbers in [-1, 1) drawn
/// from the text's bytes, so the same text always has the same vector.
pub fn mock_vector(text: &str, dimensions: usize) -> Vec<f32> {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    (0..dimensions)
        .map(|_| {
            h ^= h << 13;
            h ^= h >> 7;
            h ^= h << 17;
            // 24 bits of the state, scaled into [-1, 1)
            let x = u32::try_from(h >> 40).unwrap_or(0);
            (f64::from(x) / f64::from(1u32 << 23) - 1.0) as f32
        })
        .collect()
}

/// A vector as the API writes it: a list of numbers, or base64 of little-endian `f32`s.
pub fn encode(vector: &[f32], base64: bool) -> Value {
    if !base64 {
        return json!(vector);
    }
    let bytes: Vec<u8> = vector.iter().flat_map(|f| f.to_le_bytes()).collect();
    Value::String(base64_encode(&bytes))
}

fn base64_encode(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk.first().copied().unwrap_or(0),
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for k in 0..4 {
            if k <= chunk.len() {
                let i = usize::try_from((n >> (18 - 6 * k)) & 63).unwrap_or(0);
                out.push(ALPHABET.get(i).map_or('=', |c| char::from(*c)));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_become_messages_and_token_arrays_are_refused() {
        let c = to_chat(&json!({"model": "e", "input": ["a", "b"]})).unwrap();
        assert_eq!(c["messages"][1], json!({"role": "user", "content": "b"}));
        assert_eq!(c["max_tokens"], 0);
        for v in [json!({"input": [1, 2]}), json!({"input": [[1, 2]]})] {
            assert_eq!(to_chat(&v).unwrap_err().code, "unsupported_input");
        }
        assert_eq!(
            to_chat(&json!({"input": []})).unwrap_err().code,
            "invalid_request"
        );
        assert_eq!(
            to_chat(&json!({"input": "x", "encoding_format": "int8"}))
                .unwrap_err()
                .code,
            "invalid_request"
        );
    }

    #[test]
    fn the_upstream_body_carries_the_governed_inputs_in_the_clients_shape() {
        let original = json!({"model": "e", "input": "mail a@b.c", "dimensions": 4});
        let mut r: ChatRequest = serde_json::from_value(to_chat(&original).unwrap()).unwrap();
        r.messages[0].content = Some(Content::Text("mail [EMAIL]".into()));
        let b = upstream_body(&r, &original, "text-embedding-3-small");
        assert_eq!(
            b,
            json!({"model": "text-embedding-3-small", "input": "mail [EMAIL]", "dimensions": 4})
        );
    }

    #[test]
    fn base64_is_little_endian_f32() {
        assert_eq!(encode(&[1.0], true), json!("AACAPw=="));
        assert_eq!(base64_encode(b"ab"), "YWI=");
        let v = mock_vector("x", 8);
        assert_eq!(v, mock_vector("x", 8));
        assert!(v.iter().all(|x| (-1.0..1.0).contains(x)));
    }
}
