//! `kt scan` and `kt redact`: the detectors on stdin, for scripts and external scorers.

use std::io::{BufRead, Read, Write};

use clap::{Args, ValueEnum};
use keeptrusts_core::detect::builtin::BuiltinDetector;
use keeptrusts_core::detect::{offsets, resolve_overlaps, Detector, EntityType, OffsetUnit};
use keeptrusts_core::pack::spec::{MarkerFormat, RedactionOptions};
use keeptrusts_core::redact::{Redactor, StreamRedactor};

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Offsets {
    /// UTF-8 byte offsets
    Byte,
    /// Unicode scalar (character) offsets
    Char,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Format {
    Label,
    Mask,
    Hash,
    Partial,
}

/// Which entity types to look for.
#[derive(Debug, Args)]
pub struct EntityArgs {
    /// Comma-separated entity types as `kt scan` reports them (`EMAIL,US_SSN,…`); default: all of them.
    #[arg(long, value_delimiter = ',')]
    entities: Option<Vec<String>>,
}

#[derive(Debug, Args)]
pub struct ScanArgs {
    /// How `start` and `end` count.
    #[arg(long, value_enum, default_value = "byte")]
    offsets: Offsets,
    #[command(flatten)]
    entities: EntityArgs,
}

#[derive(Debug, Args)]
pub struct RedactArgs {
    /// Marker format.
    #[arg(long, value_enum, default_value = "label")]
    format: Format,
    /// Key for the `hash` format (any string; the same key gives the same digests).
    #[arg(long, env = "KT_HASH_KEY", default_value = "")]
    hash_key: String,
    #[command(flatten)]
    entities: EntityArgs,
}

fn detector(args: &EntityArgs) -> Result<BuiltinDetector, String> {
    let types = match &args.entities {
        None => BuiltinDetector::all_types(),
        Some(names) => names
            .iter()
            .map(|n| {
                serde_json::from_value::<EntityType>(serde_json::Value::String(n.trim().to_owned()))
                    .map_err(|_| format!("--entities: `{n}` is not an entity type (e.g. EMAIL, US_SSN; docs/detection.md lists them)"))
            })
            .collect::<Result<Vec<_>, _>>()?,
    };
    BuiltinDetector::new(&types, &[], &[]).map_err(|(_, e)| e)
}

/// Reads JSON lines `{"id", "text"}`; writes `{"id", "spans": [{"start", "end", "type"}]}`.
/// Exit status: 0, 2 if a line was not valid (reported on stderr with its line number; the
/// other lines are still answered), 1 on an I/O error.
/// A `kt scan` input line: the fields it reads (others are ignored).
#[derive(serde::Deserialize)]
struct Line<'a> {
    #[serde(default)]
    id: serde_json::Value,
    #[serde(borrow)]
    text: std::borrow::Cow<'a, str>,
}

/// One output line, `{"id":…,"spans":[{"end":…,"start":…,"type":"…"},…]}` (keys in the order
/// `serde_json` prints an object's), written straight to `out`: a PII-dense line has dozens of
/// spans, and building a `Value` for each cost more than finding them.
fn write_spans(
    out: &mut impl Write,
    id: &serde_json::Value,
    found: &[keeptrusts_core::detect::Finding],
    offsets: impl IntoIterator<Item = (usize, usize)>,
) -> std::io::Result<()> {
    out.write_all(b"{\"id\":")?;
    serde_json::to_writer(&mut *out, id)?;
    out.write_all(b",\"spans\":[")?;
    for (i, (f, (start, end))) in found.iter().zip(offsets).enumerate() {
        if i > 0 {
            out.write_all(b",")?;
        }
        write!(out, "{{\"end\":{end},\"start\":{start},\"type\":")?;
        serde_json::to_writer(&mut *out, f.entity.as_str())?;
        out.write_all(b"}")?;
    }
    out.write_all(b"]}\n")
}

/// Input read per batch: each batch's lines are split among the machine's cores and answered
/// in their order (memory stays bounded by a few batches).
const BATCH_BYTES: usize = 4 << 20;

