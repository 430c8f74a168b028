//! `switchyard flows new FLOW@vN --from vM`: starts a new version as a copy
//! of an existing one, so the change begins from something that compiles
//! and passes its transcripts.
//!
//! It copies `src/<flow>/v<M>/` to `src/<flow>/v<N>/` and renames the
//! version: the `VersionDecl::new("<flow>", M, ...)` call becomes
//! `VersionDecl::new("<flow>", N, Lifecycle::Inactive)` (a copy of the active
//! version must not be a second active one), the module comment's `vM`
//! becomes `vN`, and the copied transcripts run against vN (each gets a
//! header saying where it came from, to edit as vN changes). A version
//! without transcripts gets a stub that fails until one is written. Nothing
//! outside the new folder is touched: the build finds the folder by itself.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// What `flows new` created.
#[derive(Debug, PartialEq, Eq)]
pub struct Scaffolded {
    pub folder: PathBuf,
    /// Every file written, relative to the flows crate.
    pub files: Vec<PathBuf>,
}

/// Parses `FLOW@vN` and `vM`.
pub fn parse(spec: &str, from: &str) -> Result<(String, u32, u32), String> {
    let (flow, version) = spec
        .split_once('@')
        .ok_or_else(|| format!("'{spec}' must look like FLOW@vN, for example digital_certificate@v4"))?;
    let number = |text: &str, what: &str| {
        text.strip_prefix('v')
            .and_then(|digits| digits.parse::<u32>().ok())
            .filter(|number| *number > 0)
            .ok_or_else(|| format!("{what} '{text}' must look like v1, v2, ..."))
    };
    if flow.is_empty() || !flow.chars().all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '_') {
        return Err(format!("flow '{flow}' must be lowercase letters, digits and '_'"));
    }
    Ok((flow.to_owned(), number(version, "version")?, number(from, "--from")?))
}

/// Copies `<crate_dir>/src/<flow>/v<from>/` to `.../v<to>/` with the version
/// renamed (see the module documentation). Refuses, writing nothing, when
/// the source is missing, the target exists, or the source's declaration
/// cannot be found to rename.
pub fn scaffold(crate_dir: &Path, flow: &str, from: u32, to: u32) -> Result<Scaffolded, String> {
    let flow_dir = crate_dir.join("src").join(flow);
    let source = flow_dir.join(format!("v{from}"));
    let target = flow_dir.join(format!("v{to}"));
    if !source.join("mod.rs").is_file() {
        return Err(format!("{} has no mod.rs: there is no {flow}@v{from} to copy (run from the repository root, or pass --dir)", source.display()));
    }
    if target.exists() {
        return Err(format!("{} already exists: {flow}@v{to} is taken", target.display()));
    }
    let mut files = Vec::new();
    collect(&source, &mut files).map_err(|problem| format!("{}: {problem}", source.display()))?;

    // Everything is computed before anything is written.
    let declaration = format!("VersionDecl::new(\"{flow}\", {from},");
    let mut outputs: Vec<(PathBuf, Vec<u8>)> = Vec::new();
    let mut renamed = false;
    let mut transcripts = 0;
    for file in &files {
        let relative = file.strip_prefix(&source).map_err(|problem| problem.to_string())?;
        let bytes = fs::read(file).map_err(|problem| format!("{}: {problem}", file.display()))?;
        let is_transcript = relative.parent().is_some_and(|dir| dir == Path::new("transcripts"))
            && relative.extension().is_some_and(|ext| ext == "txt");
        let contents = match (relative.extension().and_then(|ext| ext.to_str()), String::from_utf8(bytes.clone())) {
            (Some("rs"), Ok(code)) => {
                let (code, found) = rename_declaration(&code, flow, &declaration, to);
                renamed |= found;
                code.replacen(&format!("`{flow}` v{from}"), &format!("`{flow}` v{to}"), 1).into_bytes()
            }
            (Some("txt"), Ok(text)) if is_transcript => {
                transcripts += 1;
                let header = format!("# Copied from {flow}@v{from} by `switchyard flows new`: edit as v{to} changes.\n");
                format!("{header}{}", text.replace(&format!("{flow}@v{from}"), &format!("{flow}@v{to}"))).into_bytes()
            }
            _ => bytes,
        };
        outputs.push((target.join(relative), contents));
    }
    if !renamed {
        return Err(format!(
            "{}: no `{declaration} ...)` to rename; copy the folder by hand",
            source.join("mod.rs").display()
        ));
    }
    if transcripts == 0 {
        let stub = format!(
            "# {flow}@v{to}: transcripts (format: crates/flows/tests/transcripts.rs).\n\
             # A stub: the transcript test fails until this file holds one.\n"
        );
        outputs.push((target.join("transcripts").join(format!("v{to}.txt")), stub.into_bytes()));
    }
    let mut written = Vec::new();
    for (path, contents) in outputs {
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(|problem| format!("{}: {problem}", parent.display()))?;
        }
        fs::write(&path, contents).map_err(|problem| format!("{}: {problem}", path.display()))?;
        written.push(path.strip_prefix(crate_dir).unwrap_or(&path).to_owned());
    }
    written.sort();
    Ok(Scaffolded { folder: target, files: written })
}

