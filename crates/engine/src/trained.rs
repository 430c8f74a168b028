//! An offline text classifier trained from labelled examples, and the
//! weighed decision that combines it with the keywords and the model.
//!
//! # The classifier
//! Multinomial logistic regression over tf-idf weighted features: the words
//! of the normalised text (accents, case and punctuation folded), word
//! pairs, and the character 3- to 5-grams of each word padded with spaces,
//! so that "renova", "renovar" and "renovaçao" share most of their features
//! and a typo costs one or two n-grams instead of the whole word. It trains
//! from `label<TAB>message` lines kept in the version folder
//! (`examples/<task>.tsv`, part of the fingerprint) when the registry is
//! built: a few hundred examples take milliseconds, nothing is downloaded,
//! and training is deterministic (fixed example order, fixed shuffle seed),
//! so the same folder always yields the same classifier.
//!
//! Why our own and not linfa (measured on this machine, 2 cores, in an
//! earlier session of this issue): adding `linfa` + `linfa-logistic` /
//! `linfa-bayes` cost 22–26 s of build time for the engine's dependency
//! tree (ndarray, argmin, num); they take dense matrices (thousands of
//! n-gram columns per row, nearly all zero); and linfa-bayes' released
//! version still had a leftover `dbg!` in its fit. The model here is ~150
//! lines of sparse arithmetic with tests beside it.
//!
//! # The weighed decision
//! [`weigh`] turns the evidence into one class: the trained probabilities,
//! plus [`KEYWORD_WEIGHT`] for the keywords' class, plus [`MODEL_WEIGHT`]
//! for the model's. A weak keyword hit ("emitir", "quanto fica",
//! "comprovante") therefore wins only when the trained classifier does not
//! clearly prefer something else; a match that leaves no doubt (a menu
//! number, an exact product name) is decided by the step before weighing.
//! When the offline evidence is not clear (the best score is less than
//! [`CLEAR_MARGIN`] ahead), the model is asked, if one is configured.

use std::collections::BTreeSet;

use crate::hash::FastMap;
use std::sync::{Arc, Mutex, OnceLock};

use crate::classify::{Classifier, Keywords, Task};
use crate::text::normalize;

/// The class a task's examples use for "nothing to decide" (a bare greeting).
pub const NONE: &str = "none";

/// What a keyword hit adds to its class's trained probability (in `[0, 1]`).
/// Below 0.5, a trained probability of 0.9 for another class beats a keyword
/// hit the classifier gives nothing to.
pub const KEYWORD_WEIGHT: f32 = 0.35;
/// What the model's answer adds to its class: it outweighs a keyword hit and
/// an unsure classifier, not both agreeing against it.
pub const MODEL_WEIGHT: f32 = 0.8;
/// The lead the best offline score needs over the second for the model not
/// to be asked.
pub const CLEAR_MARGIN: f32 = 0.45;
/// The least score a class needs to be chosen: below it the evidence is
/// too thin (text about nothing the examples cover spreads its probability
/// over every class) and the answer is `none`, as for a greeting.
pub const DECIDE_AT: f32 = 0.5;

/// One labelled example.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Example {
    pub line: usize,
    pub label: String,
    pub text: String,
}

/// Parses `label<TAB>message` lines; blank lines and lines starting with `#`
/// are skipped. Errors name the line.
pub fn parse_examples(source: &str) -> Result<Vec<Example>, String> {
    let mut examples = Vec::new();
    for (idx, raw) in source.lines().enumerate() {
        let line = idx + 1;
        if raw.trim().is_empty() || raw.starts_with('#') {
            continue;
        }
        let (label, text) = raw.split_once('\t').ok_or_else(|| format!("line {line}: expected 'label<TAB>message'"))?;
        let label = label.trim();
        if label.is_empty() || text.trim().is_empty() {
            return Err(format!("line {line}: both a label and a message are needed"));
        }
        examples.push(Example { line, label: label.to_owned(), text: text.to_owned() });
    }
    Ok(examples)
}

/// Training settings, chosen by 5-fold cross-validation on unknown@v2's
/// examples (not on the evaluation sets). Fixed: a change of them is a change of every trained
/// version's behaviour, so it belongs with a re-run of `eval-classifier`.
const EPOCHS: usize = 20;
const LEARNING_RATE: f32 = 1.0;
/// L2 shrink applied to every weight once per epoch.
const DECAY: f32 = 0.002;
const SEED: u64 = 0x005e_edc1_a551_f1e4;

