#!/usr/bin/env python3
"""Generate Stripe webhook signature test vectors using Stripe's OFFICIAL Python library.

Pinned:  stripe==16.1.0   (PyPI; its stripe/_api_version.py says CURRENT = "2026-10-28.endive")
Rerun:   python3 -m venv venv && ./venv/bin/pip install 'stripe==16.1.0'
         ./venv/bin/python make_vectors.py            # writes stripe-signature-vectors.json

Library functions used (all in stripe/_webhook.py of stripe==16.1.0):
  * stripe.WebhookSignature.generate_signature_header(payload, secret, timestamp)
        -> "t={timestamp},v1={hex(HMAC_SHA256(secret_utf8, f'{timestamp}.{payload}'.utf8))}"
  * stripe.WebhookSignature._compute_signature(signed_payload, secret)   (the raw HMAC helper)
  * stripe.WebhookSignature.verify_header(payload, header, secret, tolerance=None)
        tolerance=None disables the timestamp-age check (it only runs `if tolerance and ...`).
  * stripe.Webhook.construct_event(payload, header, secret, tolerance=...) as a second check.

Cross-check (optional): nodecheck/check.js verifies every vector with the official stripe-node
(npm stripe@23.1.0: stripe.webhooks.signature.verifyHeader + generateTestHeaderString) -> all pass.

Everything is deterministic (fixed secrets, timestamps, payloads) so reruns give identical output.
Secrets are obviously fake test values, not real Stripe secrets.
"""
import json
import sys

import stripe
from stripe import SignatureVerificationError, WebhookSignature

EXPECTED_STRIPE_VERSION = "16.1.0"
HUGE_TOLERANCE = 10 ** 12  # seconds; effectively "never too old"


def sig(ts: int, payload: str, secret: str) -> str:
    """Bare v1 hex signature via the library's own HMAC helper."""
    return WebhookSignature._compute_signature("%d.%s" % (ts, payload), secret)


def event_json(evt_id, typ, created, obj, pretty):
    evt = {
        "id": evt_id,
        "object": "event",
        "api_version": "2025-03-31.basil",
        "created": created,
        "data": {"object": obj},
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": typ,
    }
    if pretty:
        # Stripe delivers pretty-printed JSON (2-space indent, '\n' newlines).
        return json.dumps(evt, indent=2, ensure_ascii=False)
    return json.dumps(evt, separators=(",", ":"), ensure_ascii=False)


