//! Properties of the idempotency fingerprint's canonical form: the same JSON value written in
//! any key order, with any whitespace and any string escaping has one canonical text; two
//! different values never share it.

use std::collections::BTreeMap;
use std::fmt::Write;

use luna_http::canonical::canonicalize;
use luna_http::extract::fingerprint;
use proptest::prelude::*;

/// A JSON value as written: numbers keep their text.
#[derive(Debug, Clone, PartialEq)]
enum J {
    Null,
    Bool(bool),
    Num(String),
    Str(String),
    Arr(Vec<J>),
    Obj(BTreeMap<String, J>),
}

fn number() -> impl Strategy<Value = String> {
    (
        any::<bool>(),
        prop_oneof![Just("0".to_owned()), "[1-9][0-9]{0,25}"],
        proptest::option::of("[0-9]{1,6}"),
        proptest::option::of(("[eE]", "[+-]?", "[0-9]{1,4}")),
    )
        .prop_map(|(neg, int, frac, exp)| {
            let mut s = String::new();
            if neg {
                s.push('-');
            }
            s.push_str(&int);
            if let Some(f) = frac {
                s.push('.');
                s.push_str(&f);
            }
            if let Some((e, sign, d)) = exp {
                s.push_str(&e);
                s.push_str(&sign);
                s.push_str(&d);
            }
            s
        })
}

fn json() -> impl Strategy<Value = J> {
    let leaf = prop_oneof![
        Just(J::Null),
        any::<bool>().prop_map(J::Bool),
        number().prop_map(J::Num),
        "\\PC{0,8}".prop_map(J::Str),
        "[\\x00-\\x1f\"\\\\a-z]{0,4}".prop_map(J::Str),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..5).prop_map(J::Arr),
            proptest::collection::btree_map("\\PC{0,6}", inner, 0..5).prop_map(J::Obj),
        ]
    })
}

/// Writes `s` as a JSON string, escaping each character one of several valid ways.
fn write_str(out: &mut String, s: &str, style: &mut impl Iterator<Item = u8>) {
    out.push('"');
    for c in s.chars() {
        let pick = style.next().unwrap_or(0) % 3;
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c if pick == 1 && (c as u32) < 0x10000 => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c if pick == 2 && (c as u32) >= 0x10000 => {
                let v = c as u32 - 0x10000;
                let _ = write!(
                    out,
                    "\\u{:04x}\\u{:04x}",
                    0xD800 + (v >> 10),
                    0xDC00 + (v & 0x3FF)
                );
            }
            '/' if pick == 1 => out.push_str("\\/"),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Writes a value with varying whitespace, member order and escaping.
fn write(out: &mut String, v: &J, style: &mut impl Iterator<Item = u8>) {
    let ws = |out: &mut String, style: &mut dyn Iterator<Item = u8>| {
        for _ in 0..style.next().unwrap_or(0) % 3 {
            out.push([' ', '\n', '\t', '\r'][usize::from(style.next().unwrap_or(0) % 4)]);
        }
    };
    ws(out, style);
    match v {
        J::Null => out.push_str("null"),
        J::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        J::Num(n) => out.push_str(n),
        J::Str(s) => write_str(out, s, style),
        J::Arr(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write(out, item, style);
            }
            out.push(']');
        }
        J::Obj(members) => {
            let mut members: Vec<(&String, &J)> = members.iter().collect();
            if style.next().unwrap_or(0) % 2 == 1 {
                members.reverse();
            }
            let rotate = usize::from(style.next().unwrap_or(0)) % members.len().max(1);
            members.rotate_left(rotate);
            out.push('{');
            for (i, (k, v)) in members.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                ws(out, style);
                write_str(out, k, style);
                ws(out, style);
                out.push(':');
                write(out, v, style);
            }
            out.push('}');
        }
    }
    ws(out, style);
}

fn text(v: &J, seed: &[u8]) -> String {
    let mut out = String::new();
    let mut style = seed.iter().copied().cycle();
    write(
        &mut out,
        &J::Obj(BTreeMap::from([("body".to_owned(), v.clone())])),
        &mut style,
    );
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn one_value_written_any_way_has_one_fingerprint(
        v in json(),
        a in proptest::collection::vec(any::<u8>(), 1..64),
        b in proptest::collection::vec(any::<u8>(), 1..64),
    ) {
        let (ta, tb) = (text(&v, &a), text(&v, &b));
        let ca = canonicalize(ta.as_bytes()).expect("valid JSON");
        let cb = canonicalize(tb.as_bytes()).expect("valid JSON");
        prop_assert_eq!(&ca, &cb, "{} vs {}", ta, tb);
        prop_assert_eq!(fingerprint("consume", &ca), fingerprint("consume", &cb));
    }

    #[test]
    fn different_values_never_share_a_fingerprint(
        v in json(),
        w in json(),
        seed in proptest::collection::vec(any::<u8>(), 1..64),
    ) {
        prop_assume!(v != w);
        let cv = canonicalize(text(&v, &seed).as_bytes()).expect("valid JSON");
        let cw = canonicalize(text(&w, &seed).as_bytes()).expect("valid JSON");
        prop_assert_ne!(fingerprint("consume", &cv), fingerprint("consume", &cw));
    }

    #[test]
    fn the_route_enters_the_fingerprint(v in json(), seed in proptest::collection::vec(any::<u8>(), 1..8)) {
        let c = canonicalize(text(&v, &seed).as_bytes()).expect("valid JSON");
        prop_assert_ne!(fingerprint("consume", &c), fingerprint("reserve", &c));
    }
}
