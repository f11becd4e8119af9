//! `validate FILE...`: checks the `vault-auth-roles` ConfigMaps of manifests offline, with
//! exactly the controller's rules ([`parse_roles`] and the pattern warnings of
//! [`desired_service_accounts`]). No cluster, no Vault.
//!
//! Reading files is the only I/O; checking and rendering are pure functions of the file texts.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use serde::Serialize;

use super::manifest::{RolesConfigMap, read_manifest};
use super::status;
use crate::cli::{OutputFormat, ValidateArgs};
use crate::desired::desired_service_accounts;
use crate::names::ROLES_CONFIGMAP;
use crate::roles::{Finding, PolicyGuard, Severity, parse_roles};

/// How one file is named in reports; `-` is stdin.
pub const STDIN_NAME: &str = "<stdin>";

/// The outcome for one file.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FileReport {
    /// As given on the command line (`<stdin>` for `-`).
    pub file: String,
    #[serde(flatten)]
    pub outcome: FileOutcome,
}

/// What was found in a file.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum FileOutcome {
    /// Could not be read (missing, unreadable, not UTF-8).
    Unreadable { error: String },
    /// Not YAML, or a document is not a mapping.
    NotYaml { error: String },
    /// Parsed: the ConfigMaps found (maybe none) and how many other objects were skipped.
    Checked {
        configmaps: Vec<ConfigMapReport>,
        other_objects: usize,
    },
}

/// The check of one `vault-auth-roles` ConfigMap.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ConfigMapReport {
    /// `metadata.namespace` when set.
    pub namespace: Option<String>,
    /// Line of its `kind: ConfigMap`.
    pub line: u64,
    /// Number of data keys.
    pub entries: usize,
    /// Vault names of the valid entries.
    pub valid_roles: Vec<String>,
    /// Vault names of the rejected entries.
    pub rejected: Vec<String>,
    /// Errors and warnings, by line.
    pub findings: Vec<LocatedFinding>,
}

/// A finding with the line of its key.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LocatedFinding {
    #[serde(flatten)]
    pub finding: Finding,
    /// Line of the key in the file (0 when unknown).
    pub line: u64,
}

impl FileReport {
    fn errors(&self) -> usize {
        self.findings().filter(|f| f.finding.is_error()).count()
    }

    fn findings(&self) -> impl Iterator<Item = &LocatedFinding> {
        let configmaps: &[ConfigMapReport] = match &self.outcome {
            FileOutcome::Checked { configmaps, .. } => configmaps,
            _ => &[],
        };
        configmaps.iter().flat_map(|c| c.findings.iter())
    }
}

/// Checks one file's text. `guard` holds what `--allowed-policies` / `--denied-policies` say
/// (offline, the controller's own policies are unknown; `root` is always refused).
pub fn check_text(text: &str, guard: &PolicyGuard) -> FileOutcome {
    match read_manifest(text) {
        Ok(manifest) => FileOutcome::Checked {
            configmaps: manifest
                .configmaps
                .iter()
                .map(|cm| check_configmap(cm, guard))
                .collect(),
            other_objects: manifest.other_objects,
        },
        Err(error) => FileOutcome::NotYaml { error },
    }
}

/// Checks one ConfigMap with the controller's validation, plus the one rule the API server
/// enforces before the controller ever sees an entry: data values are strings.
pub fn check_configmap(cm: &RolesConfigMap, guard: &PolicyGuard) -> ConfigMapReport {
    let lines: BTreeMap<&str, u64> = cm
        .entries
        .iter()
        .map(|e| (e.key.as_str(), e.line))
        .collect();
    let data: BTreeMap<String, String> = cm
        .entries
        .iter()
        .filter_map(|e| Some((e.key.clone(), e.value.clone().ok()?)))
        .collect();
    let set = parse_roles(&data).guard_policies(guard);
    let mut findings = set.findings.clone();
    findings.extend(desired_service_accounts(&set, &[]).findings);
    let mut rejected: Vec<String> = set.rejected.iter().cloned().collect();
    for entry in &cm.entries {
        if let Err(what) = &entry.value {
            findings.push(Finding::error(
                &entry.key,
                None,
                format!(
                    "the value is {what}, but ConfigMap data values are strings: write the \
                     role's JSON as a string (e.g. `{}: |` and the JSON below it)",
                    entry.key
                ),
            ));
            rejected.push(entry.key.to_lowercase());
        }
    }
    rejected.sort();
    let mut findings: Vec<LocatedFinding> = findings
        .into_iter()
        .map(|finding| LocatedFinding {
            line: lines.get(finding.key.as_str()).copied().unwrap_or(0),
            finding,
        })
        .collect();
    findings.sort_by_key(|f| (f.line, f.finding.severity));
    ConfigMapReport {
        namespace: cm.namespace.clone(),
        line: cm.line,
        entries: cm.entries.len(),
        valid_roles: set.roles.keys().cloned().collect(),
        rejected,
        findings,
    }
}