def build_cases():
    cases = []

    # 1. Plain ASCII, compact, single v1 -- produced entirely by the library helper.
    s, ts = "whsec_test_luna_vector_1_plainascii000000", 1700000000
    p = event_json("evt_1LunaVector000000000001", "payment_intent.succeeded", ts,
                   {"id": "pi_1LunaVector00000000001", "object": "payment_intent",
                    "amount": 1999, "currency": "usd", "status": "succeeded",
                    "metadata": {"user_id": "42", "pack": "starter"}}, pretty=False)
    cases.append(dict(name="single_v1_ascii_compact", secret=s, timestamp=ts, payload=p,
                      header=WebhookSignature.generate_signature_header(p, s, timestamp=ts),
                      note="Header straight from stripe.WebhookSignature.generate_signature_header."))

    # 2. Pretty-printed multi-line body (how Stripe actually delivers), single v1.
    s, ts = "whsec_test_luna_vector_2_prettyprinted000", 1717171717
    p = event_json("evt_1LunaVector000000000002", "customer.subscription.updated", ts,
                   {"id": "sub_1LunaVector0000000002", "object": "subscription",
                    "status": "active", "cancel_at_period_end": True,
                    "customer": "cus_LunaVector000002",
                    "metadata": {"user_id": "7"}}, pretty=True) + "\n"
    cases.append(dict(name="single_v1_pretty_multiline_trailing_newline", secret=s, timestamp=ts,
                      payload=p,
                      header=WebhookSignature.generate_signature_header(p, s, timestamp=ts),
                      note="Body contains '\\n' newlines, 2-space indentation and a trailing newline; "
                           "every byte is signed, so do not trim or re-serialize the body."))

    # 3. Two v1 signatures: first is wrong (signed with a different, e.g. rolled/expired, secret), second right.
    s, ts = "whsec_test_luna_vector_3_twosigs00000000", 1720000000
    p = '{"id":"evt_1LunaVector000000000003","object":"event","type":"charge.refunded","data":{"object":{"id":"ch_3","object":"charge","amount":500,"amount_refunded":500,"refunded":true}}}'
    wrong = sig(ts, p, "whsec_test_luna_OLD_rolled_secret_0000000")
    right = sig(ts, p, s)
    cases.append(dict(name="two_v1_first_wrong_second_right", secret=s, timestamp=ts, payload=p,
                      header="t=%d,v1=%s,v1=%s" % (ts, wrong, right),
                      note="Stripe sends several v1 entries during secret rolling; accept if ANY v1 matches."))

    # 4. Extra v0 scheme entry (test-mode deliveries include a v0 signature); must be ignored.
    s, ts = "whsec_test_luna_vector_4_withv0scheme0000", 1730000000
    p = '{"id":"evt_1LunaVector000000000004","object":"event","type":"invoice.paid","livemode":false}'
    right = sig(ts, p, s)
    v0 = sig(ts, p, "whsec_test_luna_some_other_key_for_v0_000")  # arbitrary, NOT valid for `secret`
    cases.append(dict(name="v1_plus_extra_v0_scheme", secret=s, timestamp=ts, payload=p,
                      header="t=%d,v1=%s,v0=%s" % (ts, right, v0),
                      note="Only the v1 scheme is checked; the v0 value does not verify with `secret` and must be ignored."))

    # 5. Raw non-ASCII (é, emoji, CJK) in the body: HMAC is over the UTF-8 bytes.
    s, ts = "whsec_test_luna_vector_5_nonascii_utf8000", 1740000000
    p = event_json("evt_1LunaVector000000000005", "checkout.session.completed", ts,
                   {"id": "cs_test_LunaVector0000005", "object": "checkout.session",
                    "customer_details": {"name": "Zoé Lefèvre", "email": "zoé@example.com"},
                    "metadata": {"user_id": "99", "pack": "Pack 🚀 première 月"}}, pretty=False)
    cases.append(dict(name="non_ascii_raw_utf8_e_acute_emoji", secret=s, timestamp=ts, payload=p,
                      header=WebhookSignature.generate_signature_header(p, s, timestamp=ts),
                      note="Payload contains raw U+00E9, U+1F680 (4-byte UTF-8) and U+6708; sign/verify the raw UTF-8 bytes."))

    # 6. JSON escape sequences kept literally in the body (\u00e9, \ud83d\ude80 surrogate pair, \", \\, \/, \n, \t).
    #    The signature covers the escaped text, NOT the decoded characters.
    s, ts = "whsec_test_luna_vector_6_escapedchars0000", 1750000000
    p = ('{"id":"evt_1LunaVector000000000006","object":"event","type":"payment_intent.succeeded",'
         '"data":{"object":{"description":"caf\\u00e9 \\ud83d\\ude80 \\"quoted\\" back\\\\slash a\\/b line1\\nline2\\ttab",'
         '"metadata":{"note":"<script>&amp;</script>"}}}}')
    json.loads(p)  # sanity: still valid JSON
    cases.append(dict(name="json_escape_sequences_literal", secret=s, timestamp=ts, payload=p,
                      header=WebhookSignature.generate_signature_header(p, s, timestamp=ts),
                      note="Body contains literal backslash escapes (\\u00e9, \\ud83d\\ude80, \\\", \\\\, \\/, \\n, \\t); "
                           "decoding + re-encoding the JSON would break the signature."))

    # 7. Combination: several v1 (wrong, wrong, right) + v0, keys in unusual order (t not first).
    s, ts = "whsec_test_luna_vector_7_mixedorder00000", 1760000000
    p = '{"id":"evt_1LunaVector000000000007","object":"event","type":"charge.dispute.created","data":{"object":{"id":"du_7","object":"dispute","amount":1000,"status":"needs_response","reason":"fraudulent","note":"déjà vu 😬"}}}'
    right = sig(ts, p, s)
    w1 = sig(ts, p, "whsec_test_luna_wrong_A_00000000000000000")
    w2 = sig(ts + 1, p, s)  # right secret, wrong timestamp in signed string
    v0 = sig(ts, p, "whsec_test_luna_wrong_B_00000000000000000")
    cases.append(dict(name="mixed_order_v0_first_t_middle_three_v1", secret=s, timestamp=ts, payload=p,
                      header="v0=%s,v1=%s,t=%d,v1=%s,v1=%s" % (v0, w1, ts, w2, right),
                      note="t is not the first element; three v1 entries, only the last is right. "
                           "(Real Stripe headers put t first; the library parser does not depend on order.)"))
    return cases


