//! The official JSON-Schema-Test-Suite (draft 2020-12) through this crate's own entry points:
//! `schema::compile` (the jsonschema crate with the default features, the in-crate validator
//! with `--no-default-features`) and the in-crate validator directly (`kv-envelope-validator`).
//!
//! The suite is not copied into this repository: `make json-schema-suite` (part of `make test`)
//! fetches a pinned copy (scripts/json-schema-suite.sh) and runs this file with `--ignored` in
//! both builds; plain `cargo test` lists it as ignored. Every test of the suite has a line in
//! `tests/json-schema-suite/expectations.txt` saying what each validator does with it: agrees
//! with the suite, refuses the schema at compile time (with the recorded reason), or answers
//! otherwise for one of the two deliberate choices in [`Deviation`]. Any other answer fails the
//! run, and `make bless` refuses to record one; a line that changes fails until `make bless`
//! rewrites the file and the diff is reviewed.
//!
//! Remote references (`http://localhost:1234/…`, the suite's remotes/) are not plugged in:
//! `schema::compile` takes one self-contained schema and resolves nothing over the network, so
//! those groups are refused, as an application's schema with such a reference would be.

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    panic::{self, AssertUnwindSafe},
    path::{Path, PathBuf},
};

use kv_envelope::schema;
use kv_envelope_validator::{self as compact, is_plausible_email, Document};
use serde_json::Value;

/// Where the Makefile tells the runner the suite is (`target/json-schema-test-suite` otherwise).
const DIR_VAR: &str = "JSON_SCHEMA_SUITE_DIR";
const EXPECTATIONS: &str = "tests/json-schema-suite/expectations.txt";

/// The two columns of the expectations file.
const VALIDATORS: [&str; 2] = ["jsonschema", "compact"];
const JSONSCHEMA: usize = 0;
const COMPACT: usize = 1;

/// Where `schema::compile` answers differently from the suite on purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Deviation {
    /// `format` is an assertion (an `email` field must hold an email), where draft 2020-12 makes
    /// it an annotation unless a schema opts in: the suite's top-level files expect anything to
    /// pass. Proven per test: the jsonschema crate with formats as annotations gives the suite's
    /// answer, with formats asserted ours.
    FormatsAsserted,
    /// `email` is [`is_plausible_email`], a linear-time check that refuses quoted local parts
    /// and IP-literal domains. Proven per test: the value is such an address, and jsonschema's
    /// own `email` check gives the suite's answer.
    EmailPlausible,
}

impl Deviation {
    const ALL: [Deviation; 2] = [Deviation::FormatsAsserted, Deviation::EmailPlausible];

    fn name(self) -> &'static str {
        match self {
            Deviation::FormatsAsserted => "formats-asserted",
            Deviation::EmailPlausible => "email-plausible",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    Agree,
    /// The group's schema does not compile (the reason is the group's).
    Refused,
    Deviation(Deviation),
}

impl Outcome {
    fn name(&self) -> &'static str {
        match self {
            Outcome::Agree => "agree",
            Outcome::Refused => "refused",
            Outcome::Deviation(d) => d.name(),
        }
    }

    fn parse(s: &str) -> Option<Outcome> {
        match s {
            "agree" => Some(Outcome::Agree),
            "refused" => Some(Outcome::Refused),
            _ => Deviation::ALL
                .into_iter()
                .find(|d| d.name() == s)
                .map(Outcome::Deviation),
        }
    }
}

/// One group of the suite (a schema and its tests) and what each validator made of it; `None`
/// where this build does not run that validator.
#[derive(Debug, Clone, PartialEq)]
struct Group {
    file: String,
    index: usize,
    description: String,
    /// Per validator: `Some(Some(reason))` refused, `Some(None)` compiled.
    refusals: [Option<Option<String>>; 2],
    tests: Vec<Test>,
}

#[derive(Debug, Clone, PartialEq)]
struct Test {
    description: String,
    outcomes: [Option<Outcome>; 2],
}

/// A group as the suite states it.
struct SuiteGroup {
    file: String,
    index: usize,
    description: String,
    schema: Value,
    tests: Vec<(String, Value, bool)>,
}

/// What one entry point did with one group: refused it, or these verdicts.
type Run = Result<Vec<bool>, String>;

