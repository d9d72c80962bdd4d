//! The webhook signature agrees with Stripe's own: vectors produced by Stripe's official library
//! (PyPI `stripe` 16.1.0, `WebhookSignature.generate_signature_header`, verified by its
//! `verify_header`; see `vectors/make_vectors.py`) are accepted, and the same vectors with one
//! byte of the body, the timestamp or the signature changed are refused, as are the vectors
//! the library refuses.

use luna_adapters_stripe::verify_signature;
use luna_core::Timestamp;
use serde_json::Value;

fn vectors() -> Value {
    let text = include_str!("vectors/stripe-signature-vectors.json");
    serde_json::from_str(text).expect("the vectors file is JSON")
}

fn field<'a>(v: &'a Value, name: &str) -> &'a str {
    v[name].as_str().unwrap_or_else(|| panic!("{name} in {v}"))
}

#[test]
fn the_vectors_come_from_stripes_library() {
    let all = vectors();
    assert!(field(&all["generator"], "library").contains("stripe"));
    assert!(all["vectors"].as_array().is_some_and(|v| v.len() >= 5));
    assert!(
        all["invalid_vectors"]
            .as_array()
            .is_some_and(|v| v.len() >= 5)
    );
}

#[test]
fn every_vector_stripe_signs_is_accepted_and_any_one_byte_change_refused() {
    for v in vectors()["vectors"].as_array().expect("vectors") {
        let name = field(v, "name");
        let secret = field(v, "secret");
        let header = field(v, "header");
        let payload = field(v, "payload").as_bytes();
        let t = v["timestamp"].as_i64().expect("timestamp");
        let now = Timestamp::from_secs(t);
        assert_eq!(
            verify_signature(secret, header, payload, now),
            Ok(()),
            "{name}"
        );
        // One byte of the body, anywhere.
        for i in [0, payload.len() / 2, payload.len() - 1] {
            let mut altered = payload.to_vec();
            altered[i] ^= 0x01;
            assert!(
                verify_signature(secret, header, &altered, now).is_err(),
                "{name}: body byte {i}"
            );
        }
        // One hex digit of the matching signature.
        let good = field(v, "expected_v1");
        let flipped: String = good
            .char_indices()
            .map(|(i, c)| {
                if i == 10 {
                    if c == '0' { '1' } else { '0' }
                } else {
                    c
                }
            })
            .collect();
        let forged = header.replace(good, &flipped);
        assert!(
            verify_signature(secret, &forged, payload, now).is_err(),
            "{name}: signature"
        );
        // The right signature under another timestamp (the signed text changes).
        let shifted = format!("t={},v1={good}", t + 1);
        assert!(
            verify_signature(secret, &shifted, payload, Timestamp::from_secs(t + 1)).is_err(),
            "{name}: timestamp"
        );
        // Past the 300 s tolerance, either way.
        for off in [-301, 301] {
            assert!(
                verify_signature(secret, header, payload, Timestamp::from_secs(t + off)).is_err(),
                "{name}: {off} s"
            );
        }
    }
}

#[test]
fn every_vector_stripe_refuses_is_refused() {
    for v in vectors()["invalid_vectors"]
        .as_array()
        .expect("invalid vectors")
    {
        let name = field(v, "name");
        // `no_timestamp` has none: any time will do.
        let t = v["timestamp"].as_i64().unwrap_or(1_700_000_000);
        assert!(
            verify_signature(
                field(v, "secret"),
                field(v, "header"),
                field(v, "payload").as_bytes(),
                Timestamp::from_secs(t),
            )
            .is_err(),
            "{name} ({})",
            field(v, "library_error")
        );
    }
}
