//! Any sequence of wallet operations (allocate, reserve over a cascade, settle, release, expire,
//! time passing) on the core's `Ledger` against the reference model of
//! `keeptrusts-core/tests/support/wallet_reference.rs`: the ledger equals the model after every
//! step, money is conserved, settling twice charges once, reserved never goes below zero.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../keeptrusts-core/tests/support/wallet_reference.rs"]
#[allow(dead_code)]
mod reference;

use reference::Op;

/// Four bytes an operation.
fn decode(data: &[u8]) -> Vec<Op> {
    data.chunks_exact(4)
        .map(|c| {
            let (k, a, b, c) = (c[0], c[1], c[2], c[3]);
            let n = i64::from(u16::from_be_bytes([b, c]));
            match k % 6 {
                0 => Op::Allocate { wallet: usize::from(a % 3), micros: n * 100 + i64::from(a & 0x80 != 0), top_up: a & 0x80 != 0 },
                1 | 2 => Op::Reserve {
                    cascade: (0..3).filter(|i| a & (1 << i) != 0).collect(),
                    micros: n * 50,
                    ttl: 1 + i64::from(a >> 3) * 40,
                },
                3 => Op::Settle { lease: usize::from(a % 64), micros: n * 60 },
                4 => Op::Release { lease: usize::from(a % 64) },
                _ if a % 2 == 0 => Op::Expire,
                _ => Op::Advance { ms: 1 + i64::from(b) * 12 },
            }
        })
        .collect()
}

fuzz_target!(|data: &[u8]| {
    let ops = decode(data);
    if let Err(e) = reference::run(&ops) {
        panic!("the ledger left the reference model: {e}");
    }
});
