//! `switchyard simulate`: synthetic customers walk a flow through the real
//! engine and the real store (`DATABASE_URL`, as `serve` and the reports use
//! it), so an A/B test, its per-version report and a guarded rollout can be
//! demonstrated and tested without WhatsApp.
//!
//! Each customer is a contact on `--instance`, numbered from
//! `--first-contact`. It opens with a message that names what it wants; the
//! version its session gets is decided by the stored rollout policy exactly
//! as `serve` would decide it (the customer cannot know it in advance). Then
//! the behaviour configured for that version (`--behave`) decides, with a
//! seeded generator, whether the customer completes, asks for a human at a
//! step, or goes silent at a step (the session then expires there, a drop-off
//! the report shows at that step).
//!
//! Time is simulated: every message and expiry carries a timestamp from a
//! clock this command moves, placed so that the run ends around the real
//! "now"; customers run one after another (sessions are per contact, so they
//! do not interfere), which keeps a run repeatable for a given seed.

use std::collections::BTreeMap;
use std::fmt;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use anyhow::Context;
use switchyard_engine::engine::{Content, Inbound, Turn};
use switchyard_engine::ids::{Contact, InstanceId, Version};
use switchyard_engine::kinds::To;
use switchyard_engine::registry::{FlowVersion, Registry, suggest};
use switchyard_engine::service::Conversations;
use switchyard_engine::session::{Outcome, Session};
use switchyard_engine::store::Store;
use switchyard_engine::time::{Clock, Timestamp, parse_duration};
use switchyard::holding::HoldingStore;

#[derive(Debug, clap::Args)]
pub struct SimulateArgs {
    /// The flow to simulate (today: digital_certificate's purchase).
    #[arg(long, default_value = "digital_certificate")]
    pub flow: String,
    /// How many synthetic customers.
    #[arg(long, default_value_t = 200)]
    pub contacts: u32,
    /// Behaviour of customers served by a version, repeatable:
    /// "v2:complete=0.6,human=0.3,silent=0.1@purchase.collect_document,think=20s"
    /// (probabilities of completing, asking for a human, going silent —
    /// optionally at a given step — summing to at most 1; the rest completes;
    /// think = time between messages). Versions without one all complete.
    #[arg(long = "behave", value_name = "VERSION:BEHAVIOUR")]
    pub behaviours: Vec<String>,
    /// Seed for the random choices, so a run can be repeated.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Evolution-style instance the messages arrive on.
    #[arg(long, default_value = "simulator")]
    pub instance: String,
    /// First contact number; contacts are consecutive from it.
    #[arg(long, default_value = "5599900000000")]
    pub first_contact: String,
    /// Print one JSON object: {"flow","contacts","versions":[...]}.
    #[arg(long)]
    pub json: bool,
}

// ---- what the simulator knows about the flows -------------------------------

/// A flow the simulator can walk: the opening message and the happy-path
/// answer for each step id, covering every version's steps (a version uses
/// the ids it has).
struct Walk {
    flow: &'static str,
    /// Names the purchase, so the router hands the customer straight to the
    /// flow and the flow's own routing menu skips to the purchase.
    opening: &'static str,
    answers: &'static [(&'static str, &'static str)],
}

const WALKS: &[Walk] = &[Walk {
    flow: "digital_certificate",
    opening: "quero comprar um certificado digital",
    answers: &[
        // Only if the opening stops naming the purchase: option 1 is "comprar".
        ("route", "1"),
        // v1: type, media, document, e-mail, validation, confirmation.
        ("purchase.choose_type", "1"),
        ("purchase.choose_media", "1"),
        ("purchase.collect_document", "123.456.789-09"),
        ("purchase.collect_email", "cliente@exemplo.com.br"),
        ("purchase.choose_validation", "1"),
        // v2: product, document and e-mail in one message, confirmation.
        ("purchase.choose_product", "1"),
        ("purchase.collect_details", "meu cpf é 123.456.789-09 e o email cliente@exemplo.com.br"),
        ("purchase.confirm_order", "sim"),
        // v3: one form; the same message fills every slot, then (nothing
        // left to fill) its "sim" confirms the summary.
        ("purchase.order", "sim: e-CPF A1, CPF 123.456.789-09, e-mail cliente@exemplo.com.br"),
    ],
}];

