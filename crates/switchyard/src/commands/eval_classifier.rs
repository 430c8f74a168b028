//! `switchyard eval-classifier FLOW@VERSION [--json]`: accuracy of the
//! version's classification tasks on the labelled evaluation set, overall,
//! per class and as confusion pairs; for the keyword classifier always and,
//! when `LLM_BASE_URL` is set, for the model alone and for what production
//! runs (keywords first, the model when they find nothing). A weighed task
//! (one with `examples/<task>.tsv`) also shows its trained classifier alone
//! and the weighed decision the step takes, with the model when configured.
//! Every figure is on the held-out evaluation sets, one block per set.

use std::process::ExitCode;
use std::time::Instant;

use serde_json::{json, Value};
use switchyard::config::Config;
use switchyard::eval::{self, Case};
use switchyard_engine::classify::{Answer, Request, Wanted};
use switchyard_engine::engine::EngineConfig;

pub async fn run(spec: &str, json_output: bool) -> anyhow::Result<ExitCode> {
    let registry = match super::registry().await {
        Ok(registry) => registry,
        Err(code) => return Ok(code),
    };
    let fv = match registry.lookup(spec) {
        Ok(fv) => fv,
        Err(problem) => {
            super::report(&[problem]);
            return Ok(ExitCode::from(super::INVALID));
        }
    };
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(problems) => {
            super::report(&problems);
            return Ok(ExitCode::from(super::INVALID));
        }
    };
    let tasks: Vec<_> = fv.tasks().iter().filter(|task| matches!(task.ask, Wanted::Class(_))).collect();
    if tasks.is_empty() {
        let names: Vec<&str> = fv.tasks().iter().map(|task| task.name).collect();
        super::report(&[format!(
            "{}: has no classification task to evaluate (its model tasks: {})",
            fv.label(),
            if names.is_empty() { "none".to_owned() } else { names.join(", ") }
        )]);
        return Ok(ExitCode::from(super::INVALID));
    }
    let sets = eval::sets().map_err(anyhow::Error::msg)?;
    let model = super::model(&config)?;
    let entry_flow = EngineConfig::default().entry_flow;
    let mut results = Vec::new();
    for task in tasks {
        let trained = fv.trained(task.name);
        for (path, cases) in &sets {
            let selected: Vec<(&Case, &str)> = cases
                .iter()
                .filter_map(|case| eval::expected(fv.flow().as_str(), entry_flow.as_str(), case).map(|expected| (case, expected)))
                .collect();
            let lines: Vec<usize> = selected.iter().map(|(case, _)| case.line).collect();
            let class = |class: Option<&str>| class.unwrap_or("none").to_owned();
            let keyword: Vec<(&str, String)> =
                selected.iter().map(|(case, expected)| (*expected, eval::keyword_class(task, &case.text))).collect();
            let mut classifiers = vec![eval::score("keyword", &keyword, &lines)];
            if let Some(trained) = trained {
                let alone: Vec<(&str, String)> =
                    selected.iter().map(|(case, expected)| (*expected, class(trained.predict(&case.text)))).collect();
                let weighed: Vec<(&str, String)> =
                    selected.iter().map(|(case, expected)| (*expected, class(trained.decide(&case.text, None).class))).collect();
                classifiers.push(eval::score("trained", &alone, &lines));
                classifiers.push(eval::score("weighed", &weighed, &lines));
            }
            if let Some(llm) = &model {
                let mut alone = Vec::new();
                let mut production = Vec::new();
                for ((case, expected), (_, by_keyword)) in selected.iter().zip(&keyword) {
                    let request = Request {
                        flow: fv.flow().clone(),
                        version: fv.version(),
                        task: task.name,
                        prompt: task.prompt,
                        ask: task.ask,
                        text: case.text.clone(),
                    };
                    let answer = llm.answer(&request, Instant::now() + llm.settings().timeout).await;
                    let predicted = match answer {
                        Answer::Values { values, .. } => match values.iter().find(|(key, _)| key == "class") {
                            Some((_, class)) if class == "none" || task.classes().contains(&class.as_str()) => class.clone(),
                            _ => "invalid_answer".to_owned(),
                        },
                        Answer::Failed { reason, .. } => format!("failed:{reason}"),
                    };
                    // What production runs: weighed when the task is, else keywords first.
                    let combined = match trained {
                        Some(trained) => {
                            let offline = trained.decide(&case.text, None);
                            let valid = predicted == "none" || task.classes().contains(&predicted.as_str());
                            if offline.clear || !valid {
                                class(offline.class)
                            } else {
                                class(trained.decide(&case.text, Some(&predicted)).class)
                            }
                        }
                        None if by_keyword != "none" => by_keyword.clone(),
                        None => predicted.clone(),
                    };
                    alone.push((*expected, predicted));
                    production.push((*expected, combined));
                }
                classifiers.push(eval::score("model", &alone, &lines));
                classifiers.push(eval::score(if trained.is_some() { "weighed+model" } else { "keyword+model" }, &production, &lines));
            }
            results.push(json!({
                "flow": fv.flow().as_str(),
                "version": fv.version().to_string(),
                "fingerprint": fv.fingerprint().as_str(),
                "task": task.name,
                "prompt": task.file,
                "set": path,
                "held_out": true,
                "trained_on": trained.map(|trained| trained.weighing.file),
                "messages": selected.len(),
                "model": model.as_ref().map(|llm| llm.settings().model.clone()),
                "classifiers": classifiers,
            }));
        }
    }
    if json_output {
        println!("{}", Value::Array(results));
        return Ok(ExitCode::SUCCESS);
    }
    for result in &results {
        print_text(result);
    }
    Ok(ExitCode::SUCCESS)
}

fn print_text(result: &Value) {
    let percent = |value: &Value| format!("{:5.1}%", value.as_f64().unwrap_or(0.0) * 100.0);
    println!(
        "{}@{} task '{}' ({}): {} labelled messages in {}",
        result["flow"].as_str().unwrap_or("?"),
        result["version"].as_str().unwrap_or("?"),
        result["task"].as_str().unwrap_or("?"),
        result["prompt"].as_str().unwrap_or("?"),
        result["messages"],
        result["set"].as_str().unwrap_or("?"),
    );
    if let Some(file) = result["trained_on"].as_str() {
        println!("(trained on {file}; no message of this set is in it)");
    }
    if result["model"].is_null() {
        println!("(no LLM_BASE_URL: keyword classifier only)");
    }
    let classifiers = result["classifiers"].as_array().cloned().unwrap_or_default();
    for classifier in &classifiers {
        println!(
            "\n{}: accuracy {} ({}/{})",
            classifier["classifier"].as_str().unwrap_or("?"),
            percent(&classifier["accuracy"]),
            classifier["correct"],
            classifier["total"]
        );
        for class in classifier["per_class"].as_array().cloned().unwrap_or_default() {
            println!(
                "  {:<22} {} ({}/{})",
                class["class"].as_str().unwrap_or("?"),
                percent(&class["accuracy"]),
                class["correct"],
                class["total"]
            );
        }
        let confusions = classifier["confusions"].as_array().cloned().unwrap_or_default();
        if !confusions.is_empty() {
            println!("  confusions (expected -> predicted):");
            for confusion in confusions {
                println!(
                    "    {} -> {}: {}",
                    confusion["expected"].as_str().unwrap_or("?"),
                    confusion["predicted"].as_str().unwrap_or("?"),
                    confusion["count"]
                );
            }
        }
    }
    println!("(--json lists every miss with its line in crates/flows/{})\n", result["set"].as_str().unwrap_or("?"));
}