def build_invalid_cases():
    """Negative vectors (valid=false): the library's verify_header must raise SignatureVerificationError."""
    s, ts = "whsec_test_luna_invalid_00000000000000000", 1700000000
    p = '{"id":"evt_1LunaInvalid","object":"event","note":"é"}'
    good = sig(ts, p, s)
    return [
        dict(name="wrong_secret", secret=s, timestamp=ts, payload=p,
             header="t=%d,v1=%s" % (ts, sig(ts, p, s + "x"))),
        dict(name="tampered_payload", secret=s, timestamp=ts, payload=p.replace("é", "e"),
             header="t=%d,v1=%s" % (ts, good)),
        dict(name="wrong_timestamp_in_header", secret=s, timestamp=ts + 1, payload=p,
             header="t=%d,v1=%s" % (ts + 1, good)),
        dict(name="only_v0_scheme", secret=s, timestamp=ts, payload=p,
             header="t=%d,v0=%s" % (ts, good)),
        dict(name="no_timestamp", secret=s, timestamp=None, payload=p,
             header="v1=%s" % good),
        dict(name="uppercase_hex_signature", secret=s, timestamp=ts, payload=p,
             header="t=%d,v1=%s" % (ts, good.upper()),
             note="library compares hex strings exactly (secure_compare), so uppercase hex is rejected"),
    ]


def main():
    if stripe.VERSION != EXPECTED_STRIPE_VERSION:
        print("WARNING: stripe==%s installed, vectors were pinned to %s"
              % (stripe.VERSION, EXPECTED_STRIPE_VERSION), file=sys.stderr)

    out_vectors = []
    for c in build_cases():
        # Verify with the library's own verifier (no age check) ...
        ok1 = WebhookSignature.verify_header(c["payload"], c["header"], c["secret"], tolerance=None)
        # ... with a huge tolerance, with bytes input, and via construct_event.
        ok2 = WebhookSignature.verify_header(c["payload"].encode("utf-8"), c["header"], c["secret"],
                                             tolerance=HUGE_TOLERANCE)
        evt = stripe.Webhook.construct_event(c["payload"], c["header"], c["secret"],
                                             tolerance=HUGE_TOLERANCE, api_key="sk_test_unused")
        assert ok1 is True and ok2 is True and evt is not None
        v = {
            "name": c["name"],
            "secret": c["secret"],
            "timestamp": c["timestamp"],
            "payload": c["payload"],
            "header": c["header"],
            "valid": True,
            "expected_v1": sig(c["timestamp"], c["payload"], c["secret"]),
            "payload_utf8_len": len(c["payload"].encode("utf-8")),
            "verified_by_library": {
                "verify_header_tolerance_none": ok1,
                "verify_header_huge_tolerance_bytes_payload": ok2,
                "webhook_construct_event": True,
            },
            "note": c.get("note", ""),
        }
        out_vectors.append(v)

    out_invalid = []
    for c in build_invalid_cases():
        try:
            WebhookSignature.verify_header(c["payload"], c["header"], c["secret"], tolerance=None)
            raise SystemExit("negative vector %s unexpectedly verified" % c["name"])
        except SignatureVerificationError as e:
            err = str(e)
        out_invalid.append({
            "name": c["name"], "secret": c["secret"], "timestamp": c["timestamp"],
            "payload": c["payload"], "header": c["header"], "valid": False,
            "library_error": err, "note": c.get("note", ""),
        })

    doc = {
        "generator": {
            "library": "stripe (PyPI, official stripe-python)",
            "version": stripe.VERSION,
            "sign_function": "stripe.WebhookSignature.generate_signature_header / stripe.WebhookSignature._compute_signature",
            "verify_function": "stripe.WebhookSignature.verify_header(payload, header, secret, tolerance=None) "
                               "and stripe.Webhook.construct_event(..., tolerance=%d)" % HUGE_TOLERANCE,
            "script": "make_vectors.py",
            "algorithm": "v1 = lowercase hex(HMAC-SHA256(key=utf8(secret), msg=utf8(str(t) + '.' + raw_body))); "
                         "header is comma-separated key=value pairs; accept if any v1 matches (constant-time); "
                         "ignore other schemes (v0); whole secret string incl. 'whsec_' prefix is the HMAC key.",
            "timestamps_note": "Timestamps are fixed in the past; disable or widen the tolerance (Stripe default 300 s) when replaying.",
        },
        "vectors": out_vectors,
        "invalid_vectors": out_invalid,
    }
    with open("stripe-signature-vectors.json", "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=2, ensure_ascii=False)
        f.write("\n")
    print("wrote %d valid + %d invalid vectors (stripe==%s)"
          % (len(out_vectors), len(out_invalid), stripe.VERSION))


if __name__ == "__main__":
    main()