/// What a customer types to ask for a person. Sent only where the version
/// understands it (an interrupt to a handoff); elsewhere the customer sends
/// [`UNRECOGNISABLE`] until the step gives up and hands off.
const HUMAN_REQUEST: &str = "quero falar com um atendente";
/// An answer no step understands: every step hands off after a few of them.
const UNRECOGNISABLE: &str = "🤷";
/// Misses a customer asking for a human sends before giving up (the flows
/// hand off after 2 at a menu, 3 at a typed value).
const MAX_MISSES: u32 = 5;
/// Simulated time between one customer's first message and the next one's.
const SPACING: Duration = Duration::from_secs(120);
const DEFAULT_THINK: Duration = Duration::from_secs(20);
/// Deviations printed one per line; the rest are counted.
const SHOWN_DEVIATIONS: usize = 5;

impl Walk {
    fn answer(&self, step: &str) -> Option<&'static str> {
        self.answers.iter().find(|(id, _)| *id == step).map(|(_, answer)| *answer)
    }

    /// The steps of `fv` a customer waits at on this walk, in walk order:
    /// the answered steps the version has, except its entry (the opening
    /// message already answers the routing question), and those of the
    /// flows it calls (`digital_certificate@v4` waits at `dc_purchase`'s
    /// `purchase.order`, v3's step id, while its own `purchase` step calls it).
    fn steps(&self, fv: &FlowVersion, registry: &Registry) -> Vec<&'static str> {
        let callees = callees(fv, registry);
        self.answers
            .iter()
            .map(|(id, _)| *id)
            .filter(|id| *id != fv.entry().id && (fv.step(id).is_some() || callees.iter().any(|callee| callee.step(id).is_some())))
            .collect()
    }

    /// Messages one customer sends at most: the walk, the misses, and slack
    /// for a step that asks twice. Past it the customer is stuck.
    fn max_messages(&self) -> u32 {
        2 * self.answers.len() as u32 + MAX_MISSES + 2
    }
}

/// Every version of every flow `fv`'s steps call (a call names a flow,
/// whose version is resolved when it starts, or a fixed `flow@vN`).
fn callees<'r>(fv: &FlowVersion, registry: &'r Registry) -> Vec<&'r FlowVersion> {
    let mut found: Vec<&FlowVersion> = Vec::new();
    for step in fv.steps() {
        for target in &step.targets {
            let switchyard_engine::flow::Next::Call(spec) = target else { continue };
            let versions: Vec<&FlowVersion> = match registry.lookup(spec) {
                Ok(fixed) if spec.contains('@') => vec![fixed],
                _ => registry.versions_of(spec).collect(),
            };
            for version in versions {
                if !found.iter().any(|known| known.label() == version.label()) {
                    found.push(version);
                }
            }
        }
    }
    found
}

// ---- behaviours -------------------------------------------------------------

/// How the customers a version serves behave. Completing is the remainder.
#[derive(Clone, Debug, PartialEq)]
struct Behaviour {
    human: f64,
    human_at: Option<&'static str>,
    silent: f64,
    silent_at: Option<&'static str>,
    think: Duration,
}

impl Default for Behaviour {
    fn default() -> Behaviour {
        Behaviour { human: 0.0, human_at: None, silent: 0.0, silent_at: None, think: DEFAULT_THINK }
    }
}

impl fmt::Display for Behaviour {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let percent = |p: f64| format!("{:.0}%", p * 100.0);
        let at = |step: Option<&str>| step.map_or_else(|| " at a random step".to_owned(), |step| format!(" at {step}"));
        write!(f, "complete {}", percent((1.0 - self.human - self.silent).max(0.0)))?;
        if self.human > 0.0 {
            write!(f, ", human {}{}", percent(self.human), at(self.human_at))?;
        }
        if self.silent > 0.0 {
            write!(f, ", silent {}{}", percent(self.silent), at(self.silent_at))?;
        }
        write!(f, ", think {}s", self.think.as_secs_f64())
    }
}