/// The exit status for these reports: 2 when a file could not be read, else 1 when something
/// is invalid, else 0.
pub fn exit_status(reports: &[FileReport]) -> u8 {
    let unreadable = reports
        .iter()
        .any(|r| matches!(r.outcome, FileOutcome::Unreadable { .. }));
    let invalid = reports
        .iter()
        .any(|r| matches!(r.outcome, FileOutcome::NotYaml { .. }) || r.errors() > 0);
    if unreadable {
        status::USAGE
    } else if invalid {
        status::FAILURE
    } else {
        status::SUCCESS
    }
}

/// The JSON report: `valid` and one entry per file.
pub fn render_json(reports: &[FileReport]) -> String {
    #[derive(Serialize)]
    struct Report<'a> {
        valid: bool,
        files: &'a [FileReport],
    }
    let report = Report {
        valid: exit_status(reports) == status::SUCCESS,
        files: reports,
    };
    let mut text = serde_json::to_string_pretty(&report).expect("reports serialise");
    text.push('\n');
    text
}

/// The human report: one `file:line: severity: ...` line per finding (the form editors and CI
/// log viewers link), one line per ConfigMap or file, and a verdict.
pub fn render_text(reports: &[FileReport]) -> String {
    let mut out = String::new();
    let (mut entries, mut rejected, mut errors, mut warnings, mut configmaps) = (0, 0, 0, 0, 0);
    for report in reports {
        let file = &report.file;
        match &report.outcome {
            FileOutcome::Unreadable { error } => out += &format!("{file}: cannot read: {error}\n"),
            FileOutcome::NotYaml { error } => out += &format!("{file}: not valid YAML: {error}\n"),
            FileOutcome::Checked {
                configmaps: found,
                other_objects,
            } => {
                if found.is_empty() {
                    out += &format!(
                        "{file}: no ConfigMap named {ROLES_CONFIGMAP} ({other_objects} other \
                         object(s) skipped)\n"
                    );
                }
                for cm in found {
                    let name = match &cm.namespace {
                        Some(ns) => format!("{ns}/{ROLES_CONFIGMAP}"),
                        None => ROLES_CONFIGMAP.to_string(),
                    };
                    let verdict = if cm.rejected.is_empty() {
                        "all valid".to_string()
                    } else {
                        format!(
                            "{} rejected ({})",
                            cm.rejected.len(),
                            cm.rejected.join(", ")
                        )
                    };
                    out += &format!(
                        "{file}:{}: ConfigMap {name}: {} entr{}, {verdict}\n",
                        cm.line,
                        cm.entries,
                        if cm.entries == 1 { "y" } else { "ies" }
                    );
                    for f in &cm.findings {
                        let severity = match f.finding.severity {
                            Severity::Error => "error",
                            Severity::Warning => "warning",
                        };
                        out += &format!("{file}:{}: {severity}: {}\n", f.line, f.finding);
                    }
                    configmaps += 1;
                    entries += cm.entries;
                    rejected += cm.rejected.len();
                }
                errors += report.errors();
                warnings += report.findings().count() - report.errors();
            }
        }
    }
    let not_yaml = reports
        .iter()
        .filter(|r| matches!(r.outcome, FileOutcome::NotYaml { .. }))
        .count();
    let verdict = match exit_status(reports) {
        status::USAGE => "error: some files could not be read".to_string(),
        status::FAILURE => {
            let mut parts = Vec::new();
            if not_yaml > 0 {
                parts.push(format!("{not_yaml} file(s) not valid YAML"));
            }
            if configmaps > 0 {
                parts.push(format!(
                    "{rejected} of {entries} entries rejected in {configmaps} ConfigMap(s) \
                     ({errors} error(s), {warnings} warning(s))"
                ));
            }
            format!("invalid: {}", parts.join("; "))
        }
        _ if configmaps == 0 => format!("nothing to check: no ConfigMap named {ROLES_CONFIGMAP}"),
        _ => {
            format!("valid: {entries} entries in {configmaps} ConfigMap(s), {warnings} warning(s)")
        }
    };
    out += &verdict;
    out.push('\n');
    out
}