pub fn scan(args: &ScanArgs) -> u8 {
    let d = match detector(&args.entities) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("kt scan: {e}");
            return 2;
        }
    };
    let unit = match args.offsets {
        Offsets::Byte => OffsetUnit::Byte,
        Offsets::Char => OffsetUnit::Char,
    };
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(8));
    let mut input = std::io::stdin().lock();
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut code = 0;
    let mut number = 0;
    loop {
        // a batch of lines, each with its number (from 1)
        let mut batch: Vec<(usize, Vec<u8>)> = Vec::new();
        let mut bytes = 0;
        while bytes < BATCH_BYTES {
            let mut line = Vec::new();
            match input.read_until(b'\n', &mut line) {
                Ok(0) => break,
                Ok(n) => bytes += n,
                Err(e) => {
                    eprintln!("kt scan: reading stdin: {e}");
                    return 1;
                }
            }
            number += 1;
            if line.last() == Some(&b'\n') {
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
            }
            batch.push((number, line));
        }
        if batch.is_empty() {
            break;
        }
        let per = batch.len().div_ceil(threads);
        let answers: Vec<(Vec<u8>, Vec<String>)> = if threads == 1 || batch.len() < 2 * threads {
            vec![answer(&batch, &d, unit)]
        } else {
            std::thread::scope(|s| {
                let workers: Vec<_> = batch
                    .chunks(per)
                    .map(|part| s.spawn(|| answer(part, &d, unit)))
                    .collect();
                workers
                    .into_iter()
                    .map(|w| w.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                    .collect()
            })
        };
        for (text, errors) in answers {
            for e in &errors {
                eprintln!("kt scan: {e}");
                code = 2;
            }
            if out.write_all(&text).is_err() {
                return 1;
            }
        }
    }
    if out.flush().is_err() {
        return 1;
    }
    code
}

/// `kt scan`'s answers to `lines` (numbered from 1), in their order: the output lines, and what
/// was wrong with each line that was not valid, with its number.
fn answer(
    lines: &[(usize, Vec<u8>)],
    d: &BuiltinDetector,
    unit: OffsetUnit,
) -> (Vec<u8>, Vec<String>) {
    let mut out = Vec::new();
    let mut errors = Vec::new();
    let mut found = Vec::new();
    for (n, line) in lines {
        let Ok(line) = std::str::from_utf8(line) else {
            errors.push(format!("line {n}: not UTF-8"));
            continue;
        };
        if line.trim().is_empty() {
            continue;
        }
        // the usual line, read without building a tree (its text borrowed where it has no
        // escapes); anything else is read as a `Value`, for the same errors as always
        let typed: Option<Line<'_>> = serde_json::from_str(line).ok();
        let v: serde_json::Value;
        let (id, text) = match &typed {
            Some(l) => (&l.id, &*l.text),
            None => {
                v = match serde_json::from_str(line) {
                    Ok(v) => v,
                    Err(e) => {
                        errors.push(format!("line {n}: {e}"));
                        continue;
                    }
                };
                let Some(text) = v.get("text").and_then(|t| t.as_str()) else {
                    errors.push(format!("line {n}: expected an object with a string `text`"));
                    continue;
                };
                (v.get("id").unwrap_or(&serde_json::Value::Null), text)
            }
        };
        found.clear();
        d.scan(text, &mut found);
        resolve_overlaps(&mut found);
        // writing to memory cannot fail
        let _ = write_spans(&mut out, id, &found, offsets(text, &found, unit));
    }
    (out, errors)
}

/// Reads text on stdin and writes it redacted, streaming (memory stays bounded).
/// Exit status: 0, 2 for invalid options or input that is not UTF-8, 1 on an I/O error.
pub fn redact(args: &RedactArgs) -> u8 {
    let d = match detector(&args.entities) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("kt redact: {e}");
            return 2;
        }
    };
    let options = RedactionOptions {
        marker_format: Some(match args.format {
            Format::Label => MarkerFormat::Label,
            Format::Mask => MarkerFormat::Mask,
            Format::Hash => MarkerFormat::Hash,
            Format::Partial => MarkerFormat::Partial,
        }),
        ..Default::default()
    };
    let key = keeptrusts_core::redact::key_from(&args.hash_key);
    let r = Redactor::new(Some(&options), Vec::new(), key);
    let mut stream = StreamRedactor::new(&d, &r);
    let mut input = std::io::stdin().lock();
    let mut out = std::io::stdout().lock();
    let mut buf = vec![0u8; 64 * 1024];
    let mut carry: Vec<u8> = Vec::new();
    let mut offset = 0usize;
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) => {
                eprintln!("kt redact: reading stdin: {e}");
                return 1;
            }
        };
        carry.extend_from_slice(buf.get(..n).unwrap_or(&[]));
        // hand over the longest valid UTF-8 prefix; keep an incomplete trailing character
        let valid = match std::str::from_utf8(&carry) {
            Ok(_) => carry.len(),
            Err(e) if e.error_len().is_none() => e.valid_up_to(),
            Err(e) => {
                eprintln!(
                    "kt redact: input is not UTF-8 (byte {})",
                    offset + e.valid_up_to()
                );
                return 2;
            }
        };
        let text = std::str::from_utf8(carry.get(..valid).unwrap_or(&[])).unwrap_or("");
        if out.write_all(stream.push(text).as_bytes()).is_err() {
            return 1;
        }
        offset += valid;
        carry.drain(..valid);
    }
    if !carry.is_empty() {
        eprintln!("kt redact: input is not UTF-8 (it ends inside a character, byte {offset})");
        return 2;
    }
    if out.write_all(stream.finish().as_bytes()).is_err() || out.flush().is_err() {
        return 1;
    }
    0
}
