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

/// Loads the built-in pack. Its tests guarantee no rejections; callers should still report
/// `rejected` like any other rule source.
pub fn builtin_rules() -> LoadReport {
    let mut report = LoadReport::default();
    for (source_name, yaml_text) in BUILTIN_RULE_FILES {
        report.extend(parse_rules_str(yaml_text, source_name));
    }
    report
}
