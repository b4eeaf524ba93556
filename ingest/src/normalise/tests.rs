//! Table-driven tests: for every format a real-looking syslog line through the real parser and
//! the built-in normaliser, with the fields expected; a near miss beside each.

use bytes::Bytes;
use proptest::prelude::*;

use super::*;
use crate::event::{EventFlags, FrameMeta, Seq, Source, Timestamp};
use crate::parse::{ParseOptions, parse_syslog};

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

/// Renders fields as `name=value` (`#n` for typed numbers), in order.
fn rendered(event: &Event) -> Vec<String> {
    event
        .fields
        .iter()
        .map(|field| {
            let name = event.text(&field.name);
            match &field.value {
                FieldValue::Text(text) => format!("{name}={}", event.text(text)),
                FieldValue::U64(number) => format!("{name}=#{number}"),
                FieldValue::I64(number) => format!("{name}=#{number}"),
                other => format!("{name}={other:?}"),
            }
        })
        .collect()
}

fn normalised(normaliser: &Normaliser, line: &str) -> Event {
    let mut event = parse(line);
    normaliser.normalise(&mut event);
    event
}

/// (line, expected fields; empty = the near miss: nothing extracted)
const CASES: &[(&str, &[&str])] = &[
    // OpenSSH
    (
        "<38>Oct 11 22:14:15 web1 sshd[4721]: Failed password for root from 203.0.113.7 port 52214 ssh2",
        &[
            "auth_method=password",
            "user=root",
            "src_ip=203.0.113.7",
            "src_port=#52214",
        ],
    ),
    (
        "<38>Oct 11 22:14:15 web1 sshd[4721]: Failed password for invalid user admin from 2001:db8::7 port 40022 ssh2",
        &[
            "auth_method=password",
            "user=admin",
            "src_ip=2001:db8::7",
            "src_port=#40022",
        ],
    ),
    (
        "<38>Oct 11 22:14:15 web1 sshd[4721]: Accepted publickey for deploy from 10.1.2.3 port 50000 ssh2: RSA SHA256:abc",
        &[
            "auth_method=publickey",
            "user=deploy",
            "src_ip=10.1.2.3",
            "src_port=#50000",
        ],
    ),
    (
        "<38>Oct 11 22:14:15 web1 sshd[4721]: Invalid user oracle from 198.51.100.4 port 33210",
        &["user=oracle", "src_ip=198.51.100.4", "src_port=#33210"],
    ),
    (
        "<38>Oct 11 22:14:15 web1 sshd[4721]: Disconnected from authenticating user root 203.0.113.7 port 52214 [preauth]",
        &["user=root", "src_ip=203.0.113.7", "src_port=#52214"],
    ),
    (
        "<38>Oct 11 22:14:15 web1 sshd[4721]: Connection closed by 203.0.113.7 port 52214 [preauth]",
        &["src_ip=203.0.113.7", "src_port=#52214"],
    ),
    (
        "<38>Oct 11 22:14:15 web1 sshd[4721]: Received disconnect from 203.0.113.7 port 52214:11: Bye Bye [preauth]",
        &[
            "src_ip=203.0.113.7",
            "src_port=#52214",
            "reason=11: Bye Bye [preauth]",
        ],
    ),
    // near miss: a host name, not an address
    (
        "<38>Oct 11 22:14:15 web1 sshd[4721]: Failed password for root from attacker.example port 22 ssh2",
        &[],
    ),
    // near miss: the pattern is scoped to sshd
    (
        "<38>Oct 11 22:14:15 web1 myapp[1]: Failed password for root from 203.0.113.7 port 22 ssh2",
        &[],
    ),
    // sudo
    (
        "<85>Oct 11 22:14:15 web1 sudo:    alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/apt update",
        &[
            "user=alice",
            "tty=pts/0",
            "pwd=/home/alice",
            "target_user=root",
            "command=/usr/bin/apt update",
        ],
    ),
    (
        "<85>Oct 11 22:14:15 web1 sudo: bob : 3 incorrect password attempts ; TTY=pts/1 ; PWD=/home/bob ; USER=root ; COMMAND=/bin/bash",
        &[
            "user=bob",
            "attempts=#3",
            "tty=pts/1",
            "pwd=/home/bob",
            "target_user=root",
            "command=/bin/bash",
        ],
    ),
    (
        "<85>Oct 11 22:14:15 web1 sudo: pam_unix(sudo:auth): authentication failure; logname=bob uid=1000 euid=0 tty=/dev/pts/1 ruser=bob rhost=  user=bob",
        &[
            "pam_service=sudo",
            "pam_type=auth",
            "logname=bob",
            "uid=1000",
            "euid=0",
            "tty=/dev/pts/1",
            "ruser=bob",
            "user=bob",
        ],
    ),
    // near miss: no `;` structure
    ("<85>Oct 11 22:14:15 web1 sudo: bob : a free text note", &[]),
    // su
    (
        "<85>Oct 11 22:14:15 web1 su[2211]: FAILED su for root by bob",
        &["target_user=root", "user=bob"],
    ),
    (
        "<85>Oct 11 22:14:15 web1 su[2211]: (to root) bob on pts/2",
        &["target_user=root", "user=bob", "tty=pts/2"],
    ),
    ("<85>Oct 11 22:14:15 web1 su[2211]: FAILED su for root", &[]),
    // PAM from sshd, with the remote host renamed
    (
        "<38>Oct 11 22:14:15 web1 sshd[4721]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=203.0.113.7  user=root",
        &[
            "pam_service=sshd",
            "pam_type=auth",
            "uid=0",
            "euid=0",
            "tty=ssh",
            "src_ip=203.0.113.7",
            "user=root",
        ],
    ),
    (
        "<86>Oct 11 22:14:15 web1 passwd[991]: pam_unix(passwd:chauthtok): password changed for carol",
        &["pam_service=passwd", "user=carol"],
    ),
    // accounts
    (
        "<86>Oct 11 22:14:15 web1 useradd[991]: new user: name=mallory, UID=1005, GID=1005, home=/home/mallory, shell=/bin/bash, from=/dev/pts/0",
        &[
            "user=mallory",
            "uid=#1005",
            "gid=#1005",
            "home=/home/mallory",
            "shell=/bin/bash",
            "tty=/dev/pts/0",
        ],
    ),
    (
        "<86>Oct 11 22:14:15 web1 groupadd[990]: new group: name=ops, GID=1006",
        &["group=ops", "gid=#1006"],
    ),
    (
        "<86>Oct 11 22:14:15 web1 usermod[992]: add 'mallory' to group 'sudo'",
        &["user=mallory", "group=sudo"],
    ),
    // systemd
    (
        "<27>Oct 11 22:14:15 web1 systemd[1]: nginx.service: Failed with result 'exit-code'.",
        &["unit=nginx.service", "result=exit-code"],
    ),
    (
        "<30>Oct 11 22:14:15 web1 systemd[1]: nginx.service: Main process exited, code=exited, status=1/FAILURE",
        &["unit=nginx.service", "exit_code=exited", "status=1/FAILURE"],
    ),
    (
        "<30>Oct 11 22:14:15 web1 systemd[1]: Started nginx.service - A high performance web server.",
        &[
            "unit=nginx.service",
            "description=A high performance web server.",
            "status=started",
        ],
    ),
    (
        "<30>Oct 11 22:14:15 web1 systemd[1]: Stopped OpenBSD Secure Shell server.",
        &["description=OpenBSD Secure Shell server.", "status=stopped"],
    ),
    (
        "<30>Oct 11 22:14:15 web1 systemd[1]: Reached target Multi-User System.",
        &[],
    ),
    // kernel: UFW and iptables
    (
        "<4>Oct 11 22:14:15 fw1 kernel: [ 8123.456789] [UFW BLOCK] IN=eth0 OUT= MAC=00:11:22:33:44:55:66:77:88:99:aa:bb:08:00 SRC=198.51.100.23 DST=192.0.2.10 LEN=60 TOS=0x00 PREC=0x00 TTL=52 ID=5321 DF PROTO=TCP SPT=51234 DPT=22 WINDOW=64240 RES=0x00 SYN URGP=0",
        &[
            "action=BLOCK",
            "interface=eth0",
            "MAC=00:11:22:33:44:55:66:77:88:99:aa:bb:08:00",
            "src_ip=198.51.100.23",
            "dst_ip=192.0.2.10",
            "LEN=60",
            "TOS=0x00",
            "PREC=0x00",
            "TTL=52",
            "ID=5321",
            "protocol=TCP",
            "src_port=#51234",
            "dst_port=#22",
            "WINDOW=64240",
            "RES=0x00",
            "URGP=0",
        ],
    ),
    (
        "<4>Oct 11 22:14:15 fw1 kernel: IPTables-Dropped: IN=eth1 OUT= SRC=10.0.0.9 DST=10.0.0.1 PROTO=UDP SPT=5353 DPT=53",
        &[
            "interface=eth1",
            "src_ip=10.0.0.9",
            "dst_ip=10.0.0.1",
            "protocol=UDP",
            "src_port=#5353",
            "dst_port=#53",
        ],
    ),
    // kernel faults
    (
        "<3>Oct 11 22:14:15 db1 kernel: [123456.789012] Out of memory: Killed process 4242 (postgres) total-vm:123kB",
        &["pid=#4242", "process=postgres"],
    ),
    (
        "<6>Oct 11 22:14:15 db1 kernel: app[777]: segfault at 0 ip 00007f sp 00007ffd error 4 in libc.so.6",
        &["process=app", "pid=#777", "fault_address=0"],
    ),
    (
        "<3>Oct 11 22:14:15 db1 kernel: blk_update_request: I/O error, dev sdb, sector 2048 op 0x0:(READ)",
        &["device=sdb", "sector=#2048"],
    ),
    (
        "<4>Oct 11 22:14:15 db1 kernel: [ 1.000000] ACPI: Core revision 20230628",
        &[],
    ),
    // pfSense filterlog
    (
        "<134>Oct 11 22:14:15 pfsense filterlog[5033]: 5,,,1000000103,igb1,match,block,in,4,0x0,,64,0,0,DF,6,tcp,60,198.51.100.23,192.0.2.10,51234,443,0,S,123,,64240,,mss",
        &[
            "rule_number=#5",
            "tracker=1000000103",
            "interface=igb1",
            "reason=match",
            "action=block",
            "direction=in",
            "ttl=#64",
            "protocol=tcp",
            "src_ip=198.51.100.23",
            "dst_ip=192.0.2.10",
            "src_port=#51234",
            "dst_port=#443",
        ],
    ),
    (
        "<134>Oct 11 22:14:15 pfsense filterlog[5033]: 7,,,1000000104,igb0,match,pass,out,4,0x0,,64,0,0,none,1,icmp,84,192.0.2.10,198.51.100.1,request,1,2",
        &[
            "rule_number=#7",
            "tracker=1000000104",
            "interface=igb0",
            "reason=match",
            "action=pass",
            "direction=out",
            "ttl=#64",
            "protocol=icmp",
            "src_ip=192.0.2.10",
            "dst_ip=198.51.100.1",
        ],
    ),
    (
        "<134>Oct 11 22:14:15 pfsense filterlog[5033]: garbage,line",
        &[],
    ),
    // Cisco ASA
    (
        "<164>Oct 11 2024 22:14:15: %ASA-4-106023: Deny tcp src outside:198.51.100.23/51234 dst inside:192.0.2.10/80 by access-group \"outside_in\" [0x0, 0x0]",
        &[
            "action=Deny",
            "protocol=tcp",
            "src_interface=outside",
            "src_ip=198.51.100.23",
            "src_port=#51234",
            "dst_interface=inside",
            "dst_ip=192.0.2.10",
            "dst_port=#80",
            "acl=outside_in",
        ],
    ),
    (
        "<166>Oct 11 2024 22:14:15 asa1 : %ASA-6-302013: Built inbound TCP connection 1234 for outside:198.51.100.23/51234 (198.51.100.23/51234) to inside:192.0.2.10/80 (192.0.2.10/80)",
        &[
            "direction=inbound",
            "protocol=TCP",
            "connection_id=#1234",
            "src_interface=outside",
            "src_ip=198.51.100.23",
            "src_port=#51234",
            "dst_interface=inside",
            "dst_ip=192.0.2.10",
            "dst_port=#80",
            "action=built",
        ],
    ),
    (
        "<162>Oct 11 2024 22:14:15: %ASA-2-106001: Inbound TCP connection denied from 198.51.100.23/51234 to 192.0.2.10/80 flags SYN on interface outside",
        &[
            "direction=Inbound",
            "protocol=TCP",
            "src_ip=198.51.100.23",
            "src_port=#51234",
            "dst_ip=192.0.2.10",
            "dst_port=#80",
            "tcp_flags=SYN",
            "interface=outside",
            "action=deny",
        ],
    ),
    (
        "<164>Oct 11 2024 22:14:15: %ASA-6-106100: access-list outside_in denied tcp outside/198.51.100.23(51234) -> inside/192.0.2.10(22) hit-cnt 1 first hit [0x1, 0x0]",
        &[
            "acl=outside_in",
            "action=denied",
            "protocol=tcp",
            "src_interface=outside",
            "src_ip=198.51.100.23",
            "src_port=#51234",
            "dst_interface=inside",
            "dst_ip=192.0.2.10",
            "dst_port=#22",
            "hit_count=#1",
        ],
    ),
    (
        "<164>Oct 11 2024 22:14:15: %ASA-4-106023: Deny tcp src outside:nothost/51234 dst inside:192.0.2.10/80 by access-group \"x\"",
        &[],
    ),
    // Cisco IOS
    (
        "<187>1234: *Mar  1 18:46:11.123: %LINK-3-UPDOWN: Interface GigabitEthernet0/1, changed state to down",
        &["interface=GigabitEthernet0/1", "status=down"],
    ),
    (
        "<189>Oct 11 22:14:15 core1 1234: *Mar  1 18:46:11: %LINEPROTO-5-UPDOWN: Line protocol on Interface GigabitEthernet0/1, changed state to up",
        &["interface=GigabitEthernet0/1", "status=up"],
    ),
    (
        "<190>Oct 11 22:14:15 core1 %SEC-6-IPACCESSLOGP: list 101 denied tcp 198.51.100.23(51234) -> 192.0.2.10(80), 1 packet",
        &[
            "acl=101",
            "action=denied",
            "protocol=tcp",
            "src_ip=198.51.100.23",
            "src_port=#51234",
            "dst_ip=192.0.2.10",
            "dst_port=#80",
            "packets=#1",
        ],
    ),
    (
        "<189>Oct 11 22:14:15 core1 %OSPF-5-ADJCHG: Process 1, Nbr 10.0.0.2 on GigabitEthernet0/2 from FULL to DOWN, Neighbor Down: Dead timer expired",
        &[
            "ospf_process=#1",
            "neighbor_ip=10.0.0.2",
            "interface=GigabitEthernet0/2",
            "old_state=FULL",
            "status=DOWN",
            "reason=Neighbor Down: Dead timer expired",
        ],
    ),
    (
        "<189>Oct 11 22:14:15 core1 %BGP-5-ADJCHANGE: neighbor 10.0.0.9 Down BGP Notification sent",
        &["neighbor_ip=10.0.0.9", "status=Down"],
    ),
    (
        "<187>Oct 11 22:14:15 core1 %LINK-3-UPDOWN: Interface GigabitEthernet0/1 changed state",
        &[],
    ),
    // FortiGate (no syslog header: the whole line is key=value)
    (
        "<189>date=2024-10-11 time=22:14:15 devname=\"FGT60F\" devid=\"FGT60F0000\" logid=\"0000000013\" type=\"traffic\" subtype=\"forward\" level=\"notice\" srcip=198.51.100.23 srcport=51234 srcintf=\"wan1\" dstip=192.0.2.10 dstport=443 dstintf=\"internal\" proto=6 action=\"deny\" policyid=0 service=\"HTTPS\"",
        &[
            "date=2024-10-11",
            "time=22:14:15",
            "devname=FGT60F",
            "devid=FGT60F0000",
            "logid=0000000013",
            "type=traffic",
            "subtype=forward",
            "level=notice",
            "src_ip=198.51.100.23",
            "src_port=#51234",
            "interface=wan1",
            "dst_ip=192.0.2.10",
            "dst_port=#443",
            "out_interface=internal",
            "protocol=6",
            "action=deny",
            "policyid=0",
            "service=HTTPS",
        ],
    ),
    // near miss: free text with one `=` is not exploded
    (
        "<30>Oct 11 22:14:15 web1 backup[9]: finished job with status=ok after retrying twice",
        &[],
    ),
    // Juniper
    (
        "<14>Oct 11 22:14:15 srx1 RT_FLOW: RT_FLOW_SESSION_DENY: session denied 198.51.100.23/51234->192.0.2.10/23 0x0 junos-telnet 6(0) default-deny(global) untrust trust UNKNOWN UNKNOWN N/A(N/A) ge-0/0/0.0 No policy denied 1 N/A N/A -1",
        &[
            "src_ip=198.51.100.23",
            "src_port=#51234",
            "dst_ip=192.0.2.10",
            "dst_port=#23",
            "action=deny",
        ],
    ),
    (
        "<28>Oct 11 22:14:15 mx1 mib2d[1822]: SNMP_TRAP_LINK_DOWN: ifIndex 529, ifAdminStatus up(1), ifOperStatus down(2), ifName ge-0/0/1",
        &[
            "if_index=#529",
            "admin_status=up",
            "status=down",
            "interface=ge-0/0/1",
        ],
    ),
    (
        "<28>Oct 11 22:14:15 mx1 rpd[1500]: RPD_BGP_NEIGHBOR_STATE_CHANGED: BGP peer 10.0.0.9 (External AS 65001) changed state from Established to Idle (event RecvNotify) (instance master)",
        &[
            "neighbor_ip=10.0.0.9",
            "old_state=Established",
            "status=Idle",
        ],
    ),
    (
        "<28>Oct 11 22:14:15 mx1 mib2d[1822]: SNMP_TRAP_LINK_DOWN: interface ge-0/0/1",
        &[],
    ),
    // web access logs (combined, and common with `-` bytes)
    (
        "<190>Oct 11 22:14:15 web1 nginx: 198.51.100.23 - - [11/Oct/2024:22:14:15 +0000] \"GET /index.php?id=1%27%20union%20select HTTP/1.1\" 200 512 \"-\" \"sqlmap/1.7.2#stable (https://sqlmap.org)\"",
        &[
            "src_ip=198.51.100.23",
            "time_local=11/Oct/2024:22:14:15 +0000",
            "method=GET",
            "path=/index.php?id=1%27%20union%20select",
            "http_version=HTTP/1.1",
            "status=#200",
            "bytes=#512",
            "user_agent=sqlmap/1.7.2#stable (https://sqlmap.org)",
        ],
    ),
    (
        "<190>Oct 11 22:14:15 web1 apache2: 2001:db8::5 - alice [11/Oct/2024:22:14:15 +0000] \"POST /login HTTP/1.1\" 302 -",
        &[
            "src_ip=2001:db8::5",
            "user=alice",
            "time_local=11/Oct/2024:22:14:15 +0000",
            "method=POST",
            "path=/login",
            "http_version=HTTP/1.1",
            "status=#302",
        ],
    ),
    (
        "<190>Oct 11 22:14:15 web1 nginx: 198.51.100.23 - - [11/Oct/2024:22:14:15 +0000] \"\\x16\\x03\\x01\" 400 0 \"-\" \"-\"",
        &[],
    ),
    // generic key=value body
    (
        "<30>Oct 11 22:14:15 web1 audit: user=dave action=login result=ok src=10.9.8.7",
        &["user=dave", "action=login", "result=ok", "src_ip=10.9.8.7"],
    ),
];

