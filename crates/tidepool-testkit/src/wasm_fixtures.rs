//! The WASM modules the scenarios and tests run: WAT sources under
//! `fixtures/wasm/`, distinct variants of the extractor, and a generated module
//! large enough that compiling it costs tens of milliseconds.

use std::fmt::Write;

use tidepool_pools::{Error, Result, WasmFault};

fn parse(name: &str, text: &str) -> Result<Vec<u8>> {
    wat::parse_str(text).map_err(|e| Error::Wasm {
        module: name.to_owned(),
        fault: WasmFault::Compile,
        message: format!("WAT: {e}"),
    })
}

/// The link-counting extractor (`fixtures/wasm/extractor.wat`): exports
/// `memory`, `alloc(len) -> ptr` and `count_links(ptr, len) -> i32`.
pub fn extractor() -> Result<Vec<u8>> {
    parse("extractor", include_str!("../fixtures/wasm/extractor.wat"))
}

/// Variant `n` of the extractor: the same behaviour plus an `id` export
/// returning `n`, so each variant has its own bytes (and cache entry).
pub fn extractor_variant(n: u32) -> Result<Vec<u8>> {
    let text = include_str!("../fixtures/wasm/extractor.wat");
    let body = text.trim_end().strip_suffix(')').unwrap_or(text);
    parse(
        &format!("extractor-{n}"),
        &format!("{body}\n  (func (export \"id\") (result i32) (i32.const {n}))\n)\n"),
    )
}

/// Variant `n` of the extractor whose `id` export traps (`unreachable`): an
/// extractor that fails on every call, for the fault counters.
pub fn trapping_variant(n: u32) -> Result<Vec<u8>> {
    let text = include_str!("../fixtures/wasm/extractor.wat");
    let body = text.trim_end().strip_suffix(')').unwrap_or(text);
    parse(
        &format!("trapping-extractor-{n}"),
        &format!("{body}\n  (func (export \"id\") (result i32) unreachable)\n)\n"),
    )
}

/// A guest that loops forever (`spin`).
pub fn spin() -> Result<Vec<u8>> {
    parse("spin", include_str!("../fixtures/wasm/spin.wat"))
}

/// A guest that grows its memory without end (`grow`).
pub fn grow() -> Result<Vec<u8>> {
    parse("grow", include_str!("../fixtures/wasm/grow.wat"))
}

/// A module of `functions` functions with branches and arithmetic, exported
/// through a dispatcher, whose compile time grows with `functions`.
pub fn generated(functions: u32) -> Result<Vec<u8>> {
    let mut w = String::from("(module\n");
    for i in 0..functions {
        let _ = write!(
            w,
            "(func $f{i} (param $x i32) (result i32) (local $y i32)
  (local.set $y (i32.mul (local.get $x) (i32.const {a})))
  (if (i32.gt_s (local.get $y) (i32.const {b}))
    (then (local.set $y (i32.xor (local.get $y) (i32.const {c}))))
    (else (local.set $y (i32.add (i32.rotl (local.get $y) (i32.const 5)) (i32.const {d})))))
  (block $out (loop $l
    (br_if $out (i32.ge_u (local.get $x) (i32.const 4)))
    (local.set $y (i32.add (local.get $y) (i32.shr_u (local.get $y) (i32.const 3))))
    (local.set $x (i32.add (local.get $x) (i32.const 1)))
    (br $l)))
  (i32.sub (local.get $y) (i32.and (local.get $x) (i32.const {e}))))\n",
            a = i * 7 + 3,
            b = i * 13,
            c = i ^ 0x5a5a,
            d = i + 11,
            e = i % 255
        );
    }
    w += "(table ";
    let _ = write!(w, "{functions} funcref)\n(elem (i32.const 0)");
    for i in 0..functions {
        let _ = write!(w, " $f{i}");
    }
    w += ")\n(type $t (func (param i32) (result i32)))\n";
    w += "(func (export \"call\") (param $i i32) (param $x i32) (result i32)\n  (call_indirect (type $t) (local.get $x) (local.get $i)))\n)\n";
    parse(&format!("generated-{functions}"), &w)
}
