//! The lock on released versions: `crates/flows/versions.lock` lists each
//! released `flow@vN` with its fingerprint and the hash of every file that
//! fingerprint covers. A locked version whose fingerprint changes fails
//! `tests/versions_lock.rs`, naming the files that differ: a released
//! version is never edited, a change goes in a new version folder.
//! `switchyard flows lock` adds versions to the file and never changes a
//! locked one. Versions not in the file (one still being written) are
//! reported, not failed.
//!
//! ```text
//! # comment
//! billing@v1 <fingerprint>
//!     billing/v1/mod.rs <sha-256>
//!     shared/money.rs <sha-256>
//! ```

use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Where the lock file is, relative to the repository root.
pub const LOCK_FILE: &str = "crates/flows/versions.lock";

/// One locked version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Locked {
    pub fingerprint: String,
    /// (file relative to `src/`, SHA-256 of its contents).
    pub files: Vec<(String, String)>,
}

/// The lock file's versions, by `flow@vN`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Lock {
    pub versions: BTreeMap<String, Locked>,
}

/// A compiled version as the build step saw it.
#[derive(Clone, Copy, Debug)]
pub struct Compiled {
    pub flow: &'static str,
    pub version: u32,
    pub fingerprint: &'static str,
    pub files: &'static [(&'static str, &'static str)],
}

impl Compiled {
    pub fn label(&self) -> String {
        format!("{}@v{}", self.flow, self.version)
    }
}

/// Every compiled version, with what its fingerprint covers.
pub fn compiled() -> Vec<Compiled> {
    crate::generated::FOLDERS
        .iter()
        .map(|(flow, version, _, fingerprint)| {
            let files = crate::generated::INPUTS
                .iter()
                .find(|(f, v, _)| f == flow && v == version)
                .map_or(&[][..], |(_, _, files)| *files);
            Compiled { flow, version: *version, fingerprint, files }
        })
        .collect()
}

impl Lock {
    /// Reads a lock file; errors name the line.
    pub fn parse(text: &str) -> Result<Lock, String> {
        let mut lock = Lock::default();
        let mut current: Option<String> = None;
        for (idx, raw) in text.lines().enumerate() {
            let line = idx + 1;
            let trimmed = raw.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let mut words = trimmed.split_whitespace();
            let (Some(name), Some(hash), None) = (words.next(), words.next(), words.next()) else {
                return Err(format!("versions.lock:{line}: expected 'name hash', found '{trimmed}'"));
            };
            if !(hash.len() == 64 && hash.bytes().all(|byte| byte.is_ascii_hexdigit())) {
                return Err(format!("versions.lock:{line}: '{hash}' is not a SHA-256 in hex"));
            }
            if raw.starts_with(char::is_whitespace) {
                let Some(label) = &current else {
                    return Err(format!("versions.lock:{line}: file line '{name}' before any 'flow@vN' line"));
                };
                let locked = lock.versions.get_mut(label).expect("current version is in the map");
                locked.files.push((name.to_owned(), hash.to_owned()));
            } else {
                let valid = name.split_once("@v").is_some_and(|(flow, version)| !flow.is_empty() && version.parse::<u32>().is_ok());
                if !valid {
                    return Err(format!("versions.lock:{line}: '{name}' must look like flow@vN"));
                }
                if lock.versions.contains_key(name) {
                    return Err(format!("versions.lock:{line}: '{name}' is locked twice"));
                }
                lock.versions.insert(name.to_owned(), Locked { fingerprint: hash.to_owned(), files: Vec::new() });
                current = Some(name.to_owned());
            }
        }
        Ok(lock)
    }

    /// The file's text: a header, then the versions in name order.
    pub fn render(&self) -> String {
        let mut out = String::from(
            "# Released flow versions, locked: a released version is never edited (a change\n\
             # goes in a new version folder). crates/flows/tests/versions_lock.rs fails when a\n\
             # locked version's fingerprint changes; `switchyard flows lock` adds versions and\n\
             # never changes a locked one. Each version: its fingerprint, then every file the\n\
             # fingerprint covers (relative to crates/flows/src) with its own SHA-256.\n",
        );
        for (label, locked) in &self.versions {
            let _ = writeln!(out, "\n{label} {}", locked.fingerprint);
            for (file, hash) in &locked.files {
                let _ = writeln!(out, "    {file} {hash}");
            }
        }
        out
    }