/// Parses one `--behave` value against the flow's compiled versions; the
/// error names the bad part.
fn parse_behaviour(spec: &str, walk: &Walk, registry: &Registry) -> Result<(Version, Behaviour), String> {
    let shape = "must look like v2:complete=0.6,human=0.3,silent=0.1@purchase.collect_document,think=20s";
    let bad = |problem: String| format!("--behave '{spec}': {problem}");
    let (version, items) = spec.split_once(':').ok_or_else(|| bad(shape.to_owned()))?;
    let fv = registry.lookup(&format!("{}@{}", walk.flow, version.trim())).map_err(bad)?;
    let walk_steps = walk.steps(fv, registry);
    let mut behaviour = Behaviour::default();
    let mut complete: Option<f64> = None;
    let mut seen: Vec<&str> = Vec::new();
    for item in items.split(',').map(str::trim) {
        let (key, value) = item.split_once('=').ok_or_else(|| bad(format!("'{item}' {shape}")))?;
        let key = key.trim();
        if seen.contains(&key) {
            return Err(bad(format!("'{key}' is given twice")));
        }
        seen.push(key);
        if key == "think" {
            behaviour.think = parse_duration(value).map_err(|problem| bad(format!("think: {problem}")))?;
            continue;
        }
        let (probability, step) = match value.split_once('@') {
            Some((probability, step)) => (probability, Some(step.trim())),
            None => (value, None),
        };
        let probability = probability
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|p| (0.0..=1.0).contains(p))
            .ok_or_else(|| bad(format!("{key}: probability '{}' must be a number from 0 to 1", probability.trim())))?;
        let step = step.map(|step| check_step(step, fv, registry, &walk_steps)).transpose().map_err(bad)?;
        match key {
            "complete" if step.is_some() => return Err(bad("complete takes no @step: completing customers walk every step".to_owned())),
            "complete" => complete = Some(probability),
            "human" => (behaviour.human, behaviour.human_at) = (probability, step),
            "silent" => (behaviour.silent, behaviour.silent_at) = (probability, step),
            _ => return Err(bad(format!("unknown behaviour '{key}' (complete, human, silent or think)"))),
        }
    }
    let total = complete.unwrap_or(0.0) + behaviour.human + behaviour.silent;
    if total > 1.0 + 1e-9 {
        return Err(bad(format!("probabilities add up to {total}, more than 1")));
    }
    Ok((fv.version(), behaviour))
}

