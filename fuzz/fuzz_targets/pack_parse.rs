//! Any bytes as a pack: parsing never panics, a pack that parses compiles, evaluates a request
//! without panicking, and round-trips through `render`.
#![no_main]

use keeptrusts_core::pack::{self, ParsedPack};
use keeptrusts_core::{ChatRequest, Engine, MemoryEscalations, Principal, RequestContext, Role, Stores};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(src) = std::str::from_utf8(data) else { return };
    let Ok(parsed) = pack::parse(src) else { return };
    let rendered = pack::render(&parsed.spec).expect("a parsed spec renders");
    let again = pack::parse(&rendered).expect("a rendered spec parses");
    assert_eq!(again.spec, parsed.spec);
    let engine = Engine::compile(ParsedPack { spec: parsed.spec, warnings: Vec::new() }).expect("a valid spec compiles");
    let store = MemoryEscalations::new();
    let stores = Stores::new(&store);
    let p = Principal::new("a@b.io", "legal", Role::Member);
    let r = ChatRequest::user("gpt-4o", "mail a@b.io, ssn 123-45-6789");
    let _ = engine.evaluate(&p, &r, &RequestContext::new("r", 0), &stores);
});