/// A trained classifier.
#[derive(Clone, Debug)]
pub struct Trained {
    /// Sorted label names.
    classes: Vec<String>,
    /// Feature hash -> column (FxHash: the keys are FNV hashes already).
    columns: FastMap<u64, u32>,
    /// Inverse document frequency per column.
    idf: Vec<f32>,
    /// `columns x classes`, row-major.
    weights: Vec<f32>,
    bias: Vec<f32>,
}

impl Trained {
    /// Trains on `examples`. Fails on fewer than two labels.
    pub fn train(examples: &[Example]) -> Result<Trained, String> {
        let classes: Vec<String> = examples.iter().map(|example| example.label.clone()).collect::<BTreeSet<_>>().into_iter().collect();
        if classes.len() < 2 {
            return Err(format!("{} example(s) with {} label(s): at least two labels are needed", examples.len(), classes.len()));
        }
        let grams: Vec<Vec<(u64, f32)>> = examples.iter().map(|example| counted(&example.text)).collect();
        // Columns in first-seen order over the file: deterministic.
        let mut columns: FastMap<u64, u32> = FastMap::default();
        let mut order: Vec<u64> = Vec::new();
        let mut document_frequency: Vec<u32> = Vec::new();
        for doc in &grams {
            for (gram, _) in doc {
                let next = order.len() as u32;
                let column = *columns.entry(*gram).or_insert_with(|| {
                    order.push(*gram);
                    document_frequency.push(0);
                    next
                });
                document_frequency[column as usize] += 1;
            }
        }
        let docs = grams.len() as f32;
        let idf: Vec<f32> = document_frequency.iter().map(|df| ((1.0 + docs) / (1.0 + *df as f32)).ln() + 1.0).collect();
        let mut model = Trained { classes, columns, idf, weights: Vec::new(), bias: Vec::new() };
        let rows: Vec<Vec<(u32, f32)>> = grams.iter().map(|doc| model.vector(doc)).collect();
        let targets: Vec<usize> = examples
            .iter()
            .map(|example| model.classes.iter().position(|class| *class == example.label).unwrap_or(0))
            .collect();
        model.fit(&rows, &targets);
        Ok(model)
    }

    /// Parses and trains in one go.
    pub fn from_tsv(source: &str) -> Result<Trained, String> {
        Trained::train(&parse_examples(source)?)
    }

    /// The labels it chooses between, sorted.
    pub fn classes(&self) -> &[String] {
        &self.classes
    }

    /// The probability of each class (in [`Trained::classes`] order).
    pub fn probabilities(&self, text: &str) -> Vec<f32> {
        let row = self.vector(&counted(text));
        softmax(&self.logits(&row))
    }

    /// The most probable class and its probability.
    pub fn predict(&self, text: &str) -> (&str, f32) {
        let probabilities = self.probabilities(text);
        let best = argmax(&probabilities);
        (&self.classes[best], probabilities[best])
    }

    /// tf-idf weights of the known features, L2-normalised.
    fn vector(&self, counts: &[(u64, f32)]) -> Vec<(u32, f32)> {
        let mut row: Vec<(u32, f32)> = counts
            .iter()
            .filter_map(|(gram, count)| {
                self.columns.get(gram).map(|column| (*column, (1.0 + count.ln()) * self.idf[*column as usize]))
            })
            .collect();
        let norm = row.iter().map(|(_, value)| value * value).sum::<f32>().sqrt();
        if norm > 0.0 {
            row.iter_mut().for_each(|(_, value)| *value /= norm);
        }
        row
    }

    fn logits(&self, row: &[(u32, f32)]) -> Vec<f32> {
        let k = self.classes.len();
        let mut logits = self.bias.clone();
        for (column, value) in row {
            let weights = &self.weights[*column as usize * k..(*column as usize + 1) * k];
            logits.iter_mut().zip(weights).for_each(|(logit, weight)| *logit += weight * value);
        }
        logits
    }

