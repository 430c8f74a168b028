//! The rollout rules through their public API: precedence between every pair of
//! rule kinds (and the override above them all), Unleash-compatible bucketing
//! and its monotonicity, schedules ending by themselves, assignment memory,
//! parsing and validation messages, and the explain trace.

use std::time::{Duration, Instant};

use switchyard_engine::flow::{Lifecycle, VersionDecl};
use switchyard_engine::ids::{Contact, InstanceId, Version};
use switchyard_engine::kinds::Say;
use switchyard_engine::registry::Registry;
use switchyard_engine::resolve::{Overrides, Policy, Query, Reason, Resolver};
use switchyard_engine::rollout::{
    position, unleash_bucket, FlowRules, InstanceRule, Pin, Rules, Schedule, Split, Weight,
};
use switchyard_engine::time::Timestamp;

const T0: Timestamp = Timestamp::from_millis(1_795_000_000_000);
const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(86_400);
const FLOW: &str = "shop";

fn v(n: u32) -> Version {
    Version::new(n)
}

fn contact(text: &str) -> Contact {
    Contact::parse(text).expect("test contact")
}

fn instance(text: &str) -> InstanceId {
    InstanceId::parse(text).expect("test instance")
}

fn pct(text: &str) -> Weight {
    Weight::parse(text).expect("test weight")
}

/// `n`-th synthetic contact: 55119 and eight digits.
fn synthetic(n: u32) -> Contact {
    contact(&format!("55119{n:08}"))
}

const CONTACTS: u32 = 100_000;

fn query<'a>(contact: &'a Contact, instance: &'a InstanceId, now: Timestamp) -> Query<'a> {
    Query { flow: FLOW, instance, contact, now }
}

fn split(weights: &[(u32, &str)]) -> Split {
    Split::new(weights.iter().map(|(n, w)| (v(*n), pct(w))).collect(), None, 0).expect("valid test split")
}

/// Rule kinds in precedence order, each giving a different version, each built
/// so that it matches the contact 5511987654321 on instance `vendas` at T0.
const KINDS: [&str; 5] = ["pin", "instance", "schedule", "split", "promote"];

fn matching(kind: &str) -> (FlowRules, Version) {
    let mut rules = FlowRules::default();
    let version = match kind {
        "pin" => {
            rules.pins.push(Pin { contact: contact("5511987654321"), version: v(2) });
            v(2)
        }
        "instance" => {
            rules.instances.push(InstanceRule { instance: instance("vendas"), version: v(3) });
            v(3)
        }
        "schedule" => {
            rules.schedules.push(Schedule::new(v(4), T0.minus(HOUR), T0.plus(HOUR)).unwrap());
            v(4)
        }
        "split" => {
            rules.split = Some(split(&[(5, "100")]));
            v(5)
        }
        "promote" => {
            rules.promoted = Some(v(6));
            v(6)
        }
        other => panic!("no such kind {other}"),
    };
    (rules, version)
}

/// Merges the rules of several kinds into one `FlowRules`.
fn combine(kinds: &[&str]) -> FlowRules {
    let mut all = FlowRules::default();
    for kind in kinds {
        let (rules, _) = matching(kind);
        all.pins.extend(rules.pins);
        all.instances.extend(rules.instances);
        all.schedules.extend(rules.schedules);
        all.split = all.split.or(rules.split);
        all.promoted = all.promoted.or(rules.promoted);
    }
    all
}

#[test]
fn for_every_pair_of_rule_kinds_the_higher_one_wins() {
    let (who, place) = (contact("5511987654321"), instance("vendas"));
    let query = query(&who, &place, T0);
    for (hi, higher) in KINDS.iter().enumerate() {
        for lower in &KINDS[hi + 1..] {
            let rules = combine(&[lower, higher]);
            // Each kind on its own matches, so the pair really competes.
            assert!(matching(lower).0.evaluate(FLOW, &query, None).winner.is_some(), "{lower} alone");
            let winner = rules.evaluate(FLOW, &query, None).winner.expect("a rule matches");
            assert_eq!(winner.reason.name(), *higher, "{higher} vs {lower}");
            assert_eq!(winner.version, matching(higher).1, "{higher} vs {lower}");
            // The fast path agrees with the traced one.
            assert_eq!(rules.resolve(FLOW, &query, None).winner, Some(winner));
        }
    }
}