#[test]
#[ignore = "needs the official JSON Schema Test Suite: `make json-schema-suite` (part of `make test`) fetches it (scripts/json-schema-suite.sh)"]
fn json_schema_test_suite() {
    let dir = suite_dir();
    let suite = load_suite(&dir);
    let mut failures = Vec::new();

    // `schema::compile`, whichever engine this build has, and the in-crate validator directly.
    let engine = schema::compile("suite", 1, &serde_json::json!({}))
        .expect("an empty schema compiles")
        .engine();
    let column = VALIDATORS
        .iter()
        .position(|v| *v == engine)
        .expect("a known engine");
    let via_compile: Vec<Run> = suite
        .iter()
        .map(|g| run_group(g, &mut failures, "schema::compile", compile_entry))
        .collect();
    let direct: Vec<Run> = suite
        .iter()
        .map(|g| run_group(g, &mut failures, "compact::Validator", compact_entry))
        .collect();
    if column == COMPACT {
        for (g, (a, b)) in suite.iter().zip(via_compile.iter().zip(&direct)) {
            if a != b {
                failures.push(format!(
                    "{}: schema::compile (compact) and compact::Validator differ: {a:?} / {b:?}",
                    here(g)
                ));
            }
        }
    }

    let mut groups = Vec::with_capacity(suite.len());
    for (i, g) in suite.iter().enumerate() {
        let mut refusals = [None, None];
        let mut outcomes: Vec<[Option<Outcome>; 2]> = vec![[None, None]; g.tests.len()];
        let mut record = |col: usize, run: &Run, failures: &mut Vec<String>| match run {
            Err(reason) => {
                refusals[col] = Some(Some(reason.clone()));
                for o in &mut outcomes {
                    o[col] = Some(Outcome::Refused);
                }
            }
            Ok(verdicts) => {
                refusals[col] = Some(None);
                for (t, (&got, (desc, data, valid))) in verdicts.iter().zip(&g.tests).enumerate() {
                    match classify(g, data, *valid, got) {
                        Some(o) => outcomes[t][col] = Some(o),
                        None => failures.push(format!(
                            "{} test {t} ({desc}): {} answers {got}, the suite {valid}: a \
                             wrong answer, and no listed deviation",
                            here(g),
                            VALIDATORS[col],
                        )),
                    }
                }
            }
        };
        record(column, &via_compile[i], &mut failures);
        if column != COMPACT {
            record(COMPACT, &direct[i], &mut failures);
        }
        groups.push(Group {
            file: g.file.clone(),
            index: g.index,
            description: g.description.clone(),
            refusals,
            tests: g
                .tests
                .iter()
                .zip(outcomes)
                .map(|((desc, _, _), outcomes)| Test {
                    description: desc.clone(),
                    outcomes,
                })
                .collect(),
        });
    }

    // Validators this build does not run keep their recorded lines.
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(EXPECTATIONS);
    let committed_text = std::fs::read_to_string(&path).unwrap_or_default();
    let committed = parse_expectations(&committed_text);
    for g in &mut groups {
        let recorded = committed.get(&(g.file.clone(), g.index));
        for col in 0..2 {
            if g.refusals[col].is_none() {
                g.refusals[col] = recorded.map(|r| r.refusals[col].clone().unwrap_or(None));
                for (t, test) in g.tests.iter_mut().enumerate() {
                    test.outcomes[col] =
                        recorded.and_then(|r| r.tests.get(t).and_then(|t| t.outcomes[col].clone()));
                }
            }
        }
    }
    failures.extend(cross_disagreements(&groups));

    print_summary(&groups, column, &via_compile, &direct, &suite);

    let rendered = render(&groups);
    if failures.is_empty()
        && rendered != committed_text
        && std::env::var_os("KV_ENVELOPE_BLESS").is_some()
    {
        assert_eq!(
            column, JSONSCHEMA,
            "bless with the default features: only that build runs both validators"
        );
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &rendered).unwrap();
        eprintln!("wrote {EXPECTATIONS}: review the diff");
        return;
    }
    if rendered != committed_text {
        let old: Vec<&str> = committed_text.lines().collect();
        let new: Vec<&str> = rendered.lines().collect();
        let mut shown = 0;
        let mut diff = String::new();
        for i in 0..old.len().max(new.len()) {
            let (o, n) = (old.get(i), new.get(i));
            if o != n && shown < 30 {
                shown += 1;
                let _ = writeln!(
                    diff,
                    "line {}:\n  expected: {:?}\n  got:      {:?}",
                    i + 1,
                    o,
                    n
                );
            }
        }
        failures.push(format!(
            "{EXPECTATIONS} does not match this run (a validator answers differently, or refuses \
             with another reason): review, then `make bless` (KV_ENVELOPE_BLESS=1)\n{diff}"
        ));
    }
    assert!(
        failures.is_empty(),
        "{} failure(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

fn suite_dir() -> PathBuf {
    let dir = std::env::var_os(DIR_VAR)
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("target/json-schema-test-suite")
        });
    let tests = dir.join("tests/draft2020-12");
    assert!(
        tests.is_dir(),
        "the JSON Schema Test Suite is not at {} ({DIR_VAR}): run `make json-schema-suite`, or \
         `scripts/json-schema-suite.sh` first",
        tests.display()
    );
    dir
}

