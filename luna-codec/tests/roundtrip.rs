//! Every stored shape decodes to what was encoded.

use luna_codec::{SCHEMA_VERSION, app_event, decode, decode_summary, encode, encode_summary};
use luna_core::{AppSource, EventType, Wallet};
use luna_testkit::contract::every_kind_history;
use luna_testkit::strategies::history;
use proptest::prelude::*;

#[test]
fn every_kind_of_event_round_trips() {
    for e in every_kind_history() {
        let enc = encode(&e.kind);
        assert_eq!(
            decode(&enc.event_type, enc.schema_version, &enc.payload).unwrap(),
            e.kind,
            "{}",
            enc.payload
        );
    }
}

#[test]
fn client_json_is_kept_verbatim() {
    let data = r#"{ "action" : "mirror_match", "context": {"target_role":"Dev", "n": 1.50e3, "k":{"z":1,"a":2}} }"#;
    let ev = app_event(
        EventType::parse("x.y").unwrap(),
        AppSource::parse("cv").unwrap(),
        data,
        Some("{\"b\":1, \"a\":2}"),
    )
    .unwrap();
    assert_eq!(ev.action.as_deref(), Some("mirror_match"));
    assert_eq!(ev.context.as_ref().unwrap().target_role(), Some("Dev"));
    let enc = encode(&luna_core::EventKind::AppEvent(ev));
    let luna_core::EventKind::AppEvent(back) = decode(&enc.event_type, 1, &enc.payload).unwrap()
    else {
        panic!()
    };
    assert_eq!(back.data.as_str(), data);
    assert_eq!(back.metadata.unwrap().as_str(), "{\"b\":1, \"a\":2}");
}

#[test]
fn an_unknown_schema_version_is_an_error_not_a_guess() {
    let e = &every_kind_history()[0];
    let enc = encode(&e.kind);
    assert!(decode(&enc.event_type, SCHEMA_VERSION + 1, &enc.payload).is_err());
    assert!(decode(&enc.event_type, 0, &enc.payload).is_err());
    assert!(decode("EnergyConsumed", 1, "{\"nope\":1}").is_err());
}

#[test]
fn revocations_stored_with_the_providers_event_type_still_decode_to_neutral_causes() {
    let v1 = r#"{"transaction_id":"00000000-0000-0000-0000-000000000001","payment_ref":"pi_1","energy":5,"reason":"charge.dispute.created"}"#;
    let luna_core::EventKind::PackRevoked(r) = decode("PackRevoked", 1, v1).unwrap() else {
        panic!("a revocation")
    };
    assert_eq!(r.cause, luna_core::RevocationCause::Disputed);
    let enc = encode(&luna_core::EventKind::PackRevoked(r.clone()));
    assert_eq!(enc.schema_version, SCHEMA_VERSION);
    assert!(
        enc.payload.contains("\"reason\":\"disputed\""),
        "{}",
        enc.payload
    );
    assert!(
        !enc.payload.contains("charge."),
        "no provider name is stored"
    );
    assert!(
        decode("PackRevoked", 2, v1).is_err(),
        "v2 stores neutral causes only"
    );
}

proptest! {
    #[test]
    fn decided_histories_and_their_summaries_round_trip(events in history(40)) {
        for e in &events {
            let enc = encode(&e.kind);
            prop_assert_eq!(&decode(&enc.event_type, enc.schema_version, &enc.payload).unwrap(), &e.kind);
        }
        let summary = Wallet::fold(&events).summary;
        prop_assert_eq!(decode_summary(&encode_summary(&summary)).unwrap(), summary);
    }
}