#[test]
fn in_every_combination_of_rule_kinds_the_highest_wins() {
    let (who, place) = (contact("5511987654321"), instance("vendas"));
    let query = query(&who, &place, T0);
    for mask in 1u32..32 {
        let kinds: Vec<&str> = KINDS.iter().enumerate().filter(|(i, _)| mask & (1 << i) != 0).map(|(_, k)| *k).collect();
        let winner = combine(&kinds).evaluate(FLOW, &query, None).winner.expect("a rule matches");
        assert_eq!(winner.reason.name(), kinds[0], "{kinds:?}");
        assert_eq!(winner.version, matching(kinds[0]).1, "{kinds:?}");
    }
}

fn shop(version: u32, lifecycle: Lifecycle) -> VersionDecl {
    VersionDecl::new("shop", version, lifecycle).texts("[done]\npronto\n").entry("done").step("done", Say::finish("done"))
}

fn registry() -> Registry {
    let mut decls = vec![shop(1, Lifecycle::Active)];
    decls.extend((2..=6).map(|n| shop(n, Lifecycle::Inactive)));
    decls.push(
        VersionDecl::new("digital_certificate", 1, Lifecycle::Active)
            .texts("[done]\npronto\n")
            .entry("done")
            .step("done", Say::finish("done")),
    );
    decls.push(
        VersionDecl::new("digital_certificate", 2, Lifecycle::Inactive)
            .texts("[done]\npronto\n")
            .entry("done")
            .step("done", Say::finish("done")),
    );
    Registry::new(decls).expect("test flows are valid")
}

fn all_rules() -> Rules {
    let mut rules = Rules::new();
    rules.set(FLOW, combine(&KINDS));
    rules
}

#[test]
fn the_override_beats_every_rule_and_the_rules_beat_active() {
    let registry = registry();
    let (who, place) = (contact("5511987654321"), instance("vendas"));
    let query = query(&who, &place, T0);

    let overridden = Resolver::new(&registry, Overrides::parse("shop=v1", &registry).unwrap(), Box::new(all_rules()));
    let resolution = overridden.resolve(&registry, &query).unwrap();
    assert_eq!((resolution.version, resolution.reason), (v(1), Reason::Override));

    let ruled = Resolver::new(&registry, Overrides::none(), Box::new(all_rules()));
    let resolution = ruled.resolve(&registry, &query).unwrap();
    assert_eq!(resolution.version, v(2));
    assert_eq!(resolution.reason, Reason::Rule { rule: "pin".to_owned(), detail: Some("contact ***********21".to_owned()) });

    // Another contact on another instance, after the schedule: split.
    let (other, elsewhere) = (contact("5521900000000"), instance("suporte"));
    let later = Query { flow: FLOW, instance: &elsewhere, contact: &other, now: T0.plus(DAY) };
    assert_eq!(ruled.resolve(&registry, &later).unwrap().reason.name(), "split");

    let mut promote_only = Rules::new();
    promote_only.set(FLOW, matching("promote").0);
    let promoted = Resolver::new(&registry, Overrides::none(), Box::new(promote_only));
    assert_eq!(promoted.resolve(&registry, &later).unwrap().version, v(6));

    let empty = Resolver::new(&registry, Overrides::none(), Box::new(Rules::new()));
    let resolution = empty.resolve(&registry, &later).unwrap();
    assert_eq!((resolution.version, resolution.reason), (v(1), Reason::Active));
}

