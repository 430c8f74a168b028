//! `switchyard flows export FLOW@vN`: a compiled version written as a
//! document where it can be: its texts, tasks and the steps whose kind
//! says what they do ([`switchyard_engine::kinds::Shape`]: menus, asks with
//! a registered validator, says, calls of another flow). Steps written as
//! Rust code are named as not expressible.

use std::collections::BTreeMap;

use switchyard_engine::flow::Next;
use switchyard_engine::kinds::Shape;
use switchyard_engine::registry::FlowVersion;
use switchyard_flows::functions::{Function, FUNCTIONS};

use super::{Document, OptionDoc, Step, TaskDoc};

fn target(next: Next) -> Option<String> {
    match next {
        Next::Goto(step) => Some(step.to_owned()),
        Next::Handover(flow) => Some(format!("flow:{flow}")),
        Next::Complete => Some("complete".to_owned()),
        Next::Handoff => Some("handoff".to_owned()),
        Next::Cancel => Some("cancel".to_owned()),
        // A call is a step of its own (`Shape::Call`), never a transition of another.
        Next::Wait | Next::Retry | Next::Call(_) => None,
    }
}

/// The version as a document, and the ids of the steps that cannot be written as one.
pub fn export(fv: &FlowVersion) -> (Document, Vec<String>) {
    let mut steps = Vec::new();
    let mut missing = Vec::new();
    for step in fv.steps() {
        let id = step.id.to_owned();
        let written = match step.handler.shape() {
            Some(Shape::Menu { prompt, invalid, exhausted, max_attempts, options }) => {
                let options: Option<Vec<OptionDoc>> = options
                    .into_iter()
                    .map(|(words, to, set)| {
                        Some(OptionDoc { words, to: target(to)?, set: set.into_iter().map(|(key, value)| (key.to_owned(), value.to_owned())).collect() })
                    })
                    .collect();
                options.map(|options| Step::Menu {
                    id: id.clone(),
                    prompt: prompt.to_owned(),
                    invalid: invalid.to_owned(),
                    options,
                    exhausted: Some(exhausted.to_owned()),
                    max_attempts: Some(max_attempts),
                })
            }
            Some(Shape::Ask { prompt, invalid, exhausted, max_attempts, save_as, validate, then }) => {
                let name = FUNCTIONS.iter().find(|(_, function)| matches!(function, Function::Validator(known) if std::ptr::fn_addr_eq(*known, validate))).map(|(name, _)| *name);
                match (name, target(then)) {
                    (Some(name), Some(then)) => Some(Step::Ask {
                        id: id.clone(),
                        prompt: prompt.to_owned(),
                        invalid: invalid.to_owned(),
                        save_as: save_as.to_owned(),
                        validate: name.to_owned(),
                        then,
                        exhausted: Some(exhausted.to_owned()),
                        max_attempts: Some(max_attempts),
                    }),
                    _ => None,
                }
            }
            Some(Shape::Say { text, then }) => match then {
                Next::Complete => Some(Step::End { id: id.clone(), text: Some(text.to_owned()) }),
                other => target(other).map(|then| Step::Say { id: id.clone(), text: text.to_owned(), then }),
            },
            Some(Shape::Call { callee, then }) => target(then).map(|then| Step::Call { id: id.clone(), flow: callee.to_owned(), then }),
            None => None,
        };
        match written {
            Some(step) => steps.push(step),
            None => missing.push(id),
        }
    }
    let texts: BTreeMap<String, String> = fv.texts().sorted().into_iter().map(|(key, text)| (key.to_owned(), text.to_owned())).collect();
    let tasks = fv
        .tasks()
        .iter()
        .filter(|task| !task.classes().is_empty())
        .map(|task| TaskDoc {
            name: task.name.to_owned(),
            prompt: task.prompt.to_owned(),
            classes: task.classes().iter().map(|class| (*class).to_owned()).collect(),
            words: BTreeMap::new(),
            examples: Vec::new(),
        })
        .collect();
    let document = Document {
        flow: fv.flow().as_str().to_owned(),
        description: fv.description().to_owned(),
        entry: fv.entry().id.to_owned(),
        texts,
        steps,
        tasks,
        transcripts: Vec::new(),
        transcript: None,
    };
    (document, missing)
}
