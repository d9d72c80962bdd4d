//! Stripe's webhook signature and events. `Stripe-Signature: t=<unix>,v1=<hex>[,v1=<hex>…]`;
//! each `v1` is HMAC-SHA256 keyed with the whole endpoint secret over `"{t}.{raw body}"`; any
//! matching `v1` (compared in constant time) accepts, within 300 s of `t` either way.

use hmac::{Hmac, Mac};
use luna_core::Timestamp;
use luna_ports::{ProviderChange, ProviderEvent, WebhookError};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::objects;

/// How far the signature's timestamp may be from now, either way.
pub const TOLERANCE_SECONDS: i64 = 300;

/// The most `v1` signatures one header may carry (a bound on work per request).
const MAX_SIGNATURES: usize = 8;

fn mac(secret: &str, t: &str, body: &[u8]) -> Hmac<Sha256> {
    // HMAC accepts a key of any length: this cannot fail.
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    m.update(t.as_bytes());
    m.update(b".");
    m.update(body);
    m
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// Lowercase hex only: Stripe's libraries compare the hex text, so `v1=ABC…` never matches.
fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 || !s.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// A `Stripe-Signature` header for `body` at `t` (the fake Stripe and the tests sign with it).
pub fn sign(secret: &str, t: i64, body: &[u8]) -> String {
    let t = t.to_string();
    let v1 = hex(&mac(secret, &t, body).finalize().into_bytes());
    format!("t={t},v1={v1}")
}

/// Verifies a `Stripe-Signature` header over the raw body at `now`.
pub fn verify_signature(
    secret: &str,
    header: &str,
    body: &[u8],
    now: Timestamp,
) -> Result<(), WebhookError> {
    let mut t: Option<&str> = None;
    let mut signatures = Vec::new();
    for item in header.split(',') {
        let Some((k, v)) = item.trim().split_once('=') else {
            continue;
        };
        match k {
            "t" if t.is_none() => t = Some(v),
            "v1" if signatures.len() < MAX_SIGNATURES => signatures.push(v),
            _ => {}
        }
    }
    let t = t.ok_or(WebhookError::InvalidSignature)?;
    let at: i64 = t.parse().map_err(|_| WebhookError::InvalidSignature)?;
    let expected = mac(secret, t, body).finalize().into_bytes();
    let matched = signatures
        .iter()
        .filter_map(|s| unhex(s))
        .fold(subtle::Choice::from(0), |acc, s| {
            acc | s.as_slice().ct_eq(expected.as_slice())
        });
    if !bool::from(matched) {
        return Err(WebhookError::InvalidSignature);
    }
    if now.secs().abs_diff(at) > TOLERANCE_SECONDS.unsigned_abs() {
        return Err(WebhookError::InvalidSignature);
    }
    Ok(())
}

#[derive(Deserialize)]
struct Envelope {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    created: i64,
    data: Data,
}

#[derive(Deserialize)]
struct Data {
    object: serde_json::Value,
}

/// An invoice, before and after `2025-03-31.basil` (the subscription moved under `parent`).
#[derive(Deserialize)]
struct Invoice {
    subscription: Option<objects::Expandable>,
    parent: Option<InvoiceParent>,
    customer: Option<objects::Expandable>,
    lines: Option<objects::List<InvoiceLine>>,
}

#[derive(Deserialize)]
struct InvoiceParent {
    subscription_details: Option<SubscriptionDetails>,
}

#[derive(Deserialize)]
struct SubscriptionDetails {
    subscription: Option<objects::Expandable>,
}

#[derive(Deserialize)]
struct InvoiceLine {
    period: Option<Period>,
}

#[derive(Deserialize)]
struct Period {
    end: Option<i64>,
}

fn object<T: DeserializeOwned>(value: serde_json::Value, kind: &str) -> Result<T, WebhookError> {
    serde_json::from_value(value).map_err(|e| WebhookError::Unreadable(format!("{kind}: {e}")))
}

fn readable<T>(r: Result<T, luna_ports::GatewayError>, kind: &str) -> Result<T, WebhookError> {
    r.map_err(|e| WebhookError::Unreadable(format!("{kind}: {e}")))
}

/// Reads a verified event into what the hub acts on; types it does not act on are `Other`.
pub fn parse_event(body: &[u8]) -> Result<ProviderEvent, WebhookError> {
    let e: Envelope =
        serde_json::from_slice(body).map_err(|e| WebhookError::Unreadable(e.to_string()))?;
    let kind = e.kind.as_str();
    let what = match kind {
        "payment_intent.succeeded" => {
            let pi: objects::PaymentIntent = object(e.data.object, kind)?;
            ProviderChange::PaymentSucceeded(readable(pi.view(), kind)?)
        }
        "charge.refunded" => {
            let c: objects::Charge = object(e.data.object, kind)?;
            ProviderChange::Refunded(readable(c.view(), kind)?)
        }
        "charge.dispute.created" => {
            let d: objects::Dispute = object(e.data.object, kind)?;
            let (charge, payment) = readable(d.parts(), kind)?;
            ProviderChange::Disputed { charge, payment }
        }
        "checkout.session.completed" | "checkout.session.async_payment_succeeded" => {
            let s: objects::CheckoutSession = object(e.data.object, kind)?;
            ProviderChange::CheckoutCompleted(readable(s.view(), kind)?)
        }
        "customer.subscription.created"
        | "customer.subscription.updated"
        | "customer.subscription.deleted" => {
            let s: objects::Subscription = object(e.data.object, kind)?;
            ProviderChange::Subscription(readable(s.view(), kind)?)
        }
        "invoice.paid" => invoice_paid(object(e.data.object, kind)?),
        _ => ProviderChange::Other,
    };
    Ok(ProviderEvent {
        id: e.id,
        created: Timestamp::from_secs(e.created),
        kind: e.kind,
        what,
    })
}

fn invoice_paid(i: Invoice) -> ProviderChange {
    let subscription = i.subscription.or_else(|| {
        i.parent
            .and_then(|p| p.subscription_details)
            .and_then(|d| d.subscription)
    });
    let Some(subscription) = subscription else {
        // A one-off invoice: nothing to do with the plan.
        return ProviderChange::Other;
    };
    let period_end = i
        .lines
        .and_then(|l| l.data.into_iter().next())
        .and_then(|l| l.period)
        .and_then(|p| p.end)
        .map(Timestamp::from_secs);
    ProviderChange::InvoicePaid {
        subscription: subscription.into_id(),
        customer: i.customer.map(objects::Expandable::into_id),
        period_end,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_test";

    #[test]
    fn a_signed_body_verifies_and_any_change_is_refused() {
        let body = br#"{"id":"evt_1","type":"x","created":1,"data":{"object":{}}}"#;
        let now = Timestamp::from_secs(1_700_000_000);
        let h = sign(SECRET, now.secs(), body);
        assert_eq!(verify_signature(SECRET, &h, body, now), Ok(()));
        let mut altered = body.to_vec();
        altered[5] ^= 1;
        assert!(verify_signature(SECRET, &h, &altered, now).is_err());
        assert!(verify_signature("whsec_other", &h, body, now).is_err());
        let late = Timestamp::from_secs(now.secs() + TOLERANCE_SECONDS + 1);
        assert!(verify_signature(SECRET, &h, body, late).is_err());
        let early = Timestamp::from_secs(now.secs() - TOLERANCE_SECONDS - 1);
        assert!(verify_signature(SECRET, &h, body, early).is_err());
        let edge = Timestamp::from_secs(now.secs() + TOLERANCE_SECONDS);
        assert_eq!(verify_signature(SECRET, &h, body, edge), Ok(()));
    }

    #[test]
    fn one_good_v1_among_several_is_enough_and_garbage_is_refused() {
        let body = b"{}";
        let now = Timestamp::from_secs(1_700_000_000);
        let good = sign(SECRET, now.secs(), body);
        let v1 = good.split_once(",v1=").unwrap().1;
        let h = format!("t={},v1=00ff,v0=abc,v1={v1}", now.secs());
        assert_eq!(verify_signature(SECRET, &h, body, now), Ok(()));
        for bad in ["", "t=", "v1=abc", "t=x,v1=00", "garbage", "t=1700000000"] {
            assert!(verify_signature(SECRET, bad, body, now).is_err(), "{bad}");
        }
    }

    #[test]
    fn invoice_paid_reads_both_shapes() {
        let basil = br#"{"id":"evt_2","type":"invoice.paid","created":5,"data":{"object":{
            "id":"in_1","object":"invoice","customer":"cus_1",
            "parent":{"type":"subscription_details","subscription_details":{"subscription":"sub_9"}},
            "lines":{"object":"list","data":[{"period":{"start":1,"end":1900000000}}]}}}}"#;
        let e = parse_event(basil).unwrap();
        assert_eq!(
            e.what,
            ProviderChange::InvoicePaid {
                subscription: "sub_9".into(),
                customer: Some("cus_1".into()),
                period_end: Some(Timestamp::from_secs(1_900_000_000)),
            }
        );
        let old = br#"{"id":"evt_3","type":"invoice.paid","created":5,"data":{"object":{
            "id":"in_1","object":"invoice","customer":"cus_1","subscription":"sub_8",
            "lines":{"object":"list","data":[]}}}}"#;
        let ProviderChange::InvoicePaid { subscription, .. } = parse_event(old).unwrap().what
        else {
            panic!("not an invoice")
        };
        assert_eq!(subscription, "sub_8");
        let other = br#"{"id":"evt_4","type":"customer.created","created":5,"data":{"object":{}}}"#;
        assert_eq!(parse_event(other).unwrap().what, ProviderChange::Other);
    }
}