/// `VersionDecl::new("flow", M, Lifecycle::X)` -> `VersionDecl::new("flow", N, Lifecycle::Inactive)`.
fn rename_declaration(code: &str, flow: &str, declaration: &str, to: u32) -> (String, bool) {
    let Some(start) = code.find(declaration) else { return (code.to_owned(), false) };
    let rest = &code[start + declaration.len()..];
    let Some(close) = rest.find(')') else { return (code.to_owned(), false) };
    let replaced = format!("VersionDecl::new(\"{flow}\", {to}, Lifecycle::Inactive)");
    (format!("{}{replaced}{}", &code[..start], &rest[close + 1..]), true)
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let mut entries: Vec<PathBuf> = fs::read_dir(dir)?.map(|entry| entry.map(|entry| entry.path())).collect::<Result<_, _>>()?;
    entries.sort();
    for path in entries {
        if path.is_dir() {
            collect(&path, out)?;
        } else {
            out.push(path);
        }
    }
    Ok(())
}

/// The command: prints the files written, or one line naming the problem (exit 1).
pub fn run(spec: &str, from: &str, dir: &Path) -> ExitCode {
    let result = parse(spec, from).and_then(|(flow, to, from)| scaffold(dir, &flow, from, to));
    match result {
        Ok(scaffolded) => {
            println!("created {}", scaffolded.folder.display());
            for file in &scaffolded.files {
                println!("  {}", file.display());
            }
            println!("next: edit it, then `cargo test -p switchyard-flows` runs its transcripts");
            ExitCode::SUCCESS
        }
        Err(problem) => {
            super::report(&[problem]);
            ExitCode::from(super::INVALID)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A scratch copy of the real flows crate's `src` for one flow.
    fn scratch(name: &str, flow: &str) -> PathBuf {
        let root = std::env::temp_dir().join(format!("switchyard-scaffold-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        let real = Path::new(env!("CARGO_MANIFEST_DIR")).join("../flows/src").join(flow);
        copy_tree(&real, &root.join("src").join(flow));
        root
    }

    fn copy_tree(from: &Path, to: &Path) {
        fs::create_dir_all(to).unwrap();
        for entry in fs::read_dir(from).unwrap() {
            let path = entry.unwrap().path();
            let target = to.join(path.file_name().unwrap());
            if path.is_dir() {
                copy_tree(&path, &target);
            } else {
                fs::copy(&path, &target).unwrap();
            }
        }
    }

    fn tree(root: &Path) -> Vec<(PathBuf, Vec<u8>)> {
        let mut files = Vec::new();
        collect(root, &mut files).unwrap();
        files.into_iter().map(|path| (path.strip_prefix(root).unwrap().to_owned(), fs::read(&path).unwrap())).collect()
    }

    #[test]
    fn a_new_version_is_the_old_folder_renamed_and_nothing_else_changes() {
        let root = scratch("copy", "digital_certificate");
        let before = tree(&root);
        let made = scaffold(&root, "digital_certificate", 2, 9).expect("scaffolds");
        assert_eq!(made.folder, root.join("src/digital_certificate/v9"));
        let after = tree(&root);
        let old: Vec<_> = after.iter().filter(|(path, _)| !path.starts_with("src/digital_certificate/v9")).cloned().collect();
        assert_eq!(old, before, "only the new folder was written");
        let source = |path: &str| fs::read_to_string(root.join(path)).unwrap();
        let code = source("src/digital_certificate/v9/mod.rs");
        assert!(code.contains("VersionDecl::new(\"digital_certificate\", 9, Lifecycle::Inactive)"), "{code}");
        assert!(!code.contains("VersionDecl::new(\"digital_certificate\", 2,"));
        assert!(code.starts_with("//! `digital_certificate` v9"));
        assert_eq!(source("src/digital_certificate/v9/texts.txt"), source("src/digital_certificate/v2/texts.txt"));
        assert_eq!(source("src/digital_certificate/v9/words.rs"), source("src/digital_certificate/v2/words.rs"));
        let transcript = source("src/digital_certificate/v9/transcripts/purchase.txt");
        assert!(transcript.starts_with("# Copied from digital_certificate@v2"));
        assert!(transcript.ends_with(&source("src/digital_certificate/v2/transcripts/purchase.txt")));
        assert!(made.files.contains(&PathBuf::from("src/digital_certificate/v9/prompts/route.txt")));
        let _ = fs::remove_dir_all(&root);
    }

    #[test]
    fn the_active_version_copied_is_inactive_and_a_version_without_transcripts_gets_a_stub() {
        let root = scratch("stub", "unknown");
        // A source version without transcripts (the scratch copy's only).
        let _ = fs::remove_dir_all(root.join("src/unknown/v1/transcripts"));
        let made = scaffold(&root, "unknown", 1, 9).expect("scaffolds");
        let code = fs::read_to_string(root.join("src/unknown/v9/mod.rs")).unwrap();
        assert!(code.contains("VersionDecl::new(\"unknown\", 9, Lifecycle::Inactive)"), "{code}");
        assert!(!code.contains("Lifecycle::Active"));
        assert!(made.files.contains(&PathBuf::from("src/unknown/v9/transcripts/v9.txt")), "{:?}", made.files);
        let stub = fs::read_to_string(root.join("src/unknown/v9/transcripts/v9.txt")).unwrap();
        assert!(stub.contains("fails until this file holds one"), "{stub}");
        let _ = fs::remove_dir_all(&root);
    }

    #[test]
    fn refusals_name_the_problem_and_write_nothing() {
        let root = scratch("refuse", "billing");
        let before = tree(&root);
        let taken = scaffold(&root, "billing", 1, 2).expect_err("v2 exists");
        assert!(taken.contains("already exists") && taken.contains("billing@v2"), "{taken}");
        let missing = scaffold(&root, "billing", 7, 8).expect_err("no v7");
        assert!(missing.contains("no billing@v7 to copy"), "{missing}");
        assert_eq!(tree(&root), before);
        assert!(parse("billing", "v1").unwrap_err().contains("FLOW@vN"));
        assert!(parse("billing@3", "v1").unwrap_err().contains("version '3'"));
        assert!(parse("billing@v3", "1").unwrap_err().contains("--from '1'"));
        assert_eq!(parse("billing@v3", "v2"), Ok(("billing".to_owned(), 3, 2)));
        let _ = fs::remove_dir_all(&root);
    }
}