/// Every group of every file under tests/draft2020-12, files in path order.
fn load_suite(dir: &Path) -> Vec<SuiteGroup> {
    let root = dir.join("tests/draft2020-12");
    let mut files = Vec::new();
    let mut pending = vec![root.clone()];
    while let Some(d) = pending.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "json") {
                files.push(path);
            }
        }
    }
    files.sort();
    let mut groups = Vec::new();
    for path in files {
        let name = path
            .strip_prefix(&root)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        let text = std::fs::read_to_string(&path).unwrap();
        let Value::Array(items) = serde_json::from_str(&text).unwrap() else {
            panic!("{name}: not an array of groups");
        };
        for (index, g) in items.into_iter().enumerate() {
            let tests = g["tests"]
                .as_array()
                .unwrap_or_else(|| panic!("{name} {index}: no tests"))
                .iter()
                .map(|t| {
                    (
                        t["description"].as_str().unwrap().to_string(),
                        t["data"].clone(),
                        t["valid"].as_bool().unwrap(),
                    )
                })
                .collect();
            groups.push(SuiteGroup {
                file: name.clone(),
                index,
                description: g["description"].as_str().unwrap().to_string(),
                schema: g["schema"].clone(),
                tests,
            });
        }
    }
    assert!(!groups.is_empty(), "no groups under {}", root.display());
    groups
}

fn here(g: &SuiteGroup) -> String {
    format!("{} group {} ({})", g.file, g.index, g.description)
}

/// A compiled validator's verdict on a value, as a `Value` and as the parsed bytes a read
/// validates (the two must agree).
type Check = Box<dyn Fn(&Value) -> (bool, bool)>;

fn compile_entry(schema: &Value) -> Result<Check, String> {
    match schema::compile("suite", 1, schema) {
        Ok(v) => Ok(Box::new(move |data| {
            let text = data.to_string();
            let parsed = Document::parse(text.as_bytes()).is_ok_and(|d| v.is_valid_document(&d));
            (v.is_valid(data), parsed)
        })),
        Err(kv_envelope::Error::Schema { reason, .. }) => Err(reason),
        Err(e) => panic!("schema::compile failed with another error: {e}"),
    }
}

fn compact_entry(schema: &Value) -> Result<Check, String> {
    let v = compact::Validator::compile(schema)?;
    Ok(Box::new(move |data| {
        let built = Document::from_serialize(data).is_ok_and(|d| v.is_valid(d.root()));
        let text = data.to_string();
        let parsed = Document::parse(text.as_bytes()).is_ok_and(|d| v.is_valid(d.root()));
        (built, parsed)
    }))
}

/// Compile `g`'s schema with `entry` and check its tests; a panic is a failure, not a crash of
/// the whole run.
fn run_group(
    g: &SuiteGroup,
    failures: &mut Vec<String>,
    name: &str,
    entry: fn(&Value) -> Result<Check, String>,
) -> Run {
    let run = panic::catch_unwind(AssertUnwindSafe(
        || -> Result<Result<Vec<bool>, String>, String> {
            let check = entry(&g.schema)?;
            let mut verdicts = Vec::with_capacity(g.tests.len());
            for (desc, data, _) in &g.tests {
                let (value, parsed) = check(data);
                if value != parsed {
                    return Ok(Err(format!(
                        "test {desc:?}: {value} on the value, {parsed} on the parsed bytes"
                    )));
                }
                verdicts.push(value);
            }
            Ok(Ok(verdicts))
        },
    ));
    match run {
        Ok(Ok(Ok(verdicts))) => Ok(verdicts),
        Ok(Ok(Err(inconsistent))) => {
            failures.push(format!("{}: {name}: {inconsistent}", here(g)));
            Ok(Vec::new())
        }
        Ok(Err(reason)) => Err(one_line(&reason)),
        Err(_) => {
            failures.push(format!("{}: {name} panicked", here(g)));
            Err("panicked".into())
        }
    }
}

