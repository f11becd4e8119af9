#!/usr/bin/env python3
"""Tests of the Helm chart charts/vault-auth-kubernetes with the real Helm engine (helm-python-sdk).

Lints the chart, renders it for the default values and several non-default value sets, checks the
rendered objects (security context, probes, env vars, RBAC rules, the roles ConfigMap's JSON, the
PrometheusRule's alerts), that every render is reproducible and hook-free (as GitOps tools need),
that bad values fail with a clear message, that the chart README documents every value and that
the Grafana dashboard is valid and uses only metrics and labels the controller exports.
Then breaks copies of the chart on purpose (mutations.py) to show that the checks catch it.

Each rendered scenario is written to OUT/<scenario>/ as one YAML file per object, prefixed in Helm's
install order (so `kubectl apply -f OUT/<scenario>/` creates RBAC before the Deployment), plus
OUT/<scenario>/values.json. OUT/scenarios.json indexes them: release, namespace, values and the
apiVersion/kind/namespace/name of each file, so a later test can pick the kinds it applies.

Usage: .tools/venv/bin/python charts/tests/test_chart.py --out DIR
Exits 1 listing every failed check; 2 when helm-python-sdk is missing.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path

try:
    import helm_python as helm
except ImportError:  # pragma: no cover - depends on the environment
    sys.exit(
        "test_chart.py: helm-python-sdk is not installed; run scripts/tools.sh and use "
        ".tools/venv/bin/python"
    )

# Importing the sibling modules must not leave __pycache__ in the source tree.
sys.dont_write_bytecode = True

import dashboard  # noqa: E402
import mutations  # noqa: E402
from checks import Failures, FirstFailure  # noqa: E402
from manifests import Manifest, render  # noqa: E402
from scenarios import ERROR_CASES, SCENARIOS, Scenario  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "vault-auth-kubernetes"

#: Lint findings Helm reports as information, not problems, that the chart accepts: the project has
#: no logo to point `icon` at.
ACCEPTED_LINT_INFO = {("Chart.yaml", "icon is recommended")}


def lint(chart_dir: Path, values: dict, label: str, failures: Failures) -> None:
    """Strict lint (warnings count as errors) for the oldest and a recent supported Kubernetes."""
    for kube_version in ("v1.25.0", "v1.33.0"):
        report = helm.lint(str(chart_dir), values, strict=True, kube_version=kube_version)
        where = f"lint {label} (Kubernetes {kube_version})"
        failures.check(not report["errors"], where, f"errors: {report['errors']}")
        for message in report["messages"]:
            if (message["path"], message["error"]) in ACCEPTED_LINT_INFO and message[
                "severity"
            ] == 1:
                continue
            failures.fail(
                where, f"severity {message['severity']} in {message['path']}: {message['error']}"
            )


def write_scenario(out: Path, scenario: Scenario, manifest: Manifest) -> dict:
    """Writes the scenario's objects and values; returns its index entry."""
    directory = out / scenario.name
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    files = []
    for index, obj in enumerate(manifest.install_order(), start=1):
        name = f"{index:02d}-{obj.kind.lower()}-{obj.name.replace(':', '-')}.yaml"
        (directory / name).write_text(
            obj.source if obj.source.endswith("\n") else obj.source + "\n"
        )
        files.append(
            {
                "file": name,
                "apiVersion": obj.api_version,
                "kind": obj.kind,
                "namespace": obj.namespace,
                "name": obj.name,
            }
        )
    (directory / "values.json").write_text(json.dumps(scenario.values, indent=2) + "\n")
    return {
        "release": scenario.release,
        "namespace": scenario.namespace,
        "controllerNamespace": manifest.deployment().namespace,
        "values": scenario.values,
        "files": files,
    }


def run_scenarios(chart_dir: Path, out: Path, failures: Failures, report: Report) -> None:
    # Failing fast, lint (the slow part) comes last: most broken charts fail a render check first.
    lint_first = not failures.fail_fast
    index = {}
    with helm.Chart.load(str(chart_dir)) as chart:
        for scenario in SCENARIOS:
            started = time.monotonic()
            before = failures.count
            if lint_first:
                lint(chart_dir, scenario.values, scenario.name, failures)
            try:
                manifest = render(chart, scenario.values, scenario.release, scenario.namespace)
                again = render(chart, scenario.values, scenario.release, scenario.namespace)
            except helm.HelmError as err:
                failures.fail(scenario.name, f"render failed: {err}")
                continue
            # Argo CD and Flux render on every sync: output that changes by itself is drift.
            failures.check(
                [o.source for o in manifest.objects] == [o.source for o in again.objects],
                scenario.name,
                "two renders of the same values differ (random or time-dependent output)",
            )
            scenario.check(manifest, failures.scoped(scenario.name))
            index[scenario.name] = write_scenario(out, scenario, manifest)
            report(
                failures.count == before,
                f"{scenario.name:24} {len(manifest.objects):2} objects "
                f"{time.monotonic() - started:5.2f}s",
            )
        for case in ERROR_CASES:
            started = time.monotonic()
            before = failures.count
            case.check(chart, failures.scoped(f"rejects {case.name}"))
            report(
                failures.count == before,
                f"rejects {case.name:16} {time.monotonic() - started:5.2f}s",
            )
    if not lint_first:
        for scenario in SCENARIOS:
            lint(chart_dir, scenario.values, scenario.name, failures)
    (out / "scenarios.json").write_text(json.dumps(index, indent=2) + "\n")