#[test]
fn rules_as_a_policy_only_answer_for_flows_they_have() {
    let rules = all_rules();
    let (who, place) = (contact("5511987654321"), instance("vendas"));
    let mut query = query(&who, &place, T0);
    assert_eq!(Policy::resolve(&rules, &query).map(|r| r.version), Some(v(2)));
    query.flow = "digital_certificate";
    assert_eq!(Policy::resolve(&rules, &query), None);
}

#[test]
fn unleash_published_vectors_hold() {
    assert_eq!(unleash_bucket("gr1", "123"), 73);
    assert_eq!(unleash_bucket("groupX", "999"), 25);
}

#[test]
fn whole_percentages_put_every_contact_where_unleash_would() {
    for n in 0..CONTACTS {
        let who = synthetic(n);
        let (x, bucket) = (position(FLOW, who.as_str()), unleash_bucket(FLOW, who.as_str()));
        assert!(x < 10_000);
        assert_eq!(x / 100 + 1, bucket, "contact {n}");
        // x < p*100 <=> bucket <= p for every whole p follows from the line above;
        // spot-check it through a real split.
        let p = n % 101;
        let rules = Split::new(vec![(v(1), Weight::percent(100 - p)), (v(2), Weight::percent(p))], None, 0).unwrap();
        let got = rules.pick(FLOW, &who).unwrap().0;
        assert_eq!(got == v(2), bucket <= p, "contact {n} at {p}%");
    }
}

/// Which synthetic contacts get the candidate v2 when it has `weight`.
fn candidates(weight: &str, salt: Option<&str>) -> Vec<bool> {
    let baseline = Weight::from_hundredths(10_000 - pct(weight).hundredths()).unwrap();
    let split = Split::new(vec![(v(1), baseline), (v(2), pct(weight))], salt.map(str::to_owned), 0).unwrap();
    (0..CONTACTS).map(|n| split.pick(FLOW, &synthetic(n)).unwrap().0 == v(2)).collect()
}

fn share(picked: &[bool]) -> f64 {
    picked.iter().filter(|in_it| **in_it).count() as f64 * 100.0 / picked.len() as f64
}

#[test]
fn raising_the_candidate_share_keeps_everyone_who_had_it() {
    for (from, to) in [("10", "20"), ("12.5", "12.75"), ("0.01", "1"), ("50", "100")] {
        let (before, after) = (candidates(from, None), candidates(to, None));
        let lost = before.iter().zip(&after).filter(|(had, has)| **had && !**has).count();
        assert_eq!(lost, 0, "{lost} contacts lost the candidate going from {from}% to {to}%");
        assert!(share(&after) >= share(&before));
    }
}

#[test]
fn the_observed_candidate_share_is_within_half_a_point_of_the_weight() {
    for (weight, expected) in [("10", 10.0), ("12.5", 12.5), ("12.75", 12.75), ("0.25", 0.25), ("50", 50.0)] {
        let observed = share(&candidates(weight, None));
        eprintln!("weight {weight}%: observed {observed:.3}% of {CONTACTS} contacts");
        assert!((observed - expected).abs() <= 0.5, "weight {weight}%: observed {observed}%");
    }
}

#[test]
fn a_different_salt_rerandomises_the_buckets() {
    let moved = (0..CONTACTS)
        .filter(|n| {
            let who = synthetic(*n);
            unleash_bucket(FLOW, who.as_str()) != unleash_bucket("shop-2026-05", who.as_str())
        })
        .count();
    let fraction = moved as f64 / f64::from(CONTACTS);
    eprintln!("new salt: {:.2}% of contacts changed bucket", fraction * 100.0);
    assert!(fraction > 0.95, "only {fraction} changed bucket");

    // And the candidate's members at 10% are mostly different people.
    let (old, new) = (candidates("10", None), candidates("10", Some("shop-2026-05")));
    let both = old.iter().zip(&new).filter(|(a, b)| **a && **b).count() as f64;
    let overlap = both / old.iter().filter(|a| **a).count() as f64;
    eprintln!("new salt: {:.2}% of the 10% candidate group stayed in it", overlap * 100.0);
    assert!(overlap < 0.2, "{overlap} of the candidate group stayed");
}