/// How a file is named in reports (`<stdin>` for `-`).
pub fn input_name(path: &Path) -> String {
    if path.as_os_str() == "-" {
        STDIN_NAME.to_string()
    } else {
        path.display().to_string()
    }
}

/// Reads a file, or stdin for `-`.
pub fn read_input(path: &Path) -> Result<String, String> {
    if path.as_os_str() == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| e.to_string())?;
        return Ok(text);
    }
    std::fs::read_to_string(path).map_err(|e| e.to_string())
}

/// Runs `validate`: prints the report on stdout, returns the exit status.
pub fn run(args: &ValidateArgs) -> u8 {
    let guard = PolicyGuard::new(
        &[],
        &args.policy.allowed_policies,
        &args.policy.denied_policies,
    );
    let reports: Vec<FileReport> = args
        .files
        .iter()
        .map(|path| FileReport {
            file: input_name(path),
            outcome: match read_input(path) {
                Ok(text) => check_text(&text, &guard),
                Err(error) => FileOutcome::Unreadable { error },
            },
        })
        .collect();
    let text = match args.output {
        OutputFormat::Text => render_text(&reports),
        OutputFormat::Json => render_json(&reports),
    };
    print!("{text}");
    exit_status(&reports)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(file: &str, text: &str) -> FileReport {
        FileReport {
            file: file.into(),
            outcome: check_text(text, &PolicyGuard::default()),
        }
    }

    const MIXED: &str = r#"kind: ConfigMap
metadata:
  name: vault-auth-roles
data:
  web: |
    {"bound_service_account_names": ["web"], "bound_service_account_namespaces": ["a"],
     "token_ttl": "2h", "token_max_ttl": "1h"}
  Api: '{"bound_service_account_names": ["api-*"], "bound_service_account_namespaces": ["b"]}'
  yaml: {bound_service_account_names: [x]}
"#;

    #[test]
    fn findings_carry_key_field_line_and_the_controllers_messages() {
        let r = report("roles.yaml", MIXED);
        let FileOutcome::Checked { configmaps, .. } = &r.outcome else {
            panic!("{r:?}")
        };
        let cm = &configmaps[0];
        assert_eq!(cm.valid_roles, ["api"]);
        assert_eq!(cm.rejected, ["web", "yaml"]);
        let got: Vec<_> = cm
            .findings
            .iter()
            .map(|f| {
                (
                    f.line,
                    f.finding.key.as_str(),
                    f.finding.field.as_deref(),
                    f.finding.severity,
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                (5, "web", Some("token_ttl"), Severity::Error),
                (8, "Api", None, Severity::Warning),
                (
                    8,
                    "Api",
                    Some("bound_service_account_names"),
                    Severity::Warning
                ),
                (9, "yaml", None, Severity::Error),
            ]
        );
        // The same message the controller puts in its Events.
        let set = parse_roles(&BTreeMap::from([(
            "web".to_string(),
            r#"{"bound_service_account_names": ["web"], "bound_service_account_namespaces": ["a"], "token_ttl": "2h", "token_max_ttl": "1h"}"#.to_string(),
        )]));
        assert_eq!(cm.findings[0].finding, set.findings[0]);
        assert_eq!(exit_status(&[r]), status::FAILURE);
    }

    #[test]
    fn exit_status_prefers_unreadable_then_invalid() {
        let good = report("g", "kind: ConfigMap\nmetadata: {name: vault-auth-roles}\n");
        let none = report("n", "kind: Deployment\n");
        let bad = report("b", MIXED);
        let broken = report("x", "a: [\n");
        let missing = FileReport {
            file: "m".into(),
            outcome: FileOutcome::Unreadable {
                error: "gone".into(),
            },
        };
        assert_eq!(exit_status(&[good.clone(), none.clone()]), status::SUCCESS);
        assert_eq!(exit_status(&[good.clone(), broken]), status::FAILURE);
        assert_eq!(exit_status(&[good, bad.clone()]), status::FAILURE);
        assert_eq!(exit_status(&[bad, missing]), status::USAGE);
        assert!(render_text(&[none]).contains("nothing to check"));
    }
}
