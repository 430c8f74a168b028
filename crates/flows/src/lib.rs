//! The versioned conversation flows of the reference deployment (a Brazilian
//! digital-certificate seller), one folder per version.
//!
//! # Layout
//! - `src/<flow>/v<N>/mod.rs`: a version's steps; `texts.txt` (and prompts)
//!   beside it, embedded at build time. A released folder is never edited:
//!   changes go in a new `v<N+1>/`.
//! - `src/<flow>/v<N>/transcripts/*.txt`: conversations the version must
//!   hold; `src/<flow>/transcripts/*.txt`: conversations several versions of
//!   a flow share. `tests/transcripts/` runs them and documents the format.
//! - [`shared`]: validators and helpers the versions use (CPF, CNPJ, e-mail,
//!   dates, money, order numbers) and the back office trait with its
//!   deterministic demo ([`shared::backend`]), reached through [`Deps`].
//! - `build.rs`: finds every version folder, generates the registry list and
//!   fingerprints each version (its folder but `transcripts/`, + the shared
//!   modules it names); for a version that calls `typed_texts`, it also
//!   generates `texts`: one constant per key of its `texts.txt`
//!   (`[route.prompt]` -> `ROUTE_PROMPT`). [`lock`]: `versions.lock`, the
//!   released versions.
//!
//! | flow | versions | steps |
//! |---|---|---|
//! | `unknown` | v1 (active) | 2 |
//! | `general_support` | v1 (active) | 3 |
//! | `billing` | v1 (active), v2 (inactive, invoice season) | 2 / 7 |
//! | `digital_certificate` | v1 (active), v2 (inactive, the rewrite), v3 (inactive, the conversational purchase), v4 (inactive, v3's routing calling one flow per subroute) | 16 / 13 / 9 / 6 |
//! | `dc_purchase` | v1 (active, only reached by a call), v2 (inactive, shorter questions) | 1 / 1 |
//! | `dc_renewal` | v1 (active, called by v4; calls `dc_purchase` when a certificate cannot be renewed) | 3 |
//! | `dc_support`, `dc_requirements`, `dc_status` | v1 (active, called by v4) | 2 / 1 / 1 |

use std::sync::Arc;

use switchyard_engine::flow::VersionDecl;
use switchyard_engine::registry::{Registry, RegistryError};

use crate::shared::backend::{Backend, DemoBackend};

pub mod functions;
pub mod lock;
pub mod shared;
pub mod transcript;

mod generated {
    include!(concat!(env!("OUT_DIR"), "/versions.rs"));
}

/// The labelled classifier evaluation set: `label<TAB>message` lines (see
/// `switchyard eval-classifier`). Kept outside the version folders, so
/// editing it changes no fingerprint.
pub const EVAL_SET: &str = include_str!("../eval/classifier.tsv");

/// Held-out free-text first messages, labelled like [`EVAL_SET`]; entry
/// routing is scored on them too. Like every evaluation set, none of its
/// messages is in a version's `examples/*.tsv`.
pub const EVAL_FIRST_MESSAGES: &str = include_str!("../eval/first_messages.tsv");

/// Every evaluation set: (path relative to the crate, contents).
pub const EVAL_SETS: &[(&str, &str)] = &[("eval/classifier.tsv", EVAL_SET), ("eval/first_messages.tsv", EVAL_FIRST_MESSAGES)];

/// What flow versions may use besides their own folder.
#[derive(Clone, Debug)]
pub struct Deps {
    /// The back office: prices, orders, certificates, invoices.
    pub backend: Arc<dyn Backend>,
}

impl Deps {
    /// The deterministic demo deployment (see [`shared::backend`] for its data).
    /// Each call has its own demo back office, so orders created through one
    /// registry are not seen by another.
    pub fn demo() -> Deps {
        Deps { backend: Arc::new(DemoBackend::new()) }
    }
}

impl Default for Deps {
    fn default() -> Deps {
        Deps::demo()
    }
}

/// Every compiled version's declaration, with its fingerprint.
pub fn declarations(deps: &Deps) -> Vec<VersionDecl> {
    generated::declared(deps)
}

/// (flow, version, folder, fingerprint) of every compiled version.
pub fn folders() -> &'static [(&'static str, u32, &'static str, &'static str)] {
    generated::FOLDERS
}

