//! `switchyard handoff release CONTACT [--reason WHY]`: the bot answers the
//! contact again; audited with `cli:<user>` as the actor.

use std::process::ExitCode;

use switchyard::config::Config;
use switchyard_engine::ids::{Contact, InstanceId};

pub async fn release(contact: &str, instance: &str, reason: &str) -> anyhow::Result<ExitCode> {
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(problems) => {
            super::report(&problems);
            return Ok(ExitCode::from(super::INVALID));
        }
    };
    let (contact, instance) = match (Contact::parse(contact), InstanceId::parse(instance)) {
        (Ok(contact), Ok(instance)) => (contact, instance),
        (Err(problem), _) => {
            super::report(&[format!("CONTACT: {problem}")]);
            return Ok(ExitCode::from(super::INVALID));
        }
        (_, Err(problem)) => {
            super::report(&[format!("--instance: {problem}")]);
            return Ok(ExitCode::from(super::INVALID));
        }
    };
    let store = match super::existing_store_or_refuse(&config).await? {
        Ok(store) => store,
        Err(code) => return Ok(code),
    };
    if switchyard::sessions::release_hold(&store, &instance, &contact, &super::rollout::actor(), reason).await?.released {
        println!("released: the bot answers {} on {instance} again", contact.masked());
    } else {
        println!("{} on {instance} was not handed off; nothing to release", contact.masked());
    }
    Ok(ExitCode::SUCCESS)
}
