#!/usr/bin/env bash
# Every reliability scenario of docs/RELIABILITY.md, each one command ending in PASS or FAIL,
# then a summary. Loopback only, each bounded in time and traffic.
#
#   scripts/reliability.sh            # everything; the soak runs 600 s per backend
#   SOAK_SECONDS=60 scripts/reliability.sh
#   scripts/reliability.sh crash overload   # only these scenarios
#
# Needs PostgreSQL at LUNA_TEST_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/test)
# and root (the outage runs a private cluster as `postgres`; the full disk mounts a tmpfs in a
# private mount namespace). Each scenario's output goes to target/reliability/<name>.log.
set -uo pipefail
cd "$(dirname "$0")/.."

export LUNA_TEST_DATABASE_URL="${LUNA_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}"
export LUNA_REQUIRE_POSTGRES=1 LUNA_REQUIRE_ROOT=1
SOAK_SECONDS=${SOAK_SECONDS:-600}
OVERLOAD_SECONDS=${OVERLOAD_SECONDS:-20}
LOGS=target/reliability
mkdir -p "$LOGS"

cargo build --release -p luna-server -p luna-bench || exit 1
cargo test -p luna-server --test api --no-run || exit 1
BENCH=target/release/luna-bench

FAILED=()
SUMMARY=()
scenario() { # name, command…
    local name=$1
    shift
    local start=$SECONDS
    if "$@" >"$LOGS/$name.log" 2>&1; then
        SUMMARY+=("PASS  $name ($((SECONDS - start)) s)")
        echo "PASS  $name"
    else
        SUMMARY+=("FAIL  $name ($((SECONDS - start)) s, see $LOGS/$name.log)")
        FAILED+=("$name")
        echo "FAIL  $name (see $LOGS/$name.log)"
    fi
}
api() { cargo test -p luna-server --test api -- "$@" --nocapture --test-threads 1; }
on_pg() { LUNA_API_BACKEND=postgres "$@"; }
SELECTED="$*"
want() { [ -z "$SELECTED" ] || [[ " $SELECTED " == *" $1 "* ]]; }

want crash && scenario crash-sqlite api crash::
want crash && scenario crash-postgres on_pg api crash::
want outage && scenario outage-postgres api outage::
want full-disk && scenario full-disk-sqlite api full_disk::
want two-instances && scenario two-instances-sqlite api linearizable:: defects::a_402_on_one_sqlite_process
want two-instances && scenario two-instances-postgres on_pg api linearizable::
want overload && scenario overload-shed-test api overload::
want overload && scenario overload-sqlite "$BENCH" overload --seconds "$OVERLOAD_SECONDS"
want overload && scenario overload-postgres "$BENCH" overload --seconds "$OVERLOAD_SECONDS" --postgres "$LUNA_TEST_DATABASE_URL"
want overload && scenario overload-shedding-sqlite "$BENCH" overload --seconds "$OVERLOAD_SECONDS" --max-in-flight 32 --admission-wait-ms 200
want hostile && scenario hostile api hostile::
want schema && scenario schemathesis bash scripts/schemathesis.sh
want soak && scenario soak-sqlite "$BENCH" soak --seconds "$SOAK_SECONDS"
want soak && scenario soak-postgres "$BENCH" soak --seconds "$SOAK_SECONDS" --postgres "$LUNA_TEST_DATABASE_URL"

echo
printf '%s\n' "${SUMMARY[@]}"
if [ ${#FAILED[@]} -eq 0 ]; then
    echo "PASS"
else
    echo "FAIL: ${FAILED[*]}"
    exit 1
fi