/// The validated registry of every compiled version.
pub fn registry(deps: &Deps) -> Result<Registry, Vec<RegistryError>> {
    Registry::new(declarations(deps))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::Path;

    use switchyard_engine::flow::Lifecycle;
    use switchyard_engine::ids::Version;

    use super::*;

    fn checked() -> Registry {
        match registry(&Deps::demo()) {
            Ok(registry) => registry,
            Err(errors) => {
                panic!("registry errors:\n{}", errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))
            }
        }
    }

    #[test]
    fn the_demo_registry_validates_without_errors() {
        let registry = checked();
        let labels: Vec<String> = registry.all().iter().map(|fv| fv.label()).collect();
        assert_eq!(
            labels,
            [
                "billing@v1",
                "billing@v2",
                "billing@v3",
                "dc_purchase@v1",
                "dc_purchase@v2",
                "dc_renewal@v1",
                "dc_requirements@v1",
                "dc_status@v1",
                "dc_support@v1",
                "digital_certificate@v1",
                "digital_certificate@v2",
                "digital_certificate@v3",
                "digital_certificate@v4",
                "general_support@v1",
                "unknown@v1",
                "unknown@v2",
            ]
        );
    }

    #[test]
    fn step_counts_subroutes_and_lifecycles_match_the_product_design() {
        let registry = checked();
        let shape = |flow: &str, version: u32| {
            let fv =
                registry.get(flow, Version::new(version)).unwrap_or_else(|| panic!("{flow}@v{version} is compiled"));
            (fv.steps().len(), fv.subroutes().to_vec(), fv.lifecycle())
        };
        assert_eq!(shape("unknown", 1), (2, vec![], Lifecycle::Active));
        assert_eq!(shape("unknown", 2), (2, vec![], Lifecycle::Inactive));
        assert_eq!(shape("general_support", 1), (3, vec![], Lifecycle::Active));
        assert_eq!(shape("billing", 1), (2, vec!["invoice"], Lifecycle::Active));
        assert_eq!(
            shape("billing", 2),
            (7, vec!["invoice", "payment_plan", "payment_confirmation"], Lifecycle::Inactive)
        );
        assert_eq!(
            shape("digital_certificate", 1),
            (16, vec!["purchase", "renewal", "support", "requirements", "status"], Lifecycle::Active)
        );
        assert_eq!(
            shape("digital_certificate", 2),
            (13, vec!["purchase", "renewal", "support", "requirements", "status"], Lifecycle::Inactive)
        );
        assert_eq!(
            shape("digital_certificate", 3),
            (9, vec!["purchase", "renewal", "support", "requirements", "status"], Lifecycle::Inactive)
        );
        // v4 routes and calls: each subroute is a flow of its own (v3's code).
        assert_eq!(shape("digital_certificate", 4), (6, vec![], Lifecycle::Inactive));
        assert_eq!(shape("dc_purchase", 1), (1, vec!["purchase"], Lifecycle::Active));
        assert_eq!(shape("dc_renewal", 1), (3, vec!["renewal"], Lifecycle::Active));
        assert_eq!(shape("dc_support", 1), (2, vec!["support"], Lifecycle::Active));
        assert_eq!(shape("dc_requirements", 1), (1, vec!["requirements"], Lifecycle::Active));
        assert_eq!(shape("dc_status", 1), (1, vec!["status"], Lifecycle::Active));
        let purchase: Vec<&str> = registry
            .get("digital_certificate", Version::new(2))
            .map(|fv| fv.steps().iter().map(|step| step.id).filter(|id| id.starts_with("purchase.")).collect())
            .unwrap_or_default();
        assert_eq!(purchase, ["purchase.choose_product", "purchase.collect_details", "purchase.confirm_order"]);
    }

    #[test]
    fn every_version_has_a_fingerprint_and_a_folder() {
        let registry = checked();
        for fv in registry.all() {
            assert_eq!(fv.fingerprint().as_str().len(), 64, "{}", fv.label());
        }
        assert_eq!(folders().len(), registry.all().len());
    }

    /// A text no step declares is dead: a leftover of an edit, or a key the
    /// code spells differently (which the registry would not notice). For a
    /// version with typed texts, the code must name each key's constant.
    #[test]
    fn every_text_in_texts_txt_is_used_by_some_step() {
        let registry = checked();
        for (flow, version, folder, _) in folders() {
            let fv = registry.get(flow, Version::new(*version)).expect("compiled");
            let Some(keys) = fv.typed_texts() else { continue };
            let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(folder);
            let code: String = std::fs::read_dir(&dir)
                .expect("version folder")
                .filter_map(Result::ok)
                .map(|entry| entry.path())
                .filter(|path| path.extension().is_some_and(|ext| ext == "rs"))
                .map(|path| std::fs::read_to_string(path).unwrap_or_default())
                .collect();
            for key in keys {
                let constant: String =
                    key.chars().map(|ch| if ch.is_ascii_alphanumeric() { ch.to_ascii_uppercase() } else { '_' }).collect();
                assert!(code.contains(&constant), "{}: texts.txt defines '{key}', which no code names ({constant})", fv.label());
            }
        }
        for fv in registry.all().iter().filter(|fv| fv.typed_texts().is_none()) {
            let used: BTreeSet<&str> = fv.steps().iter().flat_map(|step| step.handler.text_keys()).collect();
            let unused: Vec<&str> = fv.texts().keys().filter(|key| !used.contains(key)).collect();
            assert!(unused.is_empty(), "{}: texts.txt defines texts no step uses: {unused:?}", fv.label());
        }
    }

    /// Every prompt file in a version folder is a declared task (embedded,
    /// sent, in the snapshot), and every task's prompt is a file there.
    #[test]
    fn every_prompt_file_is_a_declared_task_of_its_version() {
        let registry = checked();
        for (flow, version, folder, _) in folders() {
            let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(folder).join("prompts");
            let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
                .map(|entries| entries.filter_map(Result::ok).map(|entry| format!("prompts/{}", entry.file_name().to_string_lossy())).collect())
                .unwrap_or_default();
            on_disk.sort();
            let fv = registry.get(flow, Version::new(*version)).expect("compiled");
            let mut declared: Vec<String> = fv.tasks().iter().map(|task| task.file.to_owned()).collect();
            declared.sort();
            assert_eq!(on_disk, declared, "{flow}@v{version}");
            for task in fv.tasks() {
                let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(folder).join(task.file)).unwrap();
                assert_eq!(text, task.prompt, "{flow}@v{version}: {} is embedded as written", task.file);
            }
        }
    }

    /// Every examples file in a version folder trains a declared weighed
    /// task (embedded, fingerprinted, in the snapshot), and every weighed
    /// task's examples are a file there.
    #[test]
    fn every_examples_file_is_a_weighed_task_of_its_version() {
        let registry = checked();
        for (flow, version, folder, _) in folders() {
            let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(folder).join("examples");
            let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
                .map(|entries| entries.filter_map(Result::ok).map(|entry| format!("examples/{}", entry.file_name().to_string_lossy())).collect())
                .unwrap_or_default();
            on_disk.sort();
            let fv = registry.get(flow, Version::new(*version)).expect("compiled");
            let mut declared: Vec<String> = fv.weighed().iter().map(|trained| trained.weighing.file.to_owned()).collect();
            declared.sort();
            assert_eq!(on_disk, declared, "{flow}@v{version}");
            for trained in fv.weighed() {
                let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(folder).join(trained.weighing.file);
                assert_eq!(std::fs::read_to_string(path).unwrap(), trained.weighing.examples, "{flow}@v{version}");
                assert!(fv.files().iter().any(|(name, _)| *name == trained.weighing.file), "{flow}@v{version}: in the snapshot");
            }
        }
    }

    /// Shared modules named in `text` as `shared::<name>`.
    fn named_shared_modules(text: &str) -> BTreeSet<String> {
        text.split("shared::")
            .skip(1)
            .map(|rest| rest.chars().take_while(|ch| ch.is_ascii_alphanumeric() || *ch == '_').collect::<String>())
            .filter(|name| !name.is_empty())
            .collect()
    }

    /// The build fingerprints a version with the shared modules its folder
    /// names, not with what those modules use in turn; a version that only
    /// reached `shared::money` through `shared::backend` would keep its
    /// fingerprint when `money.rs` changed. So each version names them all.
    #[test]
    fn every_version_names_every_shared_module_it_depends_on() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let read = |path: &Path| {
            std::fs::read_to_string(path).unwrap_or_else(|problem| panic!("{}: {problem}", path.display()))
        };
        for (flow, version, folder, _) in folders() {
            let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(folder);
            let mut named = BTreeSet::new();
            for entry in std::fs::read_dir(&dir).unwrap_or_else(|problem| panic!("{}: {problem}", dir.display())) {
                let path = entry.map(|entry| entry.path()).unwrap_or_default();
                if path.extension().is_some_and(|ext| ext == "rs") {
                    named.extend(named_shared_modules(&read(&path)));
                }
            }
            let mut needed = named.clone();
            let mut queue: Vec<String> = named.iter().cloned().collect();
            while let Some(module) = queue.pop() {
                let path = src.join("shared").join(format!("{module}.rs"));
                for dependency in named_shared_modules(&read(&path)) {
                    if needed.insert(dependency.clone()) {
                        queue.push(dependency);
                    }
                }
            }
            let missing: Vec<&String> = needed.difference(&named).collect();
            assert!(
                missing.is_empty(),
                "{flow}@v{version} does not name (and so is not fingerprinted with) {missing:?}"
            );
        }
    }
}