/// Refusal reasons go on one line of the expectations file.
fn one_line(s: &str) -> String {
    s.replace('\n', "\\n")
}

/// `Agree`, a listed deviation, or `None`: a wrong answer.
fn classify(g: &SuiteGroup, data: &Value, valid: bool, got: bool) -> Option<Outcome> {
    if got == valid {
        return Some(Outcome::Agree);
    }
    // The oracles: the jsonschema crate as `schema::compile` configures it, then with one choice
    // undone. Each must compile and give exactly the answer it is there to explain.
    let oracle = |asserted: bool, own_email: bool| {
        let mut options = jsonschema::options().should_validate_formats(asserted);
        if own_email {
            options = options.with_format("email", is_plausible_email);
        }
        options.build(&g.schema).ok().map(|v| v.is_valid(data))
    };
    if oracle(true, true) != Some(got) {
        return None;
    }
    if !g.file.starts_with("optional/format/") && oracle(false, true) == Some(valid) {
        return Some(Outcome::Deviation(Deviation::FormatsAsserted));
    }
    let quoted_or_literal = data.as_str().is_some_and(|s| {
        s.starts_with('"') || s.rsplit_once('@').is_some_and(|(_, d)| d.starts_with('['))
    });
    if quoted_or_literal && oracle(true, false) == Some(valid) {
        return Some(Outcome::Deviation(Deviation::EmailPlausible));
    }
    None
}