#[test]
fn the_salt_defaults_to_the_flow_name() {
    let who = contact("5511987654321");
    let default = split(&[(1, "50"), (2, "50")]);
    let mut named = default.clone();
    named.salt = Some(FLOW.to_owned());
    assert_eq!(default.pick(FLOW, &who), named.pick(FLOW, &who));
    assert_eq!(default.pick(FLOW, &who).unwrap().1, position(FLOW, who.as_str()));
}

#[test]
fn candidates_take_ranges_from_zero_and_the_baseline_takes_the_end() {
    // Find contacts at known positions under the flow-name salt.
    let at = |lo: u32, hi: u32| {
        (0..CONTACTS).map(synthetic).find(|who| (lo..hi).contains(&position(FLOW, who.as_str()))).expect("a contact in range")
    };
    let two = split(&[(1, "90"), (2, "10")]);
    assert_eq!(two.pick(FLOW, &at(0, 1000)).unwrap().0, v(2));
    assert_eq!(two.pick(FLOW, &at(1000, 10_000)).unwrap().0, v(1));
    let three = split(&[(1, "70"), (2, "10"), (3, "20")]);
    assert_eq!(three.pick(FLOW, &at(0, 1000)).unwrap().0, v(2));
    assert_eq!(three.pick(FLOW, &at(1000, 3000)).unwrap().0, v(3));
    assert_eq!(three.pick(FLOW, &at(3000, 10_000)).unwrap().0, v(1));
}

#[test]
fn a_schedule_applies_inside_its_window_and_ends_by_itself() {
    let mut rules = FlowRules::default();
    rules.schedules.push(Schedule::new(v(2), T0, T0.plus(HOUR)).unwrap());
    rules.schedules.push(Schedule::new(v(3), T0, T0.plus(DAY)).unwrap());
    let (who, place) = (contact("5511987654321"), instance("vendas"));
    let version_at = |rules: &FlowRules, now: Timestamp| rules.evaluate(FLOW, &query(&who, &place, now), None).winner.map(|w| w.version);
    let at = |now: Timestamp| version_at(&rules, now);

    assert_eq!(at(T0), Some(v(2)), "at from, the first listed schedule");
    assert_eq!(at(T0.plus(HOUR).minus(Duration::from_millis(1))), Some(v(2)));
    assert_eq!(at(T0.plus(HOUR)), Some(v(3)), "at until the first one is over; the second still runs");
    assert_eq!(at(T0.plus(DAY)), None, "at until: falls through");
    assert_eq!(at(T0.plus(DAY * 30)), None, "after: falls through");
    assert_eq!(at(T0.minus(Duration::from_millis(1))), None, "before from");

    // With a lower rule configured, the end of the schedule hands over to it.
    rules.promoted = Some(v(4));
    assert_eq!(version_at(&rules, T0.plus(DAY)), Some(v(4)));
    let winner = rules.evaluate(FLOW, &query(&who, &place, T0), None).winner.unwrap();
    assert_eq!(winner.reason.detail(), Some("from 2026-11-18T11:06:40.000Z until 2026-11-18T12:06:40.000Z"));
}

#[test]
fn schedules_refuse_backwards_windows() {
    let err = Schedule::new(v(2), T0, T0).unwrap_err();
    assert!(err.contains("v2") && err.contains("2026-11-18T11:06:40.000Z"), "{err}");
    assert!(Schedule::new(v(2), T0.plus(HOUR), T0).is_err());
}

