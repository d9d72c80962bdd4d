//! The dependency direction of the architecture guide, read from `cargo metadata`:
//! `core <- ports <- app <- http <- server`; adapters depend on ports (+core, +codec), never
//! on each other; only the server names adapters; the testkit is never a normal dependency
//! (but of the load tool).

use std::collections::BTreeMap;
use std::process::Command;

/// Workspace crates each crate may depend on (normal dependencies). A crate missing from this
/// table fails the test, so a new crate must state its place.
const ALLOWED: &[(&str, &[&str])] = &[
    ("luna-core", &[]),
    // The wire types: plain serde types, shared by the server and the client SDK.
    ("luna-api", &[]),
    ("luna-codec", &["luna-core", "luna-ports"]),
    ("luna-ports", &["luna-core"]),
    ("luna-app", &["luna-core", "luna-ports"]),
    (
        "luna-adapters-sqlite",
        &["luna-core", "luna-ports", "luna-codec"],
    ),
    (
        "luna-adapters-postgres",
        &["luna-core", "luna-ports", "luna-codec"],
    ),
    ("luna-adapters-stripe", &["luna-core", "luna-ports"]),
    // The HTTP layer maps domain values to wire types by hand; stored formats never reach it.
    (
        "luna-http",
        &["luna-core", "luna-ports", "luna-app", "luna-api"],
    ),
    (
        "luna-server",
        &[
            "luna-core",
            "luna-ports",
            "luna-app",
            "luna-api",
            "luna-http",
            "luna-adapters-sqlite",
            "luna-adapters-postgres",
            "luna-adapters-stripe",
        ],
    ),
    ("luna-client", &["luna-api"]),
    (
        "luna-bench",
        &[
            "luna-core",
            "luna-ports",
            "luna-app",
            "luna-api",
            "luna-codec",
            "luna-adapters-sqlite",
            "luna-adapters-postgres",
            "luna-http",
            "luna-server",
            // The soak buys packs from the fake Stripe (a tool, never shipped).
            "luna-testkit",
        ],
    ),
    // The fake Stripe signs its events with the adapter's signer.
    (
        "luna-testkit",
        &[
            "luna-core",
            "luna-ports",
            "luna-app",
            "luna-adapters-stripe",
        ],
    ),
    ("luna-example-embedded", &["luna-core"]),
    // A satellite talks to the hub over HTTP only.
    ("luna-example-satellite", &["luna-client"]),
];

struct Package {
    name: String,
    normal: Vec<String>,
}

fn workspace() -> Vec<Package> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).expect("metadata is JSON");
    meta["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .map(|p| Package {
            name: p["name"].as_str().expect("name").to_owned(),
            normal: p["dependencies"]
                .as_array()
                .expect("dependencies")
                .iter()
                .filter(|d| d["kind"].is_null())
                .map(|d| d["name"].as_str().expect("dep name").to_owned())
                .collect(),
        })
        .collect()
}

#[test]
fn luna_core_has_no_dependencies_at_all() {
    let core = workspace()
        .into_iter()
        .find(|p| p.name == "luna-core")
        .expect("luna-core is in the workspace");
    assert!(
        core.normal.is_empty(),
        "luna-core must have an empty [dependencies]: {:?}",
        core.normal
    );
}

#[test]
fn every_crate_depends_only_inward() {
    let allowed: BTreeMap<&str, &[&str]> = ALLOWED.iter().copied().collect();
    let packages = workspace();
    let ours: Vec<&str> = packages.iter().map(|p| p.name.as_str()).collect();
    for p in &packages {
        let Some(allowed) = allowed.get(p.name.as_str()) else {
            panic!(
                "{} has no place in the dependency table of tests/architecture.rs",
                p.name
            );
        };
        for dep in p.normal.iter().filter(|d| ours.contains(&d.as_str())) {
            assert!(
                allowed.contains(&dep.as_str()),
                "{} must not depend on {dep}",
                p.name
            );
        }
    }
}

#[test]
fn the_testkit_is_never_a_normal_dependency() {
    // Except the load tool (`publish = false`, not in the image), whose soak needs the fake
    // Stripe.
    for p in workspace().into_iter().filter(|p| p.name != "luna-bench") {
        assert!(
            !p.normal.iter().any(|d| d == "luna-testkit"),
            "{} depends on luna-testkit outside dev",
            p.name
        );
    }
}
