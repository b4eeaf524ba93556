//! External programs the tests drive (syslog-ng, rsyslog, openssl): where to find them, and a
//! child process that is killed when the test ends.
//!
//! `.ci/run` installs them and exports their paths (`CAIRN_SYSLOG_NG`, `CAIRN_RSYSLOGD`,
//! `CAIRN_RSYSLOG_MODULES`, `CAIRN_OPENSSL`). Outside CI a missing program skips the test with
//! a loud message; under `CI=true` it fails the test.

use std::path::{Path, PathBuf};
use std::process::Child;

/// Is this run in CI (`CI=true`)? Then a missing program is a failure, not a skip.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|value| value == "true" || value == "1")
}

/// The first existing path among `$env_var` and `candidates` (absolute paths, or names looked
/// up on `PATH`). `None` after a loud message when none exists; panics instead under CI.
pub fn find_program(env_var: &str, candidates: &[&str], test: &str) -> Option<PathBuf> {
    let from_env = std::env::var_os(env_var).map(PathBuf::from);
    let found = from_env
        .into_iter()
        .chain(candidates.iter().filter_map(|candidate| resolve(candidate)))
        .find(|path| path.is_file());
    if found.is_none() {
        missing(&format!(
            "{test}: none of ${env_var}, {candidates:?} exists (`.ci/run` installs it)"
        ));
    }
    found
}

/// The first existing directory among `$env_var` and `candidates` that holds every file of
/// `needs`. `None` after a loud message when none does; panics instead under CI.
pub fn find_dir(env_var: &str, candidates: &[&str], needs: &[&str], test: &str) -> Option<PathBuf> {
    let from_env = std::env::var_os(env_var).map(PathBuf::from);
    let found = from_env
        .into_iter()
        .chain(candidates.iter().map(PathBuf::from))
        .find(|dir| needs.iter().all(|file| dir.join(file).is_file()));
    if found.is_none() {
        missing(&format!(
            "{test}: no directory with {needs:?} among ${env_var}, {candidates:?} (`.ci/run` installs it)"
        ));
    }
    found
}

fn missing(message: &str) {
    assert!(!in_ci(), "{message}");
    eprintln!("SKIPPED (not run): {message}");
}

fn resolve(candidate: &str) -> Option<PathBuf> {
    if candidate.contains('/') {
        return Some(PathBuf::from(candidate));
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(candidate))
            .find(|path| path.is_file())
    })
}

/// A child process killed (SIGKILL) and reaped on drop.
#[derive(Debug)]
pub struct KillOnDrop(pub Child);

impl KillOnDrop {
    /// SIGTERM (a graceful stop), then reap.
    pub fn terminate(mut self) {
        let _ = std::process::Command::new("kill")
            .arg("-TERM")
            .arg(self.0.id().to_string())
            .status();
        let _ = self.0.wait();
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Writes `text` to `path`.
pub fn write_file(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap_or_else(|error| panic!("write {}: {error}", path.display()));
}