def check_readme(chart_dir: Path, failures: Failures, report: Report) -> None:
    """The chart README's values table lists exactly the values values.yaml defines."""
    with helm.Chart.load(str(chart_dir)) as chart:
        defaults = chart.values
    before = failures.count
    documented = set()
    for line in (chart_dir / "README.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and len(cells) >= 3 and cells[0].startswith("`"):
            documented.add(cells[0].strip("`"))
    defined = set(leaf_keys(defaults))
    for key in sorted(defined - documented):
        failures.fail("README values table", f"value {key} is not documented")
    for key in sorted(documented - defined):
        failures.fail("README values table", f"documents {key}, which values.yaml does not define")
    report(failures.count == before, f"README values table ({len(defined)} values)")


def check_dashboard(chart_dir: Path, failures: Failures, report: Report) -> None:
    """The Grafana dashboard JSON: structure, variables, and every expression's metrics/labels."""
    before = failures.count
    expressions = dashboard.check(chart_dir, failures.scoped("Grafana dashboard"))
    report(failures.count == before, f"Grafana dashboard ({expressions} queries)")


#: Template functions whose output depends on the cluster or the moment: a GitOps tool renders
#: offline (Argo CD: `lookup` finds nothing) and on every sync (random output is drift).
CLUSTER_OR_TIME = re.compile(
    r"\b(lookup|now|randAlpha|randAlphaNum|randNumeric|randAscii|uuidv4|genCA|genPrivateKey"
    r"|genSelfSignedCert|genSignedCert)\b"
)


def check_gitops(chart_dir: Path, failures: Failures, report: Report) -> None:
    """No template calls a function a GitOps render cannot reproduce (hooks and drift are checked
    on every rendered scenario)."""
    before = failures.count
    templates = sorted((chart_dir / "templates").glob("*"))
    for template in templates:
        for number, line in enumerate(template.read_text().splitlines(), start=1):
            for match in CLUSTER_OR_TIME.finditer(line):
                failures.fail(
                    f"GitOps: templates/{template.name}:{number}",
                    f"calls {match.group(1)}, which a GitOps render cannot reproduce",
                )
    report(failures.count == before, f"GitOps: no lookup/random/time in {len(templates)} templates")


def leaf_keys(values: dict, prefix: str = "") -> list[str]:
    """Dotted keys of a values tree; maps the chart treats as a whole (empty ones) are leaves."""
    keys = []
    for key, value in values.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value and key not in WHOLE_VALUES:
            keys.extend(leaf_keys(value, f"{path}."))
        else:
            keys.append(path)
    return keys


#: Values documented as one row although they are maps (Kubernetes objects passed through).
WHOLE_VALUES = {"resources", "podSecurityContext", "securityContext"}


Report = Callable[[bool, str], None]


def print_report(ok: bool, line: str) -> None:
    print(f"{'ok' if ok else 'FAILED':6} {line}")


def quiet_report(ok: bool, line: str) -> None:
    del ok, line


def run_all(
    chart_dir: Path, out: Path, report: Report = print_report, fail_fast: bool = False
) -> Failures:
    """Every check of the chart at `chart_dir` (up to the first failure with `fail_fast`);
    rendered scenarios go to `out`."""
    failures = Failures(fail_fast)
    out.mkdir(parents=True, exist_ok=True)
    try:
        check_readme(chart_dir, failures, report)
        check_dashboard(chart_dir, failures, report)
        check_gitops(chart_dir, failures, report)
        run_scenarios(chart_dir, out, failures, report)
    except helm.HelmChartLoadError as err:
        try:
            failures.fail("chart", f"Helm cannot load it: {err}")
        except FirstFailure:
            pass
    except FirstFailure:
        pass
    return failures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", required=True, type=Path, help="directory the rendered scenarios are written to"
    )
    parser.add_argument(
        "--no-mutations",
        action="store_true",
        help="skip the mutation pass (for tests that only need the rendered manifests)",
    )
    args = parser.parse_args()

    started = time.monotonic()
    print(f"helm SDK {helm.helm_sdk_version()}, chart {CHART.relative_to(ROOT)}")
    failures = run_all(CHART, args.out)
    if failures.count:
        print(f"\n{failures.count} chart check(s) failed:", file=sys.stderr)
        for message in failures.messages:
            print(f"  - {message}", file=sys.stderr)
        return 1
    print(f"all chart checks passed ({time.monotonic() - started:.1f}s); manifests in {args.out}")
    if args.no_mutations:
        return 0

    # The checks must be able to fail: each mutation breaks the chart in one way they guard.
    started = time.monotonic()
    missed = mutations.run(
        CHART, lambda chart_dir, out: run_all(chart_dir, out, quiet_report, fail_fast=True)
    )
    if missed:
        print("\nchart checks missed these broken charts:", file=sys.stderr)
        for name in missed:
            print(f"  - {name}", file=sys.stderr)
        return 1
    print(f"every mutation of the chart was caught ({time.monotonic() - started:.1f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
