#!/usr/bin/env bash
# Schema fuzzing (issue 12): schemathesis (pinned) against /openapi.json of a fresh `luna serve`,
# once with a service key (admin) and once with a user token: every response must conform to
# its documented status, content type, headers and schema, and no request may get a 5xx.
# Excluded: logout, logout-all and session deletion (they would end the token's session), the
# webhook (Stripe-signed), the live streams (never end), and the billing writes (they need
# Stripe: `luna-server/tests/api/billing.rs` runs them against the fake Stripe).
# Uses the debug binary (`cargo build -p luna-server` first). Prints the operations and examples
# run; exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION=4.32.5
SEED=${SCHEMATHESIS_SEED:-20261126}
EXAMPLES=${SCHEMATHESIS_EXAMPLES:-25}
VENV=target/schemathesis-venv
if [ ! -x "$VENV/bin/schemathesis" ] || ! "$VENV/bin/schemathesis" --version | grep -q "$VERSION"; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$VERSION"
fi

WORK=$(mktemp -d)
PORT=$((20000 + RANDOM % 20000))
HUB="http://127.0.0.1:$PORT"
LUNA_DATABASE_URL="sqlite://$WORK/luna.db" LUNA_BIND="127.0.0.1:$PORT" LUNA_CONFIG=/dev/null \
    LUNA_TRUSTED_PROXIES=127.0.0.1 target/debug/luna serve >"$WORK/serve.log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null || true; rm -rf "$WORK"' EXIT
for _ in $(seq 1 100); do curl -sf "$HUB/health" >/dev/null && break; sleep 0.1; done
KEY=$(grep -o 'luna_sk_[A-Za-z0-9_]*' "$WORK/serve.log" | head -n 1)
[ -n "$KEY" ] || { echo "no admin key printed"; exit 1; }
TOKEN=$(curl -sf "$HUB/auth/register" -H 'content-type: application/json' -H 'x-forwarded-for: 203.0.113.77' \
    -d '{"email":"fuzz@example.com","password":"correct horse battery"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')

fuzz() { # bearer
    "$VENV/bin/schemathesis" run "$HUB/openapi.json" \
        -H "Authorization: Bearer $1" -H "X-Forwarded-For: 198.51.100.$((RANDOM % 250 + 1))" \
        --seed "$SEED" --max-examples "$EXAMPLES" --workers 2 --no-color \
        --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance \
        --exclude-path-regex '/auth/logout.*|/auth/sessions/.*|/billing/webhook|/luna/energy/live|/app/live|/billing/(create-intent|confirm-payment|create-subscription|cancel-subscription)|/luna/energy/purchase' \
        >"$WORK/st.txt" 2>&1
}

run() { # label, bearer
    echo "-- schemathesis $VERSION as $1 (seed $SEED, up to $EXAMPLES examples per operation)"
    if ! fuzz "$2"; then
        # CPython 3.11's AST bug (python/cpython#106905), reached when Hypothesis parses a lambda's
        # source to describe it (HypothesisWorks/hypothesis#4364), fails a draw now and then: a
        # fault of the tool, not of the hub. Only that error earns a second run; any other fails.
        grep -q "AST constructor recursion depth mismatch" "$WORK/st.txt" \
            || { cat "$WORK/st.txt"; echo "schemathesis ($1): FAIL"; exit 1; }
        echo "schemathesis ($1): the tool hit CPython's AST bug (python/cpython#106905); once more"
        fuzz "$2" || { cat "$WORK/st.txt"; echo "schemathesis ($1): FAIL"; exit 1; }
    fi
    grep -E "Selected:|Tested:|generated" "$WORK/st.txt"
    echo "schemathesis ($1): PASS"
}
run "a service key" "$KEY"
run "a user token" "$TOKEN"
