//! The Python clients the compatibility tests drive (official `elasticsearch`, `splunk-handler`,
//! `splunk-hec-handler`). `.ci/run` installs them into a venv and exports `CAIRN_PEER_PYTHON`;
//! elsewhere the peers' well-known venv is tried. Without them a test is skipped loudly, except
//! under `CI=true`, where it fails.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A Python interpreter that imports every module of `modules`, or `None` (after saying so on
/// stderr) when there is none outside CI.
///
/// # Panics
/// Under `CI=true` when no interpreter has the modules.
pub fn python_with(modules: &[&str]) -> Option<PathBuf> {
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(python) = std::env::var_os("CAIRN_PEER_PYTHON") {
        candidates.push(PathBuf::from(python));
    }
    candidates.push(std::env::temp_dir().join("cairn-ci-peers/bin/python"));
    candidates.push(PathBuf::from("/tmp/cairn-peers/venv/bin/python"));
    let imports = format!("import {}", modules.join(", "));
    let found = candidates.into_iter().find(|python| {
        python.exists()
            && Command::new(python)
                .args(["-c", &imports])
                .output()
                .is_ok_and(|output| output.status.success())
    });
    if found.is_none() {
        let message =
            format!("no python with {modules:?}: set CAIRN_PEER_PYTHON (`.ci/run` installs them)");
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{message} (CI=true: not skipping)"
        );
        eprintln!("SKIPPED: {message}");
    }
    found
}

/// Runs one of the scripts of `tests/clients/` and parses the JSON it prints last.
///
/// # Panics
/// When the script fails or prints no JSON.
pub fn run_client(python: &Path, script: &str, args: &[&str]) -> serde_json::Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/clients")
        .join(script);
    let output = Command::new(python)
        .arg(&path)
        .args(args)
        .output()
        .unwrap_or_else(|error| panic!("cannot run {}: {error}", path.display()));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{script} failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    let last = stdout.lines().rev().find(|line| line.starts_with('{'));
    serde_json::from_str(last.unwrap_or_default())
        .unwrap_or_else(|error| panic!("{script} printed no json ({error}):\n{stdout}\n{stderr}"))
}