/// A contact whose bucket puts it on the baseline v1 under a 1%-candidate split.
fn baseline_contact(rules: &Split) -> Contact {
    (0..CONTACTS).map(synthetic).find(|who| rules.pick(FLOW, who).unwrap().0 == v(1)).expect("someone on v1")
}

fn memory_split(v2: &str, days: u32) -> Split {
    let baseline = Weight::from_hundredths(10_000 - pct(v2).hundredths()).unwrap();
    Split::new(vec![(v(1), baseline), (v(2), pct(v2))], None, days).unwrap()
}

#[test]
fn a_remembered_version_is_kept_while_the_weights_move() {
    let place = instance("vendas");
    let rules = FlowRules { split: Some(memory_split("1", 30)), ..FlowRules::default() };
    let who = baseline_contact(rules.split.as_ref().unwrap());
    let query = query(&who, &place, T0);

    // Without memory the bucket says v1; remembered on v2 ten days ago, it stays on v2.
    assert_eq!(rules.evaluate(FLOW, &query, None).winner.unwrap().version, v(1));
    let remembered = Some((v(2), T0.minus(DAY * 10)));
    let kept = rules.evaluate(FLOW, &query, remembered);
    let winner = kept.winner.unwrap();
    assert_eq!(winner.version, v(2));
    assert_eq!(winner.reason.detail(), Some("remembered since 2026-11-08T11:06:40.000Z"));
    assert!(!kept.remember, "already remembered");

    // Listed at 0% still counts as being in the split.
    let zero = FlowRules { split: Some(memory_split("0", 30)), ..FlowRules::default() };
    assert_eq!(zero.evaluate(FLOW, &query, remembered).winner.unwrap().version, v(2));

    // Removed from the split: the memory no longer applies.
    let removed = FlowRules { split: Some(split(&[(1, "100")])), ..FlowRules::default() };
    let mut removed = removed;
    removed.split.as_mut().unwrap().memory_days = 30;
    let evaluation = removed.evaluate(FLOW, &query, remembered);
    assert_eq!(evaluation.winner.unwrap().version, v(1));
    assert!(evaluation.remember);
    assert!(evaluation.checks[3].detail.contains("remembered v2 is no longer in the split"), "{:?}", evaluation.checks[3]);
}

#[test]
fn expired_memory_buckets_again() {
    let place = instance("vendas");
    let rules = FlowRules { split: Some(memory_split("1", 30)), ..FlowRules::default() };
    let who = baseline_contact(rules.split.as_ref().unwrap());
    let query = query(&who, &place, T0);
    for age in [DAY * 30, DAY * 31, DAY * 400] {
        let evaluation = rules.evaluate(FLOW, &query, Some((v(2), T0.minus(age))));
        assert_eq!(evaluation.winner.unwrap().version, v(1), "memory {age:?} old");
        assert!(evaluation.remember, "the fresh choice is remembered");
        assert!(evaluation.checks[3].detail.starts_with("memory of v2 from "), "{:?}", evaluation.checks[3]);
    }
    let fresh = rules.evaluate(FLOW, &query, Some((v(2), T0.minus(DAY * 30).plus(Duration::from_millis(1)))));
    assert_eq!(fresh.winner.unwrap().version, v(2), "just inside the window");
}

#[test]
fn with_memory_off_the_remembered_version_is_ignored_and_nothing_is_remembered() {
    let place = instance("vendas");
    let rules = FlowRules { split: Some(memory_split("1", 0)), ..FlowRules::default() };
    let who = baseline_contact(rules.split.as_ref().unwrap());
    let evaluation = rules.evaluate(FLOW, &query(&who, &place, T0), Some((v(2), T0.minus(HOUR))));
    assert_eq!(evaluation.winner.unwrap().version, v(1));
    assert!(!evaluation.remember);
}

