//! The built-in rule pack: Sigma detection rules for common security and fault signatures of
//! Linux hosts, firewalls (UFW/iptables, Cisco ASA, FortiGate, pfSense, Juniper SRX), web
//! servers and network devices (Cisco IOS, Junos), compiled into the binary.
//!
//! The rules are plain Sigma YAML in `correlate/builtin/` (one file per theme, several documents
//! each). They rely on the fields that `cairn_ingest::normalise::Normaliser::builtin()` extracts
//! (`user`, `src_ip`, `action`, `status`, `path`, `user_agent`, `group`, `md_event`…) and on
//! the default logsource mapping (`service: sshd|sudo|su` → the app); run events through the
//! normaliser before the matcher. `tests/builtin_pack.rs` holds, for every rule, a line that
//! must match it and a near miss that must not.

use crate::rule::{LoadReport, parse_rules_str};

/// `(source name, YAML text)` of every built-in rule file.
pub const BUILTIN_RULE_FILES: &[(&str, &str)] = &[
    (
        "builtin:linux_auth.yml",
        include_str!("../builtin/linux_auth.yml"),
    ),
    (
        "builtin:linux_accounts.yml",
        include_str!("../builtin/linux_accounts.yml"),
    ),
    (
        "builtin:firewall.yml",
        include_str!("../builtin/firewall.yml"),
    ),
    ("builtin:web.yml", include_str!("../builtin/web.yml")),
    (
        "builtin:linux_faults.yml",
        include_str!("../builtin/linux_faults.yml"),
    ),
    (
        "builtin:network_faults.yml",
        include_str!("../builtin/network_faults.yml"),
    ),
];

/// `(source name, YAML text)` of every built-in correlation file (`correlate/builtin/correlation/`):
/// Sigma correlation rules over the detection rules above (SSH brute force, password spraying,
/// brute force then success, port scan, interface flapping, interface down not restored, systemd
/// crash loop), plus the detection rules only they use. Load them together with
/// [`BUILTIN_RULE_FILES`] ([`builtin_pack`]): they reference those rules by name.
/// `tests/correlation_builtin.rs` feeds real-looking lines through parse → normalise → match →
/// correlate for each, with a near miss.
pub const BUILTIN_CORRELATION_FILES: &[(&str, &str)] = &[
    (
        "builtin:correlation/ssh.yml",
        include_str!("../builtin/correlation/ssh.yml"),
    ),
    (
        "builtin:correlation/network.yml",
        include_str!("../builtin/correlation/network.yml"),
    ),
    (
        "builtin:correlation/host.yml",
        include_str!("../builtin/correlation/host.yml"),
    ),
];

/// Loads the built-in correlation files alone (they need [`builtin_rules`] beside them).
pub fn builtin_correlation_rules() -> LoadReport {
    let mut report = LoadReport::default();
    for (source_name, yaml_text) in BUILTIN_CORRELATION_FILES {
        report.extend(parse_rules_str(yaml_text, source_name));
    }
    report
}

/// The whole built-in pack: the detection rules ([`builtin_rules`]) and the correlations
/// ([`builtin_correlation_rules`]). Build a `Matcher` and `Correlations` from its `loaded`.
pub fn builtin_pack() -> LoadReport {
    let mut report = builtin_rules();
    report.extend(builtin_correlation_rules());
    report
}

/// Loads the built-in detection rules. Its tests guarantee no rejections; callers should still report
/// `rejected` like any other rule source.
pub fn builtin_rules() -> LoadReport {
    let mut report = LoadReport::default();
    for (source_name, yaml_text) in BUILTIN_RULE_FILES {
        report.extend(parse_rules_str(yaml_text, source_name));
    }
    report
}