/// Where both validators compile a group, they give the same verdict on each test.
fn cross_disagreements(groups: &[Group]) -> Vec<String> {
    let mut out = Vec::new();
    for g in groups {
        for (t, test) in g.tests.iter().enumerate() {
            if let [Some(a), Some(b)] = &test.outcomes {
                let verdict = |o: &Outcome| match o {
                    Outcome::Refused => None,
                    Outcome::Agree => Some(true),
                    Outcome::Deviation(_) => Some(false),
                };
                if let (Some(x), Some(y)) = (verdict(a), verdict(b)) {
                    if x != y {
                        out.push(format!(
                            "{} group {} test {t} ({}): jsonschema {}, compact {}: the \
                             validators disagree",
                            g.file,
                            g.index,
                            test.description,
                            a.name(),
                            b.name()
                        ));
                    }
                }
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// The expectations file: per group a `== <file> <index>: <description>` line, a
// `<validator> refuses: <reason>` line for each validator that refuses its schema, then one
// `<test> <jsonschema outcome> <compact outcome>  <description>` line per test.

const HEADER: &str = "\
# The official JSON-Schema-Test-Suite, draft 2020-12 (the jsonschema 4.26.0 sdist on PyPI,
# scripts/json-schema-suite.sh), through kv-envelope's validators: tests/json_schema_suite.rs
# checks every line (`make json-schema-suite`, part of `make test`); `make bless` rewrites it.
#
# Per group: `== <file> <group>: <description>`, then `<validator> refuses: <reason>` for each
# validator that refuses its schema at compile time. Per test:
# `<test> <jsonschema> <compact>  <description>`, each outcome one of
#   agree             the suite's answer
#   refused           the group's schema is refused at compile time (reason above)
#   formats-asserted  the suite expects `format` as an annotation; kv-envelope asserts it
#   email-plausible   the cheap `email` check refuses a quoted local part or an IP-literal domain
# A wrong answer is never recorded: it fails the run.
";

fn render(groups: &[Group]) -> String {
    let mut out = String::from(HEADER);
    for g in groups {
        let _ = writeln!(
            out,
            "== {} {}: {}",
            g.file,
            g.index,
            one_line(&g.description)
        );
        for (col, name) in VALIDATORS.iter().enumerate() {
            if let Some(Some(reason)) = &g.refusals[col] {
                let _ = writeln!(out, "{name} refuses: {reason}");
            }
        }
        for (t, test) in g.tests.iter().enumerate() {
            let name = |o: &Option<Outcome>| o.as_ref().map_or("unknown", Outcome::name);
            let _ = writeln!(
                out,
                "{t} {} {}  {}",
                name(&test.outcomes[JSONSCHEMA]),
                name(&test.outcomes[COMPACT]),
                one_line(&test.description)
            );
        }
    }
    out
}

/// The committed file, by (file, group); lines it cannot read are left out (and then differ from
/// the rendered run).
fn parse_expectations(text: &str) -> BTreeMap<(String, usize), Group> {
    let mut groups: BTreeMap<(String, usize), Group> = BTreeMap::new();
    let mut current: Option<(String, usize)> = None;
    for line in text.lines() {
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("== ") {
            let Some((head, description)) = rest.split_once(": ") else {
                continue;
            };
            let Some((file, index)) = head.rsplit_once(' ') else {
                continue;
            };
            let Ok(index) = index.parse() else { continue };
            let key = (file.to_string(), index);
            groups.insert(
                key.clone(),
                Group {
                    file: file.to_string(),
                    index,
                    description: description.to_string(),
                    refusals: [Some(None), Some(None)],
                    tests: Vec::new(),
                },
            );
            current = Some(key);
            continue;
        }
        let Some(group) = current.as_ref().and_then(|k| groups.get_mut(k)) else {
            continue;
        };
        if let Some((name, reason)) = line.split_once(" refuses: ") {
            if let Some(col) = VALIDATORS.iter().position(|v| *v == name) {
                group.refusals[col] = Some(Some(reason.to_string()));
            }
            continue;
        }
        let mut parts = line.splitn(4, ' ');
        let (Some(_), Some(a), Some(b)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        group.tests.push(Test {
            description: parts.next().unwrap_or_default().trim_start().to_string(),
            outcomes: [Outcome::parse(a), Outcome::parse(b)],
        });
    }
    groups
}

// ---------------------------------------------------------------------------------------------
// The summary RELIABILITY.md quotes.

fn print_summary(
    groups: &[Group],
    column: usize,
    via_compile: &[Run],
    direct: &[Run],
    suite: &[SuiteGroup],
) {
    let tests: usize = suite.iter().map(|g| g.tests.len()).sum();
    println!(
        "JSON-Schema-Test-Suite draft 2020-12: {} files, {} groups, {tests} tests",
        {
            let mut files: Vec<&str> = suite.iter().map(|g| g.file.as_str()).collect();
            files.dedup();
            files.len()
        },
        suite.len()
    );
    println!();
    println!(
        "| validator | entry point | groups compiled | groups refused | agree | \
         formats-asserted | email-plausible | refused | wrong answers |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    let row = |name: &str, entry: &str, col: usize, runs: &[Run]| {
        let compiled = runs.iter().filter(|r| r.is_ok()).count();
        let count = |want: &Outcome| {
            groups
                .iter()
                .flat_map(|g| &g.tests)
                .filter(|t| t.outcomes[col].as_ref() == Some(want))
                .count()
        };
        let known: usize = [Outcome::Agree, Outcome::Refused]
            .iter()
            .chain(&Deviation::ALL.map(Outcome::Deviation))
            .map(count)
            .sum();
        println!(
            "| {name} | `{entry}` | {compiled} | {} | {} | {} | {} | {} | {} |",
            runs.len() - compiled,
            count(&Outcome::Agree),
            count(&Outcome::Deviation(Deviation::FormatsAsserted)),
            count(&Outcome::Deviation(Deviation::EmailPlausible)),
            count(&Outcome::Refused),
            tests - known,
        );
    };
    row(VALIDATORS[column], "schema::compile", column, via_compile);
    row("compact", "compact::Validator::compile", COMPACT, direct);
    let both = groups
        .iter()
        .flat_map(|g| &g.tests)
        .filter(|t| {
            t.outcomes
                .iter()
                .all(|o| o.as_ref().is_some_and(|o| *o != Outcome::Refused))
        })
        .count();
    println!();
    println!(
        "Tests both validators compile: {both}; disagreements between them: {}.",
        cross_disagreements(groups).len()
    );
}