/// `step` must be a step of the version (or of a flow it calls) and one the walk waits at.
fn check_step(step: &str, fv: &FlowVersion, registry: &Registry, walk_steps: &[&'static str]) -> Result<&'static str, String> {
    let callees = callees(fv, registry);
    if fv.step(step).is_none() && !callees.iter().any(|callee| callee.step(step).is_some()) {
        let known = fv.steps().iter().chain(callees.iter().flat_map(|callee| callee.steps().iter())).map(|s| s.id);
        let hint = match suggest(step, known) {
            Some(name) => format!(" (did you mean '{name}'?)"),
            None => String::new(),
        };
        let called = if callees.is_empty() { "" } else { " (nor any flow it calls)" };
        return Err(format!("{}{called} has no step '{step}'{hint}", fv.label()));
    }
    walk_steps.iter().copied().find(|id| *id == step).ok_or_else(|| {
        format!("step '{step}' of {} is not on the simulated walk ({})", fv.label(), walk_steps.join(", "))
    })
}

/// What one customer will do, decided once its version is known.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Plan {
    Complete,
    Human(&'static str),
    Silent(&'static str),
}

impl Plan {
    fn draw(behaviour: &Behaviour, walk_steps: &[&'static str], rng: &mut SplitMix64) -> Plan {
        let roll = rng.unit();
        let mut at = |fixed: Option<&'static str>| fixed.or_else(|| walk_steps.get(rng.below(walk_steps.len())).copied());
        let plan = if roll < behaviour.human {
            at(behaviour.human_at).map(Plan::Human)
        } else if roll < behaviour.human + behaviour.silent {
            at(behaviour.silent_at).map(Plan::Silent)
        } else {
            None
        };
        plan.unwrap_or(Plan::Complete)
    }

    /// The outcome the plan leads to when the flow behaves as the simulator expects.
    fn expected(self) -> Outcome {
        match self {
            Plan::Complete => Outcome::Completed,
            Plan::Human(_) => Outcome::Handoff,
            Plan::Silent(_) => Outcome::Expired,
        }
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Plan::Complete => f.write_str("complete"),
            Plan::Human(step) => write!(f, "ask for a human at {step}"),
            Plan::Silent(step) => write!(f, "go silent at {step}"),
        }
    }
}

/// splitmix64: tiny, fast, good enough for simulated choices, and the same
/// sequence on every platform for a given seed.
struct SplitMix64(u64);

impl SplitMix64 {
    /// One generator per customer, from the run's seed and the customer's
    /// index, so a customer's choices do not depend on the others'.
    fn for_customer(seed: u64, index: u64) -> SplitMix64 {
        let mut mixer = SplitMix64(index);
        SplitMix64(seed ^ mixer.next())
    }
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Uniform in [0, n) (the modulo bias is negligible for walk lengths).
    fn below(&mut self, n: usize) -> usize {
        if n == 0 { 0 } else { (self.next() % n as u64) as usize }
    }
}

// ---- the simulated clock ----------------------------------------------------

/// A clock that reads only what the simulator set: every event carries
/// simulated time.
#[derive(Clone, Default)]
struct SimClock {
    millis: Arc<AtomicI64>,
}

impl SimClock {
    fn set(&self, at: Timestamp) {
        self.millis.store(at.as_millis(), Ordering::Relaxed);
    }
}

impl Clock for SimClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_millis(self.millis.load(Ordering::Relaxed))
    }
}

// ---- contacts -----------------------------------------------------------------

/// Consecutive contact numbers, keeping the first one's width (leading zeros).
#[derive(Debug)]
struct Contacts {
    first: u128,
    width: usize,
}

impl Contacts {
    fn new(first: &str, count: u32) -> Result<Contacts, String> {
        let contact = Contact::parse(first).map_err(|problem| format!("--first-contact: {problem}"))?;
        let digits = contact.as_str();
        // Contact::parse keeps 5 to 20 digits, which fit a u128.
        let number: u128 = digits.parse().map_err(|_| format!("--first-contact: contact '{}' is not a number", contact.masked()))?;
        let contacts = Contacts { first: number, width: digits.len() };
        let last = contacts.get(count.saturating_sub(1));
        Contact::parse(&last).map_err(|problem| format!("--first-contact with --contacts {count}: the last {problem}"))?;
        Ok(contacts)
    }
    fn get(&self, index: u32) -> String {
        format!("{:0width$}", self.first + u128::from(index), width = self.width)
    }
}

// ---- results ------------------------------------------------------------------

#[derive(Default)]
struct Tally {
    customers: u64,
    outcomes: BTreeMap<Outcome, u64>,
}

impl Tally {
    fn count(&self, outcome: Outcome) -> u64 {
        self.outcomes.get(&outcome).copied().unwrap_or(0)
    }
}

/// How one customer's session ended.
struct Ended {
    version: Version,
    outcome: Outcome,
    /// Set when the session did not end as planned (the simulator's model of
    /// the flow does not fit this version): what was planned and what happened.
    deviation: Option<String>,
}

// ---- the command ----------------------------------------------------------------

pub async fn run(args: SimulateArgs) -> anyhow::Result<ExitCode> {
    let invalid = |problem: String| -> anyhow::Result<ExitCode> {
        super::report(&[problem]);
        Ok(ExitCode::from(super::INVALID))
    };
    // Validate what needs no database first, so a typo creates no file.
    let registry = match super::registry().await {
        Ok(registry) => registry,
        Err(code) => return Ok(code),
    };
    let Some(walk) = WALKS.iter().find(|walk| walk.flow == args.flow) else {
        let supported: Vec<&str> = WALKS.iter().map(|walk| walk.flow).collect();
        let problem = if registry.has_flow(&args.flow) {
            format!("--flow '{}': the simulator has no walk for it (supported: {})", args.flow, supported.join(", "))
        } else {
            // Suggest only flows the simulator can walk: a compiled flow it
            // cannot walk would be the next error.
            let hint = suggest(&args.flow, supported.iter().copied()).map_or_else(
                || format!(" (supported: {})", supported.join(", ")),
                |name| format!(" (did you mean '{name}'?)"),
            );
            format!("--flow '{}' is not a compiled flow{hint}", args.flow)
        };
        return invalid(problem);
    };
    if !registry.has_flow(walk.flow) {
        return invalid(format!("--flow '{}' is not compiled into this build", walk.flow));
    }
    if args.contacts == 0 {
        return invalid("--contacts must be at least 1".to_owned());
    }
    let contacts = match Contacts::new(&args.first_contact, args.contacts) {
        Ok(contacts) => contacts,
        Err(problem) => return invalid(problem),
    };
    let instance = match InstanceId::parse(&args.instance) {
        Ok(instance) => instance,
        Err(problem) => return invalid(format!("--instance: {problem}")),
    };
    let mut behaviours: BTreeMap<Version, Behaviour> = BTreeMap::new();
    for spec in &args.behaviours {
        match parse_behaviour(spec, walk, &registry) {
            Ok((version, _)) if behaviours.contains_key(&version) => {
                return invalid(format!("--behave '{spec}': {version} already has a behaviour"));
            }
            Ok((version, behaviour)) => {
                behaviours.insert(version, behaviour);
            }
            Err(problem) => return invalid(problem),
        }
    }

    let (_config, engine, store) = match super::setup_with_store().await? {
        Ok(setup) => setup,
        Err(code) => return Ok(code),
    };
    let ttl = engine.config().session_ttl;
    // A think as long as the TTL expires every customer between two
    // messages; that includes the default think of versions without --behave.
    for fv in engine.registry().versions_of(walk.flow) {
        let version = fv.version();
        let (think, given) = match behaviours.get(&version) {
            Some(behaviour) => (behaviour.think, format!("--behave {version}: think")),
            None => (DEFAULT_THINK, format!("{version}'s default think (set one with --behave {version}:think=...)")),
        };
        if think >= ttl {
            return invalid(format!(
                "{given} {}s is not shorter than SESSION_TTL ({}s): every customer would expire between messages",
                think.as_secs_f64(),
                ttl.as_secs_f64()
            ));
        }
    }

    // Place the run so that its last events land shortly before the real
    // now: the last customer starts `horizon` before it, the longest a
    // customer can take (with the TTL of silence only when some go silent; a
    // customer that gets stuck may end a little later).
    let think = behaviours.values().map(|b| b.think).max().unwrap_or(DEFAULT_THINK).max(DEFAULT_THINK);
    let silence = if behaviours.values().any(|b| b.silent > 0.0) { ttl + Duration::from_secs(1) } else { Duration::ZERO };
    let horizon = think.saturating_mul(walk.max_messages()) + silence;
    let start = Timestamp::now_utc().minus(horizon).minus(SPACING.saturating_mul(args.contacts - 1));

    let clock = SimClock::default();
    let conversations = Conversations::new(Arc::clone(&engine), HoldingStore::new(store, clock.clone()), clock.clone());
    let simulator = Simulator { conversations: &conversations, clock: &clock, walk, instance: &instance, behaviours: &behaviours, seed: args.seed };

    let mut tallies: BTreeMap<Version, Tally> = behaviours.keys().map(|version| (*version, Tally::default())).collect();
    let mut deviations: Vec<String> = Vec::new();
    let mut leftovers = 0u64;
    let progress = switchyard::progress::bar(u64::from(args.contacts), "customers", args.json);
    for index in 0..args.contacts {
        let contact = Contact::parse(&contacts.get(index)).map_err(anyhow::Error::msg)?;
        let began = start.plus(SPACING.saturating_mul(index));
        let (ended, cleaned) = simulator
            .customer(index, &contact, began)
            .await
            .with_context(|| format!("simulating customer {} ({})", index + 1, contact.masked()))?;
        leftovers += cleaned;
        let tally = tallies.entry(ended.version).or_default();
        tally.customers += 1;
        *tally.outcomes.entry(ended.outcome).or_default() += 1;
        deviations.extend(ended.deviation.map(|what| format!("{} on {}: {what}", contact.masked(), ended.version)));
        progress.set_position(u64::from(index) + 1);
    }
    progress.finish_and_clear();

    if leftovers > 0 {
        eprintln!("warning: ended {leftovers} live session(s) or handoff hold(s) an earlier run left on instance '{instance}'");
    }
    for deviation in deviations.iter().take(SHOWN_DEVIATIONS) {
        eprintln!("warning: {deviation}");
    }
    if deviations.len() > SHOWN_DEVIATIONS {
        eprintln!("warning: ... and {} more customers who did not end as planned", deviations.len() - SHOWN_DEVIATIONS);
    }
    print_summary(&args, &instance, &tallies, &behaviours);
    Ok(ExitCode::SUCCESS)
}

struct Simulator<'a> {
    conversations: &'a Conversations<HoldingStore<SimClock>, SimClock>,
    clock: &'a SimClock,
    walk: &'a Walk,
    instance: &'a InstanceId,
    behaviours: &'a BTreeMap<Version, Behaviour>,
    seed: u64,
}