#[test]
fn remember_is_set_only_when_the_split_chose_by_bucket_with_memory_on() {
    let (who, place) = (contact("5511987654321"), instance("vendas"));
    let query = query(&who, &place, T0);
    let mut rules = FlowRules { split: Some(memory_split("50", 7)), ..FlowRules::default() };
    assert!(rules.evaluate(FLOW, &query, None).remember);
    assert!(rules.resolve(FLOW, &query, None).remember, "the fast path agrees");
    // A higher rule won: nothing to remember.
    rules.pins.push(Pin { contact: who.clone(), version: v(1) });
    assert!(!rules.evaluate(FLOW, &query, None).remember);
    rules.pins.clear();
    rules.promoted = Some(v(1));
    rules.split = None;
    assert!(!rules.evaluate(FLOW, &query, None).remember, "promote");
}

#[test]
fn weights_parse_percentages_with_up_to_two_decimals() {
    for (text, hundredths) in [("12.5", 1250), ("10", 1000), ("0.25", 25), ("100", 10_000), ("0", 0), ("12.75", 1275), (" 7.5% ", 750), ("007", 700), ("100.00", 10_000)] {
        let weight = Weight::parse(text).unwrap_or_else(|err| panic!("{text}: {err}"));
        assert_eq!(weight.hundredths(), hundredths, "{text}");
    }
    for bad in ["", "-5", "-0.5", "100.01", "101", "1000", "NaN", "nan", "1e3", "12.345", "12.", ".5", "+5", "ten", "5 5", "inf", "99999999999"] {
        let err = Weight::parse(bad).expect_err(bad);
        assert!(err.contains(&format!("'{bad}'")), "{bad}: {err}");
        assert!(!err.contains('\n') && err.starts_with("weight"), "{err}");
    }
    assert!(Weight::parse("-5").unwrap_err().contains("negative"));
    assert!(Weight::parse("101").unwrap_err().contains("more than 100"));
    assert!(Weight::parse("12.345").unwrap_err().contains("2 decimals"));
}

#[test]
fn split_new_refuses_bad_weights_and_salts() {
    let err = Split::new(vec![(v(1), pct("80")), (v(2), pct("10.5"))], None, 0).unwrap_err();
    assert_eq!(err, "weights of the split sum to 90.5, not 100 (v1=80, v2=10.5)");
    let err = Split::new(vec![(v(1), pct("50")), (v(2), pct("50")), (v(2), pct("0"))], None, 0).unwrap_err();
    assert!(err.contains("lists v2 twice"), "{err}");
    let err = Split::new(Vec::new(), None, 0).unwrap_err();
    assert!(err.contains("no versions"), "{err}");
    let err = Split::new(vec![(v(1), pct("100"))], Some(String::new()), 0).unwrap_err();
    assert!(err.contains("empty salt"), "{err}");
    let err = Split::new(vec![(v(1), pct("100")), (v(1), pct("100"))], Some(" ".to_owned()), 0).unwrap_err();
    assert!(err.contains("twice") && err.contains("sum to 200") && err.contains("empty salt") && !err.contains('\n'), "{err}");

    assert!(Split::new(vec![(v(1), pct("100"))], None, 0).is_ok(), "a single version is a valid split");
    assert!(Split::new(vec![(v(1), pct("87.5")), (v(2), pct("12.5"))], Some("spring".to_owned()), 30).is_ok());
}