    /// Adds `versions` that are not locked yet; returns the labels added.
    /// A locked version is never changed, whatever its fingerprint now.
    pub fn add(&mut self, versions: &[Compiled]) -> Vec<String> {
        let mut added = Vec::new();
        for version in versions {
            let label = version.label();
            if self.versions.contains_key(&label) {
                continue;
            }
            let files = version.files.iter().map(|(file, hash)| ((*file).to_owned(), (*hash).to_owned())).collect();
            self.versions.insert(label.clone(), Locked { fingerprint: version.fingerprint.to_owned(), files });
            added.push(label);
        }
        added
    }

    /// One line per locked version that changed or is gone, naming the
    /// files that differ.
    pub fn violations(&self, compiled: &[Compiled]) -> Vec<String> {
        let mut problems = Vec::new();
        for (label, locked) in &self.versions {
            let Some(now) = compiled.iter().find(|version| version.label() == *label) else {
                problems.push(format!("{label} is locked but no longer compiled: a released version folder was removed or renamed"));
                continue;
            };
            if now.fingerprint == locked.fingerprint {
                continue;
            }
            let mut differ = Vec::new();
            for (file, hash) in &locked.files {
                match now.files.iter().find(|(f, _)| f == file) {
                    None => differ.push(format!("{file} (removed)")),
                    Some((_, current)) if current != hash => differ.push(format!("{file} (changed)")),
                    Some(_) => {}
                }
            }
            for (file, _) in now.files {
                if !locked.files.iter().any(|(f, _)| f == file) {
                    differ.push(format!("{file} (added)"));
                }
            }
            if differ.is_empty() {
                differ.push("the file list in versions.lock is out of step with the fingerprint".to_owned());
            }
            problems.push(format!(
                "{label} is released and locked, but its fingerprint changed ({} -> {}): {}; put the change in a new version folder",
                short(&locked.fingerprint),
                short(now.fingerprint),
                differ.join(", ")
            ));
        }
        problems
    }

    /// Compiled versions the lock does not list.
    pub fn unlocked(&self, compiled: &[Compiled]) -> Vec<String> {
        compiled.iter().map(Compiled::label).filter(|label| !self.versions.contains_key(label)).collect()
    }
}

fn short(hash: &str) -> &str {
    &hash[..hash.len().min(12)]
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
    const C: &str = "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc";

    fn version(fingerprint: &'static str, files: &'static [(&'static str, &'static str)]) -> Compiled {
        Compiled { flow: "billing", version: 1, fingerprint, files }
    }

    #[test]
    fn a_changed_file_is_named_and_a_locked_version_is_never_rewritten() {
        let mut lock = Lock::default();
        let released = version(A, &[("billing/v1/mod.rs", B), ("billing/v1/texts.txt", C)]);
        assert_eq!(lock.add(&[released]), ["billing@v1"]);
        let text = lock.render();
        assert_eq!(Lock::parse(&text).unwrap(), lock, "round trip");
        assert!(lock.violations(&[released]).is_empty());

        let edited = version(B, &[("billing/v1/mod.rs", B), ("billing/v1/texts.txt", A), ("shared/money.rs", A)]);
        let problems = lock.violations(&[edited]);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].starts_with("billing@v1 is released and locked"), "{}", problems[0]);
        assert!(problems[0].contains("billing/v1/texts.txt (changed), shared/money.rs (added)"), "{}", problems[0]);
        assert!(!problems[0].contains("mod.rs"), "{}", problems[0]);

        assert!(lock.add(&[edited]).is_empty(), "a locked version is not re-locked");
        assert_eq!(lock.versions["billing@v1"].fingerprint, A);
        assert!(lock.violations(&[])[0].contains("no longer compiled"));
    }

    #[test]
    fn malformed_lines_are_refused_with_their_line() {
        for (text, wanted) in [
            ("billing@v1 xyz\n", ":1: 'xyz' is not a SHA-256"),
            (&format!("    billing/v1/mod.rs {A}\n"), ":1: file line"),
            (&format!("billing {A}\n"), "must look like flow@vN"),
            (&format!("billing@v1 {A}\nbilling@v1 {A}\n"), ":2: 'billing@v1' is locked twice"),
            ("billing@v1\n", "expected 'name hash'"),
        ] {
            let problem = Lock::parse(text).unwrap_err();
            assert!(problem.contains(wanted), "{text:?}: {problem}");
        }
    }
}
