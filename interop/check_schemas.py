"""The committed schemas as another service's Python sees them (`make interop-schemas`).

Every file in schemas/ is a valid draft 2020-12 schema (Draft202012Validator.check_schema); the
stored values of interop/cases.json get, under a validator with a FormatChecker, the verdicts
tests/schemas.rs asserts in Rust; and the Python example of docs/interop.md runs as written.
Exits non-zero on the first kind of failure, after reporting all of its cases.
"""

import json
import pathlib
import re
import subprocess
import sys
import tempfile

from jsonschema import Draft202012Validator, FormatChecker

ROOT = pathlib.Path(__file__).resolve().parent.parent


def fail(lines):
    for line in lines:
        print(f"FAIL {line}", file=sys.stderr)
    sys.exit(1)


def compile_schemas():
    files = sorted((ROOT / "schemas").glob("*.json"))
    if len(files) < 10:
        fail([f"only {len(files)} schema files in schemas/"])
    validators = {}
    errors = []
    for path in files:
        schema = json.loads(path.read_text())
        try:
            Draft202012Validator.check_schema(schema)
        except Exception as e:  # noqa: BLE001 - report every file, then fail
            errors.append(f"{path.name}: {e}")
            continue
        validators[path.name] = Draft202012Validator(schema, format_checker=FormatChecker())
    if errors:
        fail(errors)
    print(f"python jsonschema: {len(validators)} schemas pass check_schema")
    return validators


def check_cases(validators):
    cases = json.loads((ROOT / "interop/cases.json").read_text())
    wrong = []
    for case in cases:
        text = case["text"] if "text" in case else (ROOT / case["file"]).read_text()
        valid = validators[case["schema"]].is_valid(json.loads(text))
        if valid != case["valid"]:
            wrong.append(f"{case['what']}: jsonschema says {valid}, Rust {case['valid']}")
    if wrong:
        fail(wrong)
    accepted = sum(1 for c in cases if c["valid"])
    exact = sum(1 for c in cases if c.get("exact_integers"))
    if accepted < 10 or len(cases) - accepted < 10:
        fail(["too few cases either way"])
    print(
        f"python jsonschema: {len(cases)} stored values checked ({accepted} valid, "
        f"{len(cases) - accepted} refused; {exact} of them need exact integers)"
    )


def doc_example():
    """The first ```python block of the "## Python" section of docs/interop.md."""
    doc = (ROOT / "docs/interop.md").read_text()
    section = doc.split("\n## Python\n", 1)
    match = re.search(r"```python\n(.*?)```", section[1], re.S) if len(section) == 2 else None
    if match is None:
        fail(["docs/interop.md has no ```python block under ## Python"])
    return match.group(1)


def run_doc_example():
    with tempfile.TemporaryDirectory() as tmp:
        script = pathlib.Path(tmp) / "validate.py"
        script.write_text(doc_example())
        broken = pathlib.Path(tmp) / "broken.json"
        golden = json.loads((ROOT / "tests/golden/session/v3.json").read_text())
        golden["data"]["email"] = "not-an-email"
        broken.write_text(json.dumps(golden))
        runs = [(ROOT / f"tests/golden/session/v{v}.json", 0, f"ok: session v{v}") for v in (1, 2, 3)]
        runs.append((broken, 1, "invalid at $.data.email: format"))
        errors = []
        for value, code, expected in runs:
            r = subprocess.run(
                [sys.executable, str(script), str(value)],
                cwd=ROOT,
                capture_output=True,
                text=True,
                check=False,
            )
            out = r.stdout + r.stderr
            if r.returncode != code or expected not in out:
                errors.append(f"doc example on {value.name}: exit {r.returncode}, output {out!r}")
        if errors:
            fail(errors)
    print(f"python jsonschema: the docs/interop.md example ran on {len(runs)} values as expected")


def main():
    validators = compile_schemas()
    check_cases(validators)
    run_doc_example()


if __name__ == "__main__":
    main()