#[test]
fn validate_names_the_flow_the_version_and_suggests() {
    let registry = registry();
    let mut rules = FlowRules {
        split: Some(Split { weights: vec![(v(1), pct("80")), (v(9), pct("10.5"))], salt: None, memory_days: 0, guard: None, weights_after_event: None }),
        ..FlowRules::default()
    };
    rules.pins.push(Pin { contact: contact("5511987654321"), version: v(1) });
    rules.pins.push(Pin { contact: contact("5511987654321"), version: v(2) });
    rules.instances.push(InstanceRule { instance: instance("vendas"), version: v(2) });
    rules.instances.push(InstanceRule { instance: instance("vendas"), version: v(1) });
    rules.schedules.push(Schedule { version: v(2), from: T0, until: T0 });
    rules.promoted = Some(v(7));

    let problems = rules.validate("digital_certificate", &registry);
    let expected = [
        "digital_certificate: split names v9, which is not compiled in (compiled: v1, v2)",
        "digital_certificate: promote names v7, which is not compiled in (compiled: v1, v2)",
        "digital_certificate: contact 5511*******21 is pinned 2 times (v1, v2); keep one pin",
        "digital_certificate: instance vendas is listed 2 times; keep one rule",
        "digital_certificate: schedule for v2 starts at 2026-11-18T11:06:40.000Z, which is not before its end 2026-11-18T11:06:40.000Z (it would never apply)",
        "weights of digital_certificate's split sum to 90.5, not 100 (v1=80, v9=10.5)",
    ];
    assert_eq!(problems, expected);
    for problem in &problems {
        assert!(!problem.contains("5511987654321"), "unmasked contact: {problem}");
    }

    let unknown = FlowRules { promoted: Some(v(1)), ..FlowRules::default() };
    assert_eq!(unknown.validate("digital_certficate", &registry), ["rules name unknown flow 'digital_certficate' (did you mean 'digital_certificate'?)"]);
    assert_eq!(unknown.validate("zzz", &registry), ["rules name unknown flow 'zzz' (flows: digital_certificate, shop)"]);

    let mut pinned = FlowRules::default();
    pinned.pins.push(Pin { contact: contact("5511987654321"), version: v(3) });
    assert_eq!(
        pinned.validate("digital_certificate", &registry),
        ["digital_certificate: the pin of contact 5511*******21 names v3, which is not compiled in (compiled: v1, v2)"]
    );
    assert!(combine(&KINDS).validate(FLOW, &registry).is_empty(), "the precedence fixture is valid");
}

#[test]
fn rules_hold_one_entry_per_flow_and_validate_them_all() {
    let registry = registry();
    let mut rules = Rules::new();
    rules.set("shop", FlowRules { promoted: Some(v(2)), ..FlowRules::default() });
    rules.set("digital_certificate", FlowRules { promoted: Some(v(5)), ..FlowRules::default() });
    rules.set("shopp", FlowRules { promoted: Some(v(1)), ..FlowRules::default() });
    let flows: Vec<&str> = rules.flows().map(|(flow, _)| flow).collect();
    assert_eq!(flows, ["digital_certificate", "shop", "shopp"]);
    assert_eq!(rules.get("shop").and_then(|r| r.promoted), Some(v(2)));
    assert_eq!(
        rules.validate(&registry),
        [
            "digital_certificate: promote names v5, which is not compiled in (compiled: v1, v2)",
            "rules name unknown flow 'shopp' (did you mean 'shop'?)",
        ]
    );
    rules.set("shopp", FlowRules::default());
    assert!(rules.get("shopp").is_none(), "empty rules remove the flow");
    assert!(FlowRules::default().is_empty() && !combine(&["promote"]).is_empty());
}

