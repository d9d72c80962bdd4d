#!/usr/bin/env python3
"""Static checks of what cannot run on the CI machine (no container engine, no GitHub):

* the Dockerfile builds the same release binary CI builds, runs it as a non-root user, has a
  HEALTHCHECK on /health and a data volume;
* docker-compose.yml parses, runs the hub on PostgreSQL, and every LUNA_* variable it sets is one
  the binary reads (luna-server/src/config.rs);
* the GitHub workflow parses and runs the same steps as .ci/run;
* docs/operator-guide.md's configuration reference lists exactly the variables the binary reads.
Exit 1 with the list of problems.
"""
import pathlib
import re
import sys

import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
problems = []


def check(ok, message):
    if not ok:
        problems.append(message)


config_rs = (ROOT / "luna-server/src/config.rs").read_text()
read_vars = set(re.findall(r'env = "(LUNA_[A-Z_]+)"', config_rs))
check(len(read_vars) >= 15, f"config.rs reads only {sorted(read_vars)}")

# -- Dockerfile
docker = (ROOT / "Dockerfile").read_text()
check("cargo build --release --locked -p luna-server" in docker, "Dockerfile: not CI's release build")
check("COPY --from=build /src/target/release/luna" in docker, "Dockerfile: the binary is not copied")
users = re.findall(r"^USER\s+(\S+)", docker, re.M)
check(bool(users) and users[-1] not in ("root", "0"), "Dockerfile: runs as root")
check(re.search(r"^HEALTHCHECK .*?/health", docker, re.M | re.S) is not None, "Dockerfile: no HEALTHCHECK on /health")
check(re.search(r"^VOLUME", docker, re.M) is not None, "Dockerfile: no data volume")
for var in re.findall(r"\b(LUNA_[A-Z_]+)=", docker):
    check(var in read_vars, f"Dockerfile sets {var}, which the binary does not read")

# -- docker-compose.yml
compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
services = compose.get("services", {})
check({"hub", "postgres"} <= set(services), "compose: needs the hub and postgres services")
hub_env = services.get("hub", {}).get("environment", {})
for var in hub_env:
    if var.startswith("LUNA_"):
        check(var in read_vars, f"compose sets {var}, which the binary does not read")
check(str(hub_env.get("LUNA_DATABASE_URL", "")).startswith("postgres://"), "compose: the hub is not on PostgreSQL")
check("LUNA_JWT_SECRET" in hub_env, "compose: production needs LUNA_JWT_SECRET")
check("service_healthy" in str(services.get("hub", {}).get("depends_on", "")), "compose: the hub does not wait for PostgreSQL")

# -- the workflow runs .ci/run's steps
workflow = yaml.safe_load((ROOT / ".github/workflows/ci.yml").read_text())
runs = "\n".join(
    step.get("run", "")
    for job in workflow.get("jobs", {}).values()
    for step in job.get("steps", [])
)
ci = (ROOT / ".ci/run").read_text()
for command in [
    "cargo fmt --all -- --check",
    "cargo clippy --workspace --all-targets -- -D warnings",
    'RUSTDOCFLAGS="-D warnings" cargo doc -p luna-client --no-deps',
    "cargo test --workspace",
    "LUNA_API_BACKEND=postgres cargo test -p luna-server --test api",
    "cargo build -p luna-server -p luna-example-satellite",
    "bash scripts/smoke.sh",
    "bash scripts/schemathesis.sh",
    "python3 scripts/check_deploy.py",
    "openapi_spec_validator target/openapi.json",
]:
    check(command in runs, f"workflow lacks: {command}")
    check(command in ci, f".ci/run lacks: {command}")
services_wf = [j.get("services", {}) for j in workflow.get("jobs", {}).values()]
check(any("postgres" in s for s in services_wf), "workflow: no PostgreSQL service")

# -- the operator guide's configuration reference is the binary's
guide = (ROOT / "docs/operator-guide.md").read_text()
documented = set(re.findall(r"^\| `(LUNA_[A-Z_]+)`", guide, re.M))
check(documented == read_vars,
      f"operator guide vs config.rs: missing {sorted(read_vars - documented)}, extra {sorted(documented - read_vars)}")

if problems:
    print("deployment checks failed:")
    for p in problems:
        print("  -", p)
    sys.exit(1)
print(f"deployment files: ok ({len(read_vars)} variables)")