    /// Stochastic gradient descent on the cross-entropy, shuffled with a
    /// fixed seed, with a learning rate that decays per epoch.
    fn fit(&mut self, rows: &[Vec<(u32, f32)>], targets: &[usize]) {
        let k = self.classes.len();
        self.weights = vec![0.0; self.idf.len() * k];
        self.bias = vec![0.0; k];
        let mut order: Vec<usize> = (0..rows.len()).collect();
        let mut state = SEED;
        for epoch in 0..EPOCHS {
            shuffle(&mut order, &mut state);
            let rate = LEARNING_RATE / (1.0 + epoch as f32 * 0.1);
            for &idx in &order {
                let mut gradient = softmax(&self.logits(&rows[idx]));
                gradient[targets[idx]] -= 1.0;
                for (column, value) in &rows[idx] {
                    let weights = &mut self.weights[*column as usize * k..(*column as usize + 1) * k];
                    weights.iter_mut().zip(&gradient).for_each(|(weight, g)| *weight -= rate * g * value);
                }
                self.bias.iter_mut().zip(&gradient).for_each(|(bias, g)| *bias -= rate * g);
            }
            let shrink = 1.0 - DECAY * rate;
            self.weights.iter_mut().for_each(|weight| *weight *= shrink);
        }
    }
}

/// Each feature of `text` with its count, in first-seen order.
fn counted(text: &str) -> Vec<(u64, f32)> {
    let mut counts: Vec<(u64, f32)> = Vec::new();
    // Where each feature is in `counts`: a text has a few hundred features,
    // too many to find each one by scanning the list.
    let mut seen: FastMap<u64, usize> = FastMap::default();
    let mut add = |gram: u64| match seen.entry(gram) {
        std::collections::hash_map::Entry::Occupied(slot) => counts[*slot.get()].1 += 1.0,
        std::collections::hash_map::Entry::Vacant(slot) => {
            slot.insert(counts.len());
            counts.push((gram, 1.0));
        }
    };
    let normalized = normalize(text);
    let words: Vec<&str> = normalized.split(' ').filter(|word| !word.is_empty()).collect();
    let mut padded: Vec<char> = Vec::new();
    for (idx, word) in words.iter().enumerate() {
        add(hash(b'w', word.chars()));
        if let Some(next) = words.get(idx + 1) {
            add(hash(b'b', word.chars().chain(std::iter::once('\0')).chain(next.chars())));
        }
        padded.clear();
        padded.push(' ');
        padded.extend(word.chars());
        padded.push(' ');
        for n in 3..=5 {
            for window in padded.windows(n) {
                add(hash(b'c', window.iter().copied()));
            }
        }
    }
    counts
}

/// FNV-1a over a kind tag and the characters, so a word and a character
/// n-gram with the same letters are different features.
fn hash(kind: u8, chars: impl Iterator<Item = char>) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |value: u32| {
        for byte in value.to_le_bytes() {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    };
    eat(u32::from(kind));
    chars.for_each(|ch| eat(u32::from(ch)));
    hash
}

fn softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exps: Vec<f32> = logits.iter().map(|logit| (logit - max).exp()).collect();
    let sum: f32 = exps.iter().sum();
    exps.iter().map(|value| value / sum).collect()
}

/// The first index of the largest value.
fn argmax(values: &[f32]) -> usize {
    values.iter().enumerate().fold(0, |best, (idx, value)| if *value > values[best] { idx } else { best })
}

/// Fisher–Yates with xorshift64: deterministic, no dependency.
fn shuffle(order: &mut [usize], state: &mut u64) {
    for idx in (1..order.len()).rev() {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        order.swap(idx, (*state % (idx as u64 + 1)) as usize);
    }
}

/// The classifier trained on `examples`, trained once per process: registries
/// are built many times (every test, every command) from the same embedded
/// files.
pub fn shared(examples: &'static str) -> Result<Arc<Trained>, String> {
    /// (address, length) of the examples, and what they trained.
    type Cache = Mutex<Vec<(usize, usize, Arc<Trained>)>>;
    static CACHE: OnceLock<Cache> = OnceLock::new();
    let key = (examples.as_ptr() as usize, examples.len());
    let cache = CACHE.get_or_init(|| Mutex::new(Vec::new()));
    if let Some((_, _, trained)) = cache.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).iter().find(|(ptr, len, _)| (*ptr, *len) == key) {
        return Ok(Arc::clone(trained));
    }
    let trained = Arc::new(Trained::from_tsv(examples)?);
    cache.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).push((key.0, key.1, Arc::clone(&trained)));
    Ok(trained)
}

