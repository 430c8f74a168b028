//! `eval-classifier`: how well a version's classifiers label the evaluation
//! sets (`crates/flows/eval/classifier.tsv` and `first_messages.tsv`,
//! real-looking pt-BR customer messages with typos, missing accents, slang
//! and mixed intents). Both are held out: no message in them is in a
//! version's `examples/*.tsv`, so the trained classifier is scored only on
//! text it never saw (a test below checks it).
//!
//! A message's label is `flow/subroute` (`digital_certificate/renewal`),
//! `flow/topic` (`general_support/hours`), `human`, or `none` (nothing to
//! route: a bare greeting). The entry flow (`unknown`) is scored on the flow
//! part of every label; any other flow on the second part of its own labels.

use std::collections::BTreeMap;

use serde_json::{json, Value};
use switchyard_engine::classify::Task;

/// One labelled message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Case {
    pub line: usize,
    pub label: String,
    pub text: String,
}

/// Parses `label<TAB>message` lines; `#` starts a comment line.
pub fn parse_cases(source: &str) -> Result<Vec<Case>, String> {
    let mut cases = Vec::new();
    for (idx, raw) in source.lines().enumerate() {
        let line = idx + 1;
        if raw.trim().is_empty() || raw.starts_with('#') {
            continue;
        }
        let (label, text) = raw.split_once('\t').ok_or_else(|| format!("line {line}: expected 'label<TAB>message'"))?;
        if text.trim().is_empty() {
            return Err(format!("line {line}: label '{label}' has no message"));
        }
        cases.push(Case { line, label: label.trim().to_owned(), text: text.to_owned() });
    }
    Ok(cases)
}

/// The class `case` should get from a task of `flow`, or `None` when the
/// case is not about that flow.
pub fn expected<'a>(flow: &str, entry_flow: &str, case: &'a Case) -> Option<&'a str> {
    let (case_flow, sub) = match case.label.split_once('/') {
        Some((case_flow, sub)) => (case_flow, Some(sub)),
        None => (case.label.as_str(), None),
    };
    if flow == entry_flow {
        return Some(case_flow);
    }
    if case_flow == flow { sub } else { None }
}

/// The scores of one classifier over a set of (expected, predicted) pairs;
/// `lines` are the pairs' line numbers in the set, listed for the misses.
pub fn score(name: &str, pairs: &[(&str, String)], lines: &[usize]) -> Value {
    let correct = pairs.iter().filter(|(expected, predicted)| expected == predicted).count();
    let mut per_class: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    let mut confusions: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    for (expected, predicted) in pairs {
        let entry = per_class.entry(expected).or_default();
        entry.1 += 1;
        if expected == predicted {
            entry.0 += 1;
        } else {
            *confusions.entry((expected, predicted.as_str())).or_default() += 1;
        }
    }
    let mut confusions: Vec<((&str, &str), usize)> = confusions.into_iter().collect();
    confusions.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let ratio = |correct: usize, total: usize| if total == 0 { 0.0 } else { correct as f64 / total as f64 };
    json!({
        "classifier": name,
        "correct": correct,
        "total": pairs.len(),
        "accuracy": ratio(correct, pairs.len()),
        "per_class": per_class.iter().map(|(class, (correct, total))| json!({
            "class": class, "correct": correct, "total": total, "accuracy": ratio(*correct, *total),
        })).collect::<Vec<_>>(),
        "misses": pairs.iter().zip(lines).filter(|((expected, predicted), _)| expected != predicted).map(|((expected, predicted), line)| json!({
            "line": line, "expected": expected, "predicted": predicted,
        })).collect::<Vec<_>>(),
        "confusions": confusions.iter().map(|((expected, predicted), count)| json!({
            "expected": expected, "predicted": predicted, "count": count,
        })).collect::<Vec<_>>(),
    })
}

/// What the keyword classifier of `task` says, as a class name (`none` for nothing).
pub fn keyword_class(task: &Task, text: &str) -> String {
    task.keywords.and_then(|keywords| keywords(text)).unwrap_or("none").to_owned()
}

/// The evaluation set `crates/flows/eval/classifier.tsv` compiled into the binary.
pub fn cases() -> Result<Vec<Case>, String> {
    parse_cases(switchyard_flows::EVAL_SET).map_err(|problem| format!("crates/flows/eval/classifier.tsv: {problem}"))
}