#[test]
fn the_trace_lists_each_rule_kind_up_to_the_winner_with_masked_contacts() {
    let (who, place) = (contact("5511987654321"), instance("vendas"));
    let later = T0.plus(DAY);
    let mut rules = combine(&KINDS);
    rules.pins[0].contact = contact("5521900000000");
    rules.instances[0].instance = instance("suporte");
    rules.split = Some(split(&[(1, "87.5"), (5, "12.5")]));
    let evaluation = rules.evaluate(FLOW, &query(&who, &place, later), None);

    let kinds: Vec<&str> = evaluation.checks.iter().map(|check| check.rule).collect();
    assert_eq!(kinds, ["pin", "instance", "schedule", "split"], "promote is not reached");
    let matched: Vec<bool> = evaluation.checks.iter().map(|check| check.matched).collect();
    assert_eq!(matched, [false, false, false, true]);
    assert_eq!(evaluation.checks[0].detail, "contact 5511*******21 is not pinned (1 pin)");
    assert_eq!(evaluation.checks[1].detail, "instance vendas has no rule (1 instance rule)");
    assert_eq!(evaluation.checks[2].detail, "no schedule covers 2026-11-19T11:06:40.000Z (1 schedule)");

    let x = position(FLOW, who.as_str());
    let bucket = unleash_bucket(FLOW, who.as_str());
    let (version, weight) = if x < 1250 { (v(5), "12.5") } else { (v(1), "87.5") };
    assert_eq!(evaluation.checks[3].detail, format!("bucket {bucket} (position {x} of 10000) -> {version} at {weight}%"));
    assert_eq!(evaluation.checks[3].version, Some(version));
    let winner = evaluation.winner.unwrap();
    assert_eq!(winner.reason, Reason::Rule { rule: "split".to_owned(), detail: Some(format!("{version} at {weight}%, bucket {bucket}")) });
    for check in &evaluation.checks {
        assert!(!check.detail.contains(who.as_str()), "unmasked: {}", check.detail);
    }

    // A pin match masks too, and nothing after it is checked.
    rules.pins[0].contact = who.clone();
    let evaluation = rules.evaluate(FLOW, &query(&who, &place, later), None);
    assert_eq!(evaluation.checks.len(), 1);
    assert_eq!(evaluation.checks[0].detail, "contact 5511*******21 pinned to v2");
    assert_eq!(evaluation.checks[0].version, Some(v(2)));

    // No rules at all: five unmatched checks and no winner.
    let evaluation = FlowRules::default().evaluate(FLOW, &query(&who, &place, later), None);
    let details: Vec<&str> = evaluation.checks.iter().map(|check| check.detail.as_str()).collect();
    assert_eq!(details, ["no pins", "no instance rules", "no schedules", "no split", "nothing promoted"]);
    assert!(evaluation.winner.is_none() && evaluation.checks.iter().all(|check| !check.matched));

    // The fast path builds no trace.
    assert!(rules.resolve(FLOW, &query(&who, &place, later), None).checks.is_empty());
}

/// Timing of the hot path with ten rules that all miss before the split.
/// Debug builds are several times slower than release; run with
/// `cargo test -p switchyard-engine --test rollout -- --ignored --nocapture`.
#[test]
#[ignore = "timing, not a correctness check"]
fn resolution_timing() {
    let mut rules = FlowRules::default();
    for n in 0..5 {
        rules.pins.push(Pin { contact: contact(&format!("55219000000{n:02}")), version: v(2) });
    }
    for n in 0..3 {
        rules.instances.push(InstanceRule { instance: instance(&format!("dept{n}")), version: v(3) });
    }
    rules.schedules.push(Schedule::new(v(4), T0.plus(DAY), T0.plus(DAY * 2)).unwrap());
    rules.split = Some(split(&[(1, "87.5"), (5, "12.5")]));
    let mut all = Rules::new();
    all.set(FLOW, rules);
    let (who, place) = (contact("5511987654321"), instance("vendas"));
    let query = query(&who, &place, T0);
    let rounds = 200_000u32;
    let start = Instant::now();
    let mut hits = 0u32;
    for _ in 0..rounds {
        hits += u32::from(std::hint::black_box(Policy::resolve(&all, std::hint::black_box(&query))).is_some());
    }
    let per = start.elapsed().as_nanos() / u128::from(rounds);
    let start = Instant::now();
    for n in 0..rounds {
        std::hint::black_box(position(FLOW, std::hint::black_box(if n % 2 == 0 { "5511987654321" } else { "5511987654322" })));
    }
    let hash = start.elapsed().as_nanos() / u128::from(rounds);
    eprintln!("Policy::resolve with 10 rules: {per} ns per call ({hits} hits); position(): {hash} ns");
}