impl Simulator<'_> {
    /// Walks one customer from its first message to the end of its session.
    /// Also returns how many leftovers of an earlier run it had to clear.
    async fn customer(&self, index: u32, contact: &Contact, began: Timestamp) -> anyhow::Result<(Ended, u64)> {
        let conversations = self.conversations;
        let mut now = began;
        self.clock.set(now);
        let cleaned = self.clear_leftovers(contact).await?;

        let opening = self.send(contact, self.walk.opening).await?;
        let Some(mut session) = opening.sessions.iter().find(|s| s.flow().as_str() == self.walk.flow).cloned() else {
            let landed = opening.live().map_or_else(|| "no session".to_owned(), |s| format!("{}@{} at {}", s.flow(), s.version(), s.step()));
            anyhow::bail!("the opening message '{}' did not start a {} session ({landed})", self.walk.opening, self.walk.flow);
        };
        // The version is known only now, as for a real customer.
        let version = session.version();
        let registry = conversations.engine().registry();
        let fv = registry
            .get(self.walk.flow, version)
            .with_context(|| format!("{}@{version} is not compiled in", self.walk.flow))?;
        let behaviour = self.behaviours.get(&version).cloned().unwrap_or_default();
        let walk_steps = self.walk.steps(fv, &registry);
        let mut rng = SplitMix64::for_customer(self.seed, u64::from(index));
        let plan = Plan::draw(&behaviour, &walk_steps, &mut rng);
        // Where the customer is: the walked session, or the flow it called
        // and waits for (v4's `purchase` calls `dc_purchase`), whose step the
        // customer answers; its interrupts count as well as the caller's.
        let innermost = |turn: &Turn, session: &Session| turn.live().filter(|live| live.depth() > session.depth()).cloned();
        let mut here = innermost(&opening, &session).unwrap_or_else(|| session.clone());
        let understands = |at: &Session| {
            let interrupts = |fv: &FlowVersion| fv.interrupt_for(HUMAN_REQUEST) == Some(To::Handoff);
            interrupts(fv) || registry.get(at.flow().as_str(), at.version()).is_some_and(interrupts)
        };

        let mut sent = 1;
        let mut misses = 0;
        let mut stuck: Option<String> = None;
        while session.is_live() {
            let step = here.step().as_str();
            let understands_human = understands(&here);
            let text = match plan {
                Plan::Silent(at) if at == step => break,
                Plan::Human(at) if at == step && understands_human && misses == 0 => HUMAN_REQUEST,
                Plan::Human(at) if at == step => UNRECOGNISABLE,
                _ => match self.walk.answer(step) {
                    Some(answer) => answer,
                    None => {
                        stuck = Some(format!("no answer for step {step}"));
                        break;
                    }
                },
            };
            if text == UNRECOGNISABLE || text == HUMAN_REQUEST {
                misses += 1;
                if misses > MAX_MISSES {
                    stuck = Some(format!("{MAX_MISSES} requests for a human at {step} were not handed off"));
                    break;
                }
            }
            if sent >= self.walk.max_messages() {
                stuck = Some(format!("still at {step} after {sent} messages"));
                break;
            }
            now = now.plus(behaviour.think);
            self.clock.set(now);
            let turn = self.send(contact, text).await?;
            sent += 1;
            let id = session.id();
            let called = innermost(&turn, &session);
            session = match turn.sessions.into_iter().find(|s| s.id() == id) {
                Some(session) => session,
                // The turn did not touch the session (a handoff hold silenced
                // the message, or only the flow it called moved): it stays
                // where the store has it.
                None => self.stored(contact, &session).await?,
            };
            here = called.unwrap_or_else(|| session.clone());
        }
        if session.is_live() {
            // The customer stopped answering: advance past the TTL and expire
            // the session, as the server's sweeper would, so the drop-off is
            // recorded at this step (the called flow's, when it waits for one).
            now = here.expires_at().max(session.expires_at()).max(now).plus(Duration::from_secs(1));
            self.clock.set(now);
            session = self.expire(contact, &session, now).await?;
        }
        // Whatever the walk left live (a handover to another flow) ends as the
        // customer leaves, so the next run starts clean.
        self.expire_rest(contact, now).await?;

        let outcome = session.outcome().unwrap_or(Outcome::Failed);
        // A failure is the flow's own (a bug the report should show), not the simulator's.
        let deviation = match stuck {
            Some(why) => Some(format!("planned to {plan}, but {why}; its session expired at {}", session.step())),
            None if outcome != plan.expected() && outcome != Outcome::Failed => {
                Some(format!("planned to {plan}, but the session ended {outcome} at {}", session.step()))
            }
            None => None,
        };
        Ok((Ended { version, outcome, deviation }, cleaned))
    }

    async fn send(&self, contact: &Contact, text: &str) -> anyhow::Result<Turn> {
        let inbound = Inbound { instance: self.instance.clone(), contact: contact.clone(), content: Content::Text(text.to_owned()) };
        Ok(self.conversations.handle(&inbound).await?)
    }

    /// The stored state of `session` (with the store's revision).
    async fn stored(&self, contact: &Contact, session: &Session) -> anyhow::Result<Session> {
        let sessions = self.conversations.store().sessions_of(self.instance, contact).await?;
        sessions.into_iter().find(|s| s.id() == session.id()).with_context(|| format!("session {} vanished from the store", session.id()))
    }

    async fn expire(&self, contact: &Contact, session: &Session, now: Timestamp) -> anyhow::Result<Session> {
        let stored = self.stored(contact, session).await?;
        if !stored.is_live() {
            return Ok(stored);
        }
        let state = self.conversations.store().contact_state(self.instance, contact).await?;
        let turn = self.conversations.engine().expire_all(state, now).context("the session to expire is not live")?;
        self.conversations.store().commit(&turn).await?;
        turn.sessions.into_iter().find(|s| s.id() == session.id()).context("the expiry did not end the session")
    }

    /// Expires any session still live for the contact.
    async fn expire_rest(&self, contact: &Contact, now: Timestamp) -> anyhow::Result<()> {
        let state = self.conversations.store().contact_state(self.instance, contact).await?;
        if let Some(at) = state.session.as_ref().filter(|live| live.is_live()).map(|live| live.expires_at().max(now).plus(Duration::from_secs(1))) {
            self.clock.set(at);
            let Some(turn) = self.conversations.engine().expire_all(state, at) else { return Ok(()) };
            self.conversations.store().commit(&turn).await?;
        }
        Ok(())
    }

    /// A rerun on the same database meets what the previous run left for the
    /// same contacts: a handoff hold (the bot would stay silent) or a live
    /// session (the opening would land in it). Both are cleared.
    async fn clear_leftovers(&self, contact: &Contact) -> anyhow::Result<u64> {
        let store = self.conversations.store();
        let state = store.contact_state(self.instance, contact).await?;
        let mut cleaned = 0;
        if state.handoff_until.is_some() && store.release_handoff(self.instance, contact).await? {
            cleaned += 1;
        }
        if state.session.is_some_and(|session| session.is_live())
            && self.conversations.close(self.instance, contact, Outcome::Cancelled, "simulate: leftover of an earlier run").await?.is_some()
        {
            cleaned += 1;
        }
        Ok(cleaned)
    }
}