/// A classification task decided by weighing evidence, as a version declares
/// it ([`crate::flow::VersionDecl::weighed`]).
#[derive(Clone, Copy)]
pub struct Weighing {
    pub task: Task,
    /// The examples' file name in the version folder (`examples/route.tsv`).
    pub file: &'static str,
    /// Its contents, embedded (part of the fingerprint).
    pub examples: &'static str,
    /// Matches that leave no doubt and decide at once (an exact product or
    /// menu name). `None`: every text is weighed.
    pub sure: Option<Keywords>,
}

/// A weighed task with its trained classifier, in a checked version.
#[derive(Clone)]
pub struct TrainedTask {
    pub weighing: Weighing,
    pub model: Arc<Trained>,
    /// The task's class for each of the model's classes (`none` included).
    classes: Vec<&'static str>,
}

impl std::fmt::Debug for TrainedTask {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrainedTask").field("task", &self.weighing.task.name).field("classes", &self.classes).finish()
    }
}

impl TrainedTask {
    /// Trains (or reuses) the classifier of `weighing`; every label in its
    /// examples must be a class of the task or `none`.
    pub fn new(weighing: Weighing) -> Result<TrainedTask, String> {
        let model = shared(weighing.examples).map_err(|problem| format!("{}: {problem}", weighing.file))?;
        let mut classes = Vec::new();
        for label in model.classes() {
            match weighing.task.classes().iter().chain(std::iter::once(&NONE)).find(|class| **class == label.as_str()) {
                Some(class) => classes.push(*class),
                None => {
                    return Err(format!(
                        "{}: label '{label}' is not a class of task '{}' ({} or none)",
                        weighing.file,
                        weighing.task.name,
                        weighing.task.classes().join(", ")
                    ))
                }
            }
        }
        Ok(TrainedTask { weighing, model, classes })
    }

    /// The trained classifier alone: its best class (`None` for `none`).
    pub fn predict(&self, text: &str) -> Option<&'static str> {
        let probabilities = self.model.probabilities(text);
        let class = self.classes[argmax(&probabilities)];
        (class != NONE).then_some(class)
    }

    /// The decision from everything but the model, or with the model's
    /// class when it answered (`Some("none")` included). The same function
    /// runs in the step and in `eval-classifier`.
    pub fn decide(&self, text: &str, model: Option<&str>) -> Weighed {
        let task = &self.weighing.task;
        let keyword = task.keywords.and_then(|keywords| keywords(text));
        if let Some(sure) = self.weighing.sure.and_then(|sure| sure(text)) {
            return Weighed { class: Some(sure), by: Classifier::Keyword, clear: true };
        }
        if !crate::classify::worth_asking(text) {
            return Weighed { class: keyword, by: Classifier::Keyword, clear: true };
        }
        let probabilities = self.model.probabilities(text);
        let trained: Vec<(&'static str, f32)> = self.classes.iter().copied().zip(probabilities).collect();
        let model = model.and_then(|said| task.classes().iter().chain(std::iter::once(&NONE)).find(|class| **class == said).copied());
        weigh(&trained, keyword, model)
    }
}

/// A weighed decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Weighed {
    /// The class chosen; `None` when the evidence points at `none`.
    pub class: Option<&'static str>,
    /// Whose evidence decided: the model when it named the winner, else the
    /// trained classifier when its best class won, else the keywords.
    pub by: Classifier,
    /// The offline evidence leaves no doubt: no need to ask the model.
    pub clear: bool,
}