/// Every evaluation set compiled into the binary: (its path, its cases).
pub fn sets() -> Result<Vec<(&'static str, Vec<Case>)>, String> {
    switchyard_flows::EVAL_SETS
        .iter()
        .map(|(path, source)| parse_cases(source).map(|cases| (*path, cases)).map_err(|problem| format!("crates/flows/{path}: {problem}")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_map_to_the_flow_for_the_entry_flow_and_to_the_subroute_otherwise() {
        let case = |label: &str| Case { line: 1, label: label.to_owned(), text: "x".to_owned() };
        assert_eq!(expected("unknown", "unknown", &case("billing/invoice")), Some("billing"));
        assert_eq!(expected("unknown", "unknown", &case("none")), Some("none"));
        assert_eq!(expected("billing", "unknown", &case("billing/invoice")), Some("invoice"));
        assert_eq!(expected("billing", "unknown", &case("digital_certificate/renewal")), None);
        assert_eq!(expected("billing", "unknown", &case("human")), None);
    }

    /// A label that no classifier can produce (a typo, a renamed subroute)
    /// would count as a miss for ever: every label must be a class of the
    /// tasks that read it.
    #[test]
    fn every_label_in_the_set_is_a_class_of_the_tasks_that_read_it() {
        let registry = switchyard_flows::registry(&switchyard_flows::Deps::demo()).expect("valid flows");
        assert!(cases().expect("the set parses").len() >= 150);
        let cases: Vec<Case> = sets().expect("the sets parse").into_iter().flat_map(|(_, cases)| cases).collect();
        for fv in registry.all() {
            for task in fv.tasks().iter().filter(|task| !task.classes().is_empty()) {
                for case in &cases {
                    if let Some(expected) = expected(fv.flow().as_str(), "unknown", case) {
                        assert!(
                            expected == "none" || task.classes().contains(&expected),
                            "line {}: label '{}' is not a class of {} task '{}' ({:?})",
                            case.line, case.label, fv.label(), task.name, task.classes()
                        );
                    }
                }
            }
        }
    }

    /// The evaluation sets stay held out: a message (accents, case and
    /// punctuation folded) that is also a training example would score the
    /// trained classifier on its own training data.
    #[test]
    fn no_evaluation_message_is_a_training_example() {
        let registry = switchyard_flows::registry(&switchyard_flows::Deps::demo()).expect("valid flows");
        let sets = sets().expect("the sets parse");
        let mut trained_on = 0;
        for fv in registry.all() {
            for trained in fv.weighed() {
                let examples = switchyard_engine::trained::parse_examples(trained.weighing.examples).expect("parses");
                trained_on += examples.len();
                let seen: std::collections::HashSet<String> =
                    examples.iter().map(|example| switchyard_engine::text::normalize(&example.text)).collect();
                for (path, cases) in &sets {
                    for case in cases {
                        assert!(
                            !seen.contains(&switchyard_engine::text::normalize(&case.text)),
                            "{path}:{}: '{}' is also in {}'s {}",
                            case.line, case.text, fv.label(), trained.weighing.file
                        );
                    }
                }
            }
        }
        assert!(trained_on >= 300, "{trained_on} training examples checked");
        for (idx, (path, cases)) in sets.iter().enumerate() {
            for (other, other_cases) in &sets[idx + 1..] {
                for case in cases {
                    let text = switchyard_engine::text::normalize(&case.text);
                    assert!(!other_cases.iter().any(|o| switchyard_engine::text::normalize(&o.text) == text), "{path}:{} is also in {other}", case.line);
                }
            }
        }
    }

    #[test]
    fn score_counts_accuracy_per_class_and_confusions() {
        let pairs = vec![("a", "a".to_owned()), ("a", "b".to_owned()), ("b", "b".to_owned()), ("a", "b".to_owned())];
        let scored = score("keyword", &pairs, &[1, 2, 3, 4]);
        assert_eq!(scored["correct"], 2);
        assert_eq!(scored["accuracy"], 0.5);
        assert_eq!(scored["per_class"][0], json!({"class": "a", "correct": 1, "total": 3, "accuracy": 1.0 / 3.0}));
        assert_eq!(scored["confusions"], json!([{"expected": "a", "predicted": "b", "count": 2}]));
        assert_eq!(scored["misses"][1], json!({"line": 4, "expected": "a", "predicted": "b"}));
        assert!(parse_cases("billing/invoice\n").unwrap_err().contains("line 1"));
    }
}