// ---- output -------------------------------------------------------------------

fn print_summary(args: &SimulateArgs, instance: &InstanceId, tallies: &BTreeMap<Version, Tally>, behaviours: &BTreeMap<Version, Behaviour>) {
    let total = f64::from(args.contacts);
    let share = |tally: &Tally| tally.customers as f64 / total;
    if args.json {
        let versions: Vec<serde_json::Value> = tallies
            .iter()
            .map(|(version, tally)| {
                serde_json::json!({
                    "version": version.to_string(),
                    "customers": tally.customers,
                    "share": (share(tally) * 10_000.0).round() / 10_000.0,
                    "completed": tally.count(Outcome::Completed),
                    "handoff": tally.count(Outcome::Handoff),
                    "expired": tally.count(Outcome::Expired),
                    "failed": tally.count(Outcome::Failed),
                    "cancelled": tally.count(Outcome::Cancelled),
                })
            })
            .collect();
        let value = serde_json::json!({
            "flow": args.flow,
            "instance": instance.as_str(),
            "seed": args.seed,
            "contacts": args.contacts,
            "versions": versions,
        });
        println!("{value}");
        return;
    }
    println!("simulated {} {} customers on instance '{instance}' (seed {})", args.contacts, args.flow, args.seed);
    println!();
    println!("{:<8} {:>9} {:>6} {:>9} {:>7} {:>7} {:>6} {:>9}", "version", "customers", "share", "completed", "handoff", "expired", "failed", "cancelled");
    for (version, tally) in tallies {
        println!(
            "{:<8} {:>9} {:>5.1}% {:>9} {:>7} {:>7} {:>6} {:>9}",
            version.to_string(),
            tally.customers,
            share(tally) * 100.0,
            tally.count(Outcome::Completed),
            tally.count(Outcome::Handoff),
            tally.count(Outcome::Expired),
            tally.count(Outcome::Failed),
            tally.count(Outcome::Cancelled),
        );
    }
    println!();
    for version in tallies.keys() {
        let behaviour = behaviours.get(version).cloned().unwrap_or_default();
        println!("{version}: {behaviour}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registry() -> Registry {
        switchyard_flows::registry(&switchyard_flows::Deps::demo()).expect("the shipped flows are valid")
    }

    #[test]
    fn behaviours_parse_and_name_what_is_wrong() {
        let registry = registry();
        let walk = &WALKS[0];
        let (version, behaviour) = parse_behaviour("v2:complete=0.6,human=0.3,silent=0.1@purchase.collect_details,think=5s", walk, &registry).unwrap();
        assert_eq!(version, Version::new(2));
        assert_eq!(behaviour.human, 0.3);
        assert_eq!(behaviour.silent_at, Some("purchase.collect_details"));
        assert_eq!(behaviour.think, Duration::from_secs(5));
        let cases = [
            ("v1", "must look like"),
            ("v9:human=1", "has no version v9"),
            ("v1:human=0.7,silent=0.7", "add up to 1.4"),
            ("v1:human=2", "probability '2'"),
            ("v1:silent=1@purchase.colect_document", "did you mean 'purchase.collect_document'"),
            ("v1:silent=1@renewal.collect_document", "not on the simulated walk"),
            ("v1:silent=1@route", "not on the simulated walk"),
            ("v2:silent=1@purchase.collect_document", "digital_certificate@v2 has no step"),
            ("v1:bored=1", "unknown behaviour 'bored'"),
            ("v1:think=20", "think: duration '20'"),
            ("v1:human=0.1,human=0.2", "'human' is given twice"),
            ("v1:complete=1@purchase.choose_type", "complete takes no @step"),
        ];
        for (spec, expected) in cases {
            let problem = parse_behaviour(spec, walk, &registry).unwrap_err();
            assert!(problem.starts_with(&format!("--behave '{spec}': ")) && problem.contains(expected), "{spec}: {problem}");
        }
    }

    #[test]
    fn the_walk_waits_at_each_versions_purchase_steps() {
        let registry = registry();
        let walk = &WALKS[0];
        let v1 = registry.get("digital_certificate", Version::new(1)).unwrap();
        let v2 = registry.get("digital_certificate", Version::new(2)).unwrap();
        assert_eq!(walk.steps(v1, &registry).len(), 6);
        assert_eq!(walk.steps(v2, &registry), ["purchase.choose_product", "purchase.collect_details", "purchase.confirm_order"]);
        // v4 calls dc_purchase at `purchase`: the customer waits at the callee's form.
        let v4 = registry.get("digital_certificate", Version::new(4)).unwrap();
        assert_eq!(walk.steps(v4, &registry), ["purchase.order"]);
        let (_, behaviour) = parse_behaviour("v4:silent=1@purchase.order", walk, &registry).unwrap();
        assert_eq!(behaviour.silent_at, Some("purchase.order"));
        let problem = parse_behaviour("v4:silent=1@purchase.ordr", walk, &registry).unwrap_err();
        assert!(problem.contains("digital_certificate@v4 (nor any flow it calls) has no step 'purchase.ordr' (did you mean 'purchase.order'?)"), "{problem}");
    }

    #[test]
    fn plans_are_deterministic_and_follow_the_probabilities() {
        let behaviour = Behaviour { human: 0.25, silent: 0.25, ..Behaviour::default() };
        let steps = ["a", "b", "c"];
        let draw = |seed| (0..1000).map(|index| Plan::draw(&behaviour, &steps, &mut SplitMix64::for_customer(seed, index))).collect::<Vec<_>>();
        assert_eq!(draw(7), draw(7));
        assert_ne!(draw(7), draw(8));
        let plans = draw(7);
        let humans = plans.iter().filter(|plan| matches!(plan, Plan::Human(_))).count();
        let silent = plans.iter().filter(|plan| matches!(plan, Plan::Silent(_))).count();
        assert!((200..300).contains(&humans) && (200..300).contains(&silent), "{humans} {silent}");
        for step in steps {
            assert!(plans.contains(&Plan::Silent(step)), "every step is drawn");
        }
    }

    #[test]
    fn contacts_are_consecutive_and_keep_their_width() {
        let contacts = Contacts::new("+55 99 00000-0099", 3).unwrap();
        assert_eq!((contacts.get(0), contacts.get(2)), ("5599000000099".to_owned(), "5599000000101".to_owned()));
        assert!(Contacts::new("abc", 1).unwrap_err().starts_with("--first-contact: contact"));
        assert!(Contacts::new("99999999999999999999", 2).unwrap_err().contains("between 5 and 20 digits"));
    }
}
