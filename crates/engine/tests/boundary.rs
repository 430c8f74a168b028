//! The engine does no concrete I/O: it must not depend, even transitively, on
//! a database driver, an HTTP stack or the Evolution wire format. And no
//! crate in the workspace may link OpenSSL (it would build here, where
//! libssl-dev happens to be installed, and fail elsewhere).
//!
//! Read from Cargo.lock and the engine's manifest, so the check needs neither
//! the network nor cargo itself.

use std::collections::{BTreeMap, BTreeSet};

const FORBIDDEN_IN_ENGINE: &[&str] = &[
    "sqlx", "sqlx-core", "sqlx-sqlite", "sqlx-postgres", "libsqlite3-sys", "rusqlite", "tokio-postgres", "axum", "hyper",
    "reqwest", "tokio", "switchyard-store", "switchyard-evolution", "switchyard-llm", "switchyard-flows",
];

fn workspace_file(path: &str) -> String {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    std::fs::read_to_string(root.join(path)).unwrap_or_else(|err| panic!("read {path}: {err}"))
}

/// package name -> names of its dependencies, from Cargo.lock.
fn lock_graph() -> BTreeMap<String, Vec<String>> {
    let lock = workspace_file("Cargo.lock");
    let mut graph = BTreeMap::new();
    for block in lock.split("[[package]]").skip(1) {
        let name = block
            .lines()
            .find_map(|line| line.strip_prefix("name = "))
            .map(|name| name.trim_matches('"').to_owned())
            .expect("package name");
        let mut deps = Vec::new();
        if let Some(start) = block.find("dependencies = [") {
            let list = &block[start + "dependencies = [".len()..];
            let list = &list[..list.find(']').expect("closing bracket")];
            for entry in list.split(',') {
                let entry = entry.trim().trim_matches('"');
                if let Some(dep) = entry.split(' ').next().filter(|dep| !dep.is_empty()) {
                    deps.push(dep.to_owned());
                }
            }
        }
        graph.entry(name).or_insert_with(Vec::new).extend(deps);
    }
    graph
}

/// The names under `[dependencies]` in the engine's manifest (not dev-dependencies).
fn engine_normal_dependencies() -> Vec<String> {
    let manifest = workspace_file("crates/engine/Cargo.toml");
    let mut in_deps = false;
    let mut deps = Vec::new();
    for line in manifest.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_deps = line == "[dependencies]";
            continue;
        }
        if in_deps && let Some((name, _)) = line.split_once(['=', '.']) && !name.trim().is_empty() && !name.starts_with('#') {
            deps.push(name.trim().to_owned());
        }
    }
    deps
}

#[test]
fn the_engine_depends_on_no_io_crate_even_transitively() {
    let graph = lock_graph();
    let direct = engine_normal_dependencies();
    assert!(!direct.is_empty(), "the manifest parse found the engine's dependencies");
    let mut seen = BTreeSet::new();
    let mut stack = direct.clone();
    while let Some(name) = stack.pop() {
        if seen.insert(name.clone()) {
            stack.extend(graph.get(&name).cloned().unwrap_or_default());
        }
    }
    let crossed: Vec<&String> = seen.iter().filter(|name| FORBIDDEN_IN_ENGINE.contains(&name.as_str())).collect();
    assert!(crossed.is_empty(), "the engine's dependency tree reaches {crossed:?} (via {direct:?})");
}

#[test]
fn no_crate_in_the_workspace_links_openssl() {
    let graph = lock_graph();
    assert!(graph.contains_key("sqlx"), "the lock file parse sees the workspace");
    for forbidden in ["openssl-sys", "openssl", "native-tls"] {
        assert!(!graph.contains_key(forbidden), "{forbidden} is in Cargo.lock");
    }
}