/// Weighs the trained probabilities (every class, `none` included), the
/// keywords' class and the model's (see the module doc).
pub fn weigh(trained: &[(&'static str, f32)], keyword: Option<&'static str>, model: Option<&'static str>) -> Weighed {
    fn add(scores: &mut Vec<(&'static str, f32)>, class: &'static str, weight: f32) {
        match scores.iter_mut().find(|(known, _)| *known == class) {
            Some((_, score)) => *score += weight,
            None => scores.push((class, weight)),
        }
    }
    let mut scores: Vec<(&'static str, f32)> = trained.to_vec();
    if let Some(class) = keyword {
        add(&mut scores, class, KEYWORD_WEIGHT);
    }
    let mut offline = scores.clone();
    offline.sort_by(|a, b| b.1.total_cmp(&a.1));
    let clear = offline.len() < 2 || offline[0].1 - offline[1].1 >= CLEAR_MARGIN;
    if let Some(class) = model {
        add(&mut scores, class, MODEL_WEIGHT);
    }
    // Ties go to the keywords' class, then to the first listed.
    let winner = scores.iter().fold(None::<(&'static str, f32)>, |best, (class, score)| match best {
        Some((best_class, best_score)) if *score < best_score || (*score == best_score && Some(best_class) == keyword) => best,
        _ => Some((class, *score)),
    });
    let winner = winner.filter(|(_, score)| *score >= DECIDE_AT).map(|(class, _)| class);
    let trained_best = trained.iter().fold(None::<(&'static str, f32)>, |best, (class, p)| match best {
        Some((_, best_p)) if *p <= best_p => best,
        _ => Some((class, *p)),
    });
    let by = if winner.is_none() {
        if model.is_some() { Classifier::Model } else { Classifier::Trained }
    } else if model.is_some() && model == winner {
        Classifier::Model
    } else if keyword.is_some() && keyword == winner {
        Classifier::Keyword
    } else if trained_best.map(|(class, _)| class) == winner {
        Classifier::Trained
    } else {
        Classifier::Keyword
    };
    let clear = clear && winner.is_some();
    Weighed { class: winner.filter(|class| *class != NONE), by, clear }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLES: &str = "# a comment\n\
        buy\tquero comprar um certificado\n\
        buy\tcomprar certificado digital\n\
        buy\tpreciso adquirir um e-cpf\n\
        renew\tquero renovar meu certificado\n\
        renew\tmeu certificado venceu\n\
        renew\trenovacao do e-cnpj\n\
        none\toi\n\
        none\tbom dia\n";

    #[test]
    fn it_learns_its_examples_and_generalises_to_typos() {
        let trained = Trained::from_tsv(EXAMPLES).unwrap();
        assert_eq!(trained.classes(), ["buy", "none", "renew"]);
        assert_eq!(trained.predict("quero comprar").0, "buy");
        assert_eq!(trained.predict("qro renova o certificado").0, "renew");
        assert_eq!(trained.predict("Boa noite!").0, "none");
        let total: f32 = trained.probabilities("anything").iter().sum();
        assert!((total - 1.0).abs() < 1e-4);
    }

    #[test]
    fn training_is_deterministic() {
        let one = Trained::from_tsv(EXAMPLES).unwrap();
        let two = Trained::from_tsv(EXAMPLES).unwrap();
        assert_eq!(one.probabilities("renovar e-cpf"), two.probabilities("renovar e-cpf"));
    }

    #[test]
    fn bad_example_files_name_the_line() {
        assert_eq!(parse_examples("buy\tok\nno tab here\n").unwrap_err(), "line 2: expected 'label<TAB>message'");
        assert!(parse_examples("buy\t  \n").unwrap_err().starts_with("line 1:"));
        assert!(Trained::from_tsv("buy\tquero\n").unwrap_err().contains("at least two labels"));
    }

    #[test]
    fn a_weak_keyword_hit_loses_to_a_confident_classifier_and_wins_a_close_call() {
        let confident = [("buy", 0.05), ("renew", 0.9), ("none", 0.05)];
        let decided = weigh(&confident, Some("buy"), None);
        assert_eq!((decided.class, decided.by), (Some("renew"), Classifier::Trained));
        let close = [("buy", 0.35), ("renew", 0.45), ("none", 0.2)];
        let decided = weigh(&close, Some("buy"), None);
        assert_eq!((decided.class, decided.by, decided.clear), (Some("buy"), Classifier::Keyword, false));
        let agree = [("buy", 0.7), ("renew", 0.2), ("none", 0.1)];
        assert!(weigh(&agree, Some("buy"), None).clear);
    }

    #[test]
    fn the_model_outweighs_an_unsure_offline_decision_but_not_both_agreeing() {
        let unsure = [("buy", 0.4), ("renew", 0.35), ("none", 0.25)];
        let decided = weigh(&unsure, None, Some("renew"));
        assert_eq!((decided.class, decided.by), (Some("renew"), Classifier::Model));
        let sure = [("buy", 0.8), ("renew", 0.1), ("none", 0.1)];
        let decided = weigh(&sure, Some("buy"), Some("renew"));
        assert_eq!((decided.class, decided.by), (Some("buy"), Classifier::Keyword));
        let greeting = [("buy", 0.1), ("renew", 0.1), ("none", 0.8)];
        assert_eq!(weigh(&greeting, None, None).class, None);
    }
}
