//! A released version is never edited: every version locked in
//! `crates/flows/versions.lock` still has the fingerprint it was released
//! with. A change fails here naming the version and the files that differ;
//! it belongs in a new version folder. Versions not locked yet are named on
//! stderr, not failed (`switchyard flows lock` locks them at release).

use std::path::Path;

use switchyard_flows::lock::{compiled, Lock};

#[test]
fn no_locked_version_changed() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("versions.lock");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|problem| panic!("{}: {problem}", path.display()));
    let lock = Lock::parse(&text).unwrap_or_else(|problem| panic!("{problem}"));
    let compiled = compiled();
    let problems = lock.violations(&compiled);
    assert!(problems.is_empty(), "{} released version(s) changed:\n{}", problems.len(), problems.join("\n"));
    for label in ["digital_certificate@v1", "digital_certificate@v2", "billing@v1", "billing@v2", "general_support@v1", "unknown@v1"] {
        assert!(lock.versions.contains_key(label), "{label} is released: it must be locked");
    }
    for label in lock.unlocked(&compiled) {
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), "note: {label} is not locked (not released yet); `switchyard flows lock {label}` locks it");
    }
}

#[test]
fn the_lock_file_is_as_the_lock_command_writes_it() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("versions.lock");
    let text = std::fs::read_to_string(&path).unwrap();
    let lock = Lock::parse(&text).unwrap();
    assert_eq!(lock.render(), text, "versions.lock was edited by hand; `switchyard flows lock` writes it");
}
