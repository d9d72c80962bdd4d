#!/usr/bin/env bash
# Runs the documented commands for real (docs/walkthrough.md and docs/operator-guide.md name
# this script): the luna binary's operator commands on a fresh SQLite database, the hub served,
# the walkthrough's curl calls, the Letters satellite against it, and the embedded example.
# Uses the debug binaries (`cargo build -p luna-server -p luna-example-satellite` first).
set -euo pipefail
cd "$(dirname "$0")/.."

LUNA=target/debug/luna
LETTERS=target/debug/letters
WORK=$(mktemp -d)
PORT=$((20000 + RANDOM % 20000))
LPORT=$((PORT + 1))
HUB="http://127.0.0.1:$PORT"
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT
fail() { echo "smoke: $*" >&2; exit 1; }
wait_for() { # url
    for _ in $(seq 1 100); do
        curl -sf "$1" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    fail "$1 never answered"
}

export LUNA_DATABASE_URL="sqlite://$WORK/luna.db"
export LUNA_BIND="127.0.0.1:$PORT"
export LUNA_CONFIG=/dev/null

echo "-- operator commands (docs/operator-guide.md)"
"$LUNA" migrate
KEY=$("$LUNA" keys create --name letters --scopes energy:read energy:write events:read events:write | tail -n 1 | tr -d ' ')
[[ "$KEY" == luna_sk_* ]] || fail "keys create printed no secret"
"$LUNA" keys list | grep -q letters || fail "keys list"
"$LUNA" catalog | grep -q lettre_motivation || fail "catalog"

echo "-- luna serve"
"$LUNA" serve >"$WORK/serve.log" 2>&1 &
PIDS+=($!)
wait_for "$HUB/health"

echo "-- the walkthrough (docs/walkthrough.md)"
post() { curl -s -o "$WORK/out.json" -w '%{http_code}' "$HUB$1" -H "Authorization: Bearer $KEY" \
    -H 'content-type: application/json' -H "X-Idempotency-Key: ${3:-$(cat /proc/sys/kernel/random/uuid)}" -d "$2"; }
[ "$(post /luna/energy/can-perform '{"user_id":"marie","action_name":"lettre_motivation"}')" = 200 ] || fail "can-perform"
jq -e '.can_perform == true and .current_energy == 85' "$WORK/out.json" >/dev/null || fail "can-perform body"
[ "$(post /luna/energy/consume '{"user_id":"marie","action_name":"lettre_motivation"}' order-1)" = 200 ] || fail "consume"
[ "$(post /luna/energy/consume '{"user_id":"marie","action_name":"lettre_motivation"}' order-1)" = 200 ] || fail "consume again"
jq -e '.energy_remaining == 70' "$WORK/out.json" >/dev/null || fail "a repeated key charged twice"
[ "$(post /luna/energy/consume '{"user_id":"marie","action_name":"plan_reconversion"}')" = 200 ] || fail "premium"
[ "$(post /luna/energy/consume '{"user_id":"marie","action_name":"mirror_match"}')" = 402 ] || fail "402"
jq -e '.detail.required_pack == "cafe_luna"' "$WORK/out.json" >/dev/null || fail "402 names a pack"
curl -sf "$HUB/billing/packs" | jq -e '.packs | length == 4' >/dev/null || fail "packs"
curl -sf "$HUB/openapi.json" | jq -e '.openapi | startswith("3.1")' >/dev/null || fail "openapi"

echo "-- the Letters satellite (examples/satellite)"
LUNA_URL="$HUB" LUNA_SERVICE_KEY="$KEY" LETTERS_BIND="127.0.0.1:$LPORT" GEMINI_API_KEY= \
    "$LETTERS" >"$WORK/letters.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 100); do
    (echo >"/dev/tcp/127.0.0.1/$LPORT") 2>/dev/null && break
    sleep 0.1
done
code=$(curl -s -o "$WORK/letter.json" -w '%{http_code}' "http://127.0.0.1:$LPORT/letters" \
    -H 'content-type: application/json' \
    -d '{"user_id":"paul","job_title":"Data Analyst","company":"Acme"}')
[ "$code" = 200 ] || fail "letters answered $code: $(cat "$WORK/letter.json")"
jq -e '.energy_consumed == 15 and .energy_remaining == 70' "$WORK/letter.json" >/dev/null || fail "letter body"

echo "-- luna verify"
"$LUNA" verify >/dev/null || fail "verify"

echo "-- examples/embedded"
cargo run -q -p luna-example-embedded >/dev/null || fail "embedded example"

echo "smoke: ok"