#[test]
fn builtin_patterns_extract_the_expected_fields() {
    let normaliser = Normaliser::builtin();
    let mut failures = Vec::new();
    for (line, expected) in CASES {
        let event = normalised(&normaliser, line);
        let got = rendered(&event);
        if got != *expected {
            failures.push(format!(
                "{line}\n  app={:?} message={:?}\n  expected {expected:?}\n  got      {got:?}",
                event.app_str(),
                event.message_str()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        CASES.len(),
        failures.join("\n")
    );
}

#[test]
fn captured_values_are_spans_into_the_frame() {
    let normaliser = Normaliser::builtin();
    let event = normalised(
        &normaliser,
        "<38>Oct 11 22:14:15 web1 sshd[1]: Failed password for root from 203.0.113.7 port 22 ssh2",
    );
    let Some(FieldValue::Text(user)) = event.field("user") else {
        panic!("user extracted: {:?}", event.fields);
    };
    assert!(matches!(user, Text::Span(_)), "{user:?}");
    assert_eq!(event.field("src_port"), Some(&FieldValue::U64(22)));
}

#[test]
fn existing_fields_win() {
    let normaliser = Normaliser::builtin();
    let event = normalised(
        &normaliser,
        r#"{"app":"sshd","message":"Failed password for root from 203.0.113.7 port 22 ssh2","user":"from-json"}"#,
    );
    let users: Vec<&FieldValue> = event
        .fields
        .iter()
        .filter(|field| event.text(&field.name) == "user")
        .map(|field| &field.value)
        .collect();
    assert_eq!(users.len(), 1, "{:?}", event.fields);
    assert_eq!(event.field("src_ip").map(|_| ()), Some(()));
    let Some(FieldValue::Text(user)) = event.field("user") else {
        panic!("user kept");
    };
    assert_eq!(event.text(user), "from-json");
}

#[test]
fn operator_patterns_come_first_and_bad_templates_are_refused_precisely() {
    let normaliser = Normaliser::new(vec![PatternDef {
        name: String::from("override"),
        app: Some(String::from("sshd")),
        template: String::from("Failed %{how:word} for %{who:word} from"),
    }])
    .expect("valid");
    let event = normalised(
        &normaliser,
        "<38>Oct 11 22:14:15 web1 sshd[1]: Failed password for root from 203.0.113.7 port 22",
    );
    assert_eq!(rendered(&event), ["how=password", "who=root"]);

    let error = Normaliser::new(vec![PatternDef {
        name: String::from("bad"),
        app: None,
        template: String::from("size %{n:float}"),
    }])
    .expect_err("invalid");
    assert_eq!(
        error.to_string(),
        "bad input: normalise pattern 'bad': unknown capture type 'float' in '%{n:float}' (expected int, ip, word, text or kv) at byte 5"
    );
    let error = Normaliser::new(vec![PatternDef {
        name: String::from("anchorless"),
        app: None,
        template: String::from("%{everything}"),
    }])
    .expect_err("invalid");
    assert!(error.to_string().contains("needs literal text"), "{error}");
}

#[test]
fn pattern_defs_deserialise_from_toml_shaped_json() {
    let def: PatternDef = serde_json::from_str(
        r#"{"name":"x","app":"myapp","template":"login failed for %{user:word}"}"#,
    )
    .expect("valid");
    assert_eq!(def.app.as_deref(), Some("myapp"));
    assert!(
        serde_json::from_str::<PatternDef>(r#"{"name":"x","template":"a","bogus":1}"#).is_err()
    );
}

#[test]
fn normaliser_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Normaliser>();
}

#[test]
fn owned_messages_give_owned_values() {
    let normaliser = Normaliser::builtin();
    let mut event = parse("<38>Oct 11 22:14:15 web1 sshd[1]: x");
    event.message = Text::owned("Failed password for root from 203.0.113.7 port 22");
    normaliser.normalise(&mut event);
    assert_eq!(
        rendered(&event),
        [
            "auth_method=password",
            "user=root",
            "src_ip=203.0.113.7",
            "src_port=#22"
        ]
    );
}

proptest! {
    #[test]
    fn never_panics_and_spans_stay_in_the_frame(
        app in prop::sample::select(vec!["sshd", "sudo", "kernel", "filterlog", "%ASA-4-106023", "nginx", "x"]),
        body in "[ -~éż%=\\[\\]\"'/:,()]{0,120}",
    ) {
        let normaliser = Normaliser::builtin();
        let event = normalised(&normaliser, &format!("<38>Oct 11 22:14:15 h {app}: {body}"));
        let raw = event.raw_str();
        for field in &event.fields {
            for text in [Some(&field.name), match &field.value { FieldValue::Text(t) => Some(t), _ => None }].into_iter().flatten() {
                if let Text::Span(span) = text {
                    prop_assert!(raw.get(span.range()).is_some());
                }
            }
        }
    }
}

/// `cargo test -p cairn-ingest --release -- --ignored normalise_cost --nocapture`
#[test]
#[ignore = "timing; run in release"]
fn normalise_cost() {
    let normaliser = Normaliser::builtin();
    let lines = [
        "<38>Oct 11 22:14:15 web1 sshd[4721]: Failed password for root from 203.0.113.7 port 52214 ssh2",
        "<38>Oct 11 22:14:15 web1 sshd[4721]: Connection closed by 203.0.113.7 port 52214 [preauth]",
        "<85>Oct 11 22:14:15 web1 sudo: alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/id",
        "<30>Oct 11 22:14:15 web1 systemd[1]: Started Session 42 of User alice.",
        "<30>Oct 11 22:14:15 web1 CRON[2211]: (root) CMD (run-parts /etc/cron.hourly)",
        "<4>Oct 11 22:14:15 fw1 kernel: [UFW BLOCK] IN=eth0 OUT= SRC=198.51.100.23 DST=192.0.2.10 PROTO=TCP SPT=51234 DPT=22",
        "<164>Oct 11 2024 22:14:15: %ASA-4-106023: Deny tcp src outside:198.51.100.23/51234 dst inside:192.0.2.10/80 by access-group \"outside_in\"",
        "<190>Oct 11 22:14:15 web1 nginx: 198.51.100.23 - - [11/Oct/2024:22:14:15 +0000] \"GET /index.html HTTP/1.1\" 200 512 \"-\" \"curl/8.0\"",
        "<30>Oct 11 22:14:15 web1 app[1]: request served in 12 ms for customer 1234 without errors",
        "<189>Oct 11 22:14:15 core1 %LINK-3-UPDOWN: Interface GigabitEthernet0/1, changed state to down",
    ];
    let events: Vec<Event> = lines.iter().map(|line| parse(line)).collect();
    let rounds = 50_000u32;
    let mut total = 0.0;
    for event in &events {
        let start = std::time::Instant::now();
        let mut fields = 0usize;
        for _ in 0..rounds {
            let mut event = event.clone();
            normaliser.normalise(&mut event);
            fields += event.fields.len();
        }
        let with_normalise = start.elapsed();
        let start = std::time::Instant::now();
        for _ in 0..rounds {
            let event = event.clone();
            fields += event.fields.len();
        }
        let clone_only = start.elapsed();
        let nanos = with_normalise.saturating_sub(clone_only).as_nanos() as f64 / f64::from(rounds);
        total += nanos;
        println!(
            "{nanos:>6.0} ns  {:>2} fields  {}",
            fields / (2 * rounds as usize),
            event.message_str().chars().take(60).collect::<String>()
        );
    }
    println!(
        "normalise: {:.0} ns/event on average over {} lines",
        total / events.len() as f64,
        events.len()
    );
}
