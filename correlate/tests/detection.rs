//! Table-driven detection semantics: every modifier and condition form, each case run through
//! both `Matcher` and `NaiveMatcher` (which must agree).

mod common;

use cairn_correlate::{
    CompileOptions, FieldMapping, LogsourceEntry, LogsourceMapping, parse_rules_str,
};
use cairn_ingest::{FieldValue, Severity};
use common::{EventExt, event, load_one, matches, rule_yaml};

struct Case {
    name: &'static str,
    detection: &'static str,
    event: cairn_ingest::Event,
    expect: bool,
}

fn case(
    name: &'static str,
    detection: &'static str,
    event: cairn_ingest::Event,
    expect: bool,
) -> Case {
    Case {
        name,
        detection,
        event,
        expect,
    }
}

fn run(cases: Vec<Case>) {
    let options = CompileOptions::default();
    let mut failures = Vec::new();
    for case in cases {
        let rules = load_one(case.detection);
        let got = matches(&rules, &options, &case.event);
        if got != case.expect {
            failures.push(format!(
                "{}: expected {}, got {}",
                case.name, case.expect, got
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

const CMD: &str = "  sel:\n    CommandLine|contains: 'wget '\n  condition: sel\n";

#[test]
fn string_matching_and_wildcards() {
    let cmd = |value: &str| event("x").text("CommandLine", value);
    run(vec![
        case(
            "exact is whole-field",
            "  sel:\n    CommandLine: 'ls -la'\n  condition: sel\n",
            cmd("ls -la"),
            true,
        ),
        case(
            "exact is not substring",
            "  sel:\n    CommandLine: 'ls'\n  condition: sel\n",
            cmd("ls -la"),
            false,
        ),
        case(
            "case-insensitive by default",
            "  sel:\n    CommandLine: 'LS -LA'\n  condition: sel\n",
            cmd("ls -la"),
            true,
        ),
        case("contains", CMD, cmd("/usr/bin/WGET http://x"), true),
        case("contains misses", CMD, cmd("curl http://x"), false),
        case(
            "startswith",
            "  sel:\n    CommandLine|startswith: '/tmp/'\n  condition: sel\n",
            cmd("/TMP/x"),
            true,
        ),
        case(
            "startswith misses",
            "  sel:\n    CommandLine|startswith: '/tmp/'\n  condition: sel\n",
            cmd("x /tmp/"),
            false,
        ),
        case(
            "endswith",
            "  sel:\n    Image|endswith: '/nc'\n  condition: sel\n",
            event("x").text("Image", "/usr/bin/nc"),
            true,
        ),
        case(
            "endswith misses",
            "  sel:\n    Image|endswith: '/nc'\n  condition: sel\n",
            event("x").text("Image", "/usr/bin/ncat"),
            false,
        ),
        case(
            "star wildcard",
            "  sel:\n    CommandLine: 'chmod * /tmp/*'\n  condition: sel\n",
            cmd("chmod 777 /tmp/a"),
            true,
        ),
        case(
            "star wildcard misses",
            "  sel:\n    CommandLine: 'chmod * /tmp/*'\n  condition: sel\n",
            cmd("chmod 777 /var/a"),
            false,
        ),
        case(
            "question mark is one char",
            "  sel:\n    CommandLine: 'prog?.exe'\n  condition: sel\n",
            cmd("progA.exe"),
            true,
        ),
        case(
            "question mark is exactly one char",
            "  sel:\n    CommandLine: 'prog?.exe'\n  condition: sel\n",
            cmd("progAB.exe"),
            false,
        ),
        case(
            "question mark takes a multibyte char",
            "  sel:\n    CommandLine: 'caf?'\n  condition: sel\n",
            cmd("café"),
            true,
        ),
        case(
            "escaped star is literal",
            "  sel:\n    CommandLine: 'a\\*b'\n  condition: sel\n",
            cmd("a*b"),
            true,
        ),
        case(
            "escaped star does not glob",
            "  sel:\n    CommandLine: 'a\\*b'\n  condition: sel\n",
            cmd("axxb"),
            false,
        ),
        case(
            "escaped backslash then star",
            "  sel:\n    CommandLine: 'C:\\\\*'\n  condition: sel\n",
            cmd("C:\\Windows"),
            true,
        ),
        case(
            "plain backslash",
            "  sel:\n    CommandLine|endswith: '\\cmd.exe'\n  condition: sel\n",
            cmd("C:\\Windows\\cmd.exe"),
            true,
        ),
        case(
            "cased matches same case",
            "  sel:\n    CommandLine|contains|cased: 'Invoke'\n  condition: sel\n",
            cmd("x Invoke y"),
            true,
        ),
        case(
            "cased rejects other case",
            "  sel:\n    CommandLine|contains|cased: 'Invoke'\n  condition: sel\n",
            cmd("x invoke y"),
            false,
        ),
        case(
            "cased exact",
            "  sel:\n    CommandLine|cased: 'A'\n  condition: sel\n",
            cmd("a"),
            false,
        ),
        case(
            "non-ascii letters match only themselves",
            "  sel:\n    CommandLine|contains: 'É'\n  condition: sel\n",
            cmd("é"),
            false,
        ),
        case(
            "empty string matches empty field",
            "  sel:\n    CommandLine: ''\n  condition: sel\n",
            cmd(""),
            true,
        ),
        case(
            "empty string does not match text",
            "  sel:\n    CommandLine: ''\n  condition: sel\n",
            cmd("x"),
            false,
        ),
        case(
            "absent field never matches a string",
            CMD,
            event("wget "),
            false,
        ),
        case(
            "value list is OR",
            "  sel:\n    CommandLine|contains:\n      - nmap\n      - masscan\n  condition: sel\n",
            cmd("masscan -p1"),
            true,
        ),
        case(
            "all makes the list AND",
            "  sel:\n    CommandLine|contains|all:\n      - nmap\n      - ' -sS'\n  condition: sel\n",
            cmd("nmap -sS x"),
            true,
        ),
        case(
            "all needs every value",
            "  sel:\n    CommandLine|contains|all:\n      - nmap\n      - ' -sS'\n  condition: sel\n",
            cmd("nmap -sT x"),
            false,
        ),
        case(
            "map is AND of fields",
            "  sel:\n    Image|endswith: /nc\n    CommandLine|contains: ' -e '\n  condition: sel\n",
            event("x")
                .text("Image", "/bin/nc")
                .text("CommandLine", "nc -e /bin/sh"),
            true,
        ),
        case(
            "map AND misses one field",
            "  sel:\n    Image|endswith: /nc\n    CommandLine|contains: ' -e '\n  condition: sel\n",
            event("x")
                .text("Image", "/bin/nc")
                .text("CommandLine", "nc -l"),
            false,
        ),
        case(
            "list of maps is OR",
            "  sel:\n    - Image|endswith: /nc\n    - CommandLine|contains: ' -e '\n  condition: sel\n",
            event("x").text("CommandLine", "x -e y"),
            true,
        ),
        case(
            "integer value",
            "  sel:\n    EventID: 4625\n  condition: sel\n",
            event("x").value("EventID", FieldValue::I64(4625)),
            true,
        ),
        case(
            "integer value against text",
            "  sel:\n    EventID: 4625\n  condition: sel\n",
            event("x").text("EventID", "4625"),
            true,
        ),
        case(
            "integer value mismatch",
            "  sel:\n    EventID: 4625\n  condition: sel\n",
            event("x").value("EventID", FieldValue::U64(46250)),
            false,
        ),
        case(
            "boolean value",
            "  sel:\n    Enabled: true\n  condition: sel\n",
            event("x").value("Enabled", FieldValue::Bool(true)),
            true,
        ),
        case(
            "boolean value mismatch",
            "  sel:\n    Enabled: true\n  condition: sel\n",
            event("x").value("Enabled", FieldValue::Bool(false)),
            false,
        ),
        case(
            "first field of a name wins",
            "  sel:\n    user: root\n  condition: sel\n",
            event("x").text("user", "bob").text("user", "root"),
            false,
        ),
    ]);
}

#[test]
fn keywords() {
    run(vec![
        case(
            "keyword list is OR over the message",
            "  keywords:\n    - 'Accepted password'\n    - 'session opened'\n  condition: keywords\n",
            event("pam: SESSION OPENED for root"),
            true,
        ),
        case(
            "keyword list misses",
            "  keywords:\n    - 'Accepted password'\n  condition: keywords\n",
            event("Failed password"),
            false,
        ),
        case(
            "keyword with wildcard",
            "  keywords:\n    - 'Accepted * for root'\n  condition: keywords\n",
            event("sshd: Accepted publickey for root from x"),
            true,
        ),
        case(
            "single keyword string",
            "  keywords: 'segfault at'\n  condition: keywords\n",
            event("kernel: a segfault at 0"),
            true,
        ),
        case(
            "keyword |all map is AND",
            "  keywords:\n    '|all':\n      - 'OabVirtualDirectory'\n      - ' -ExternalUrl '\n  condition: keywords\n",
            event("Set-OabVirtualDirectory -ExternalUrl x"),
            true,
        ),
        case(
            "keyword |all map needs all",
            "  keywords:\n    '|all':\n      - 'OabVirtualDirectory'\n      - ' -ExternalUrl '\n  condition: keywords\n",
            event("Set-OabVirtualDirectory"),
            false,
        ),
        case(
            "keywords do not look at fields",
            "  keywords:\n    - 'secret'\n  condition: keywords\n",
            event("x").text("note", "secret"),
            false,
        ),
        case(
            "mixed list of maps and keywords",
            "  sel:\n    - app: sshd\n    - 'panic'\n  condition: sel\n",
            event("kernel panic"),
            true,
        ),
    ]);
}

#[test]
fn null_and_exists() {
    run(vec![
        case(
            "null matches absent",
            "  sel:\n    a: x\n  filter:\n    User: null\n  condition: sel and filter\n",
            event("m").text("a", "x"),
            true,
        ),
        case(
            "null matches empty",
            "  sel:\n    User: null\n  condition: sel\n",
            event("m").text("User", ""),
            true,
        ),
        case(
            "null misses a value",
            "  sel:\n    User: null\n  condition: sel\n",
            event("m").text("User", "root"),
            false,
        ),
        case(
            "not null",
            "  sel:\n    a: x\n  filter:\n    User: null\n  condition: sel and not filter\n",
            event("m").text("a", "x").text("User", "root"),
            true,
        ),
        case(
            "exists true",
            "  sel:\n    User|exists: true\n  condition: sel\n",
            event("m").text("User", ""),
            true,
        ),
        case(
            "exists true misses",
            "  sel:\n    User|exists: true\n  condition: sel\n",
            event("m"),
            false,
        ),
        case(
            "exists false",
            "  sel:\n    User|exists: false\n  condition: sel\n",
            event("m"),
            true,
        ),
        case(
            "exists false misses",
            "  sel:\n    User|exists: false\n  condition: sel\n",
            event("m").text("User", "x"),
            false,
        ),
    ]);
}

#[test]
fn regex_modifiers() {
    let cmd = |value: &str| event("x").text("CommandLine", value);
    run(vec![
        case(
            "re is a search",
            "  sel:\n    CommandLine|re: '\\s-O\\s'\n  condition: sel\n",
            cmd("wget -O out"),
            true,
        ),
        case(
            "re is case-sensitive",
            "  sel:\n    CommandLine|re: '\\s-O\\s'\n  condition: sel\n",
            cmd("wget -o out"),
            false,
        ),
        case(
            "re|i",
            "  sel:\n    CommandLine|re|i: 'invoke-(expression|webrequest)'\n  condition: sel\n",
            cmd("Invoke-WebRequest x"),
            true,
        ),
        case(
            "re|i misses",
            "  sel:\n    CommandLine|re|i: 'invoke-(expression|webrequest)'\n  condition: sel\n",
            cmd("Invoke-Item"),
            false,
        ),
        case(
            "re without m: ^ is start of text",
            "  sel:\n    CommandLine|re: '^second'\n  condition: sel\n",
            cmd("first\nsecond"),
            false,
        ),
        case(
            "re|m: ^ is start of line",
            "  sel:\n    CommandLine|re|m: '^second'\n  condition: sel\n",
            cmd("first\nsecond"),
            true,
        ),
        case(
            "re without s: dot stops at newline",
            "  sel:\n    CommandLine|re: 'a.b'\n  condition: sel\n",
            cmd("a\nb"),
            false,
        ),
        case(
            "re|s: dot matches newline",
            "  sel:\n    CommandLine|re|s: 'a.b'\n  condition: sel\n",
            cmd("a\nb"),
            true,
        ),
        case(
            "re without literals",
            "  sel:\n    CommandLine|re: '(.){20,}'\n  condition: sel\n",
            cmd("aaaaaaaaaaaaaaaaaaaaaaaaa"),
            true,
        ),
        case(
            "re without literals misses",
            "  sel:\n    CommandLine|re: '(.){20,}'\n  condition: sel\n",
            cmd("short"),
            false,
        ),
        case(
            "re alternation",
            "  sel:\n    a1|re: '(^|/)\\.[^./]'\n  condition: sel\n",
            event("x").text("a1", "/home/u/.hidden"),
            true,
        ),
        case(
            "re list is OR",
            "  sel:\n    CommandLine|re:\n      - '^foo'\n      - 'bar$'\n  condition: sel\n",
            cmd("xbar"),
            true,
        ),
    ]);
}

#[test]
fn cidr_and_numbers() {
    let ip = |value: &str| event("x").text("DestinationIp", value);
    run(vec![
        case(
            "cidr v4",
            "  sel:\n    DestinationIp|cidr: 10.0.0.0/8\n  condition: sel\n",
            ip("10.1.2.3"),
            true,
        ),
        case(
            "cidr v4 misses",
            "  sel:\n    DestinationIp|cidr: 10.0.0.0/8\n  condition: sel\n",
            ip("192.168.1.1"),
            false,
        ),
        case(
            "cidr list",
            "  sel:\n    DestinationIp|cidr:\n      - 10.0.0.0/8\n      - 192.168.0.0/16\n  condition: sel\n",
            ip("192.168.1.1"),
            true,
        ),
        case(
            "cidr v6",
            "  sel:\n    DestinationIp|cidr: 'fd00::/8'\n  condition: sel\n",
            ip("fd12::1"),
            true,
        ),
        case(
            "cidr v6 misses v4",
            "  sel:\n    DestinationIp|cidr: 'fd00::/8'\n  condition: sel\n",
            ip("10.0.0.1"),
            false,
        ),
        case(
            "cidr not an ip",
            "  sel:\n    DestinationIp|cidr: 10.0.0.0/8\n  condition: sel\n",
            ip("ten"),
            false,
        ),
        case(
            "gt",
            "  sel:\n    bytes|gt: 1000\n  condition: sel\n",
            event("x").value("bytes", FieldValue::U64(1001)),
            true,
        ),
        case(
            "gt equal misses",
            "  sel:\n    bytes|gt: 1000\n  condition: sel\n",
            event("x").value("bytes", FieldValue::U64(1000)),
            false,
        ),
        case(
            "gte equal",
            "  sel:\n    bytes|gte: 1000\n  condition: sel\n",
            event("x").text("bytes", "1000"),
            true,
        ),
        case(
            "lt float",
            "  sel:\n    load|lt: 0.5\n  condition: sel\n",
            event("x").value("load", FieldValue::F64(0.25)),
            true,
        ),
        case(
            "lte",
            "  sel:\n    load|lte: '2'\n  condition: sel\n",
            event("x").value("load", FieldValue::I64(3)),
            false,
        ),
        case(
            "number on non-number text",
            "  sel:\n    bytes|gt: 1\n  condition: sel\n",
            event("x").text("bytes", "many"),
            false,
        ),
        case(
            "severity by code",
            "  sel:\n    severity|lte: 3\n  condition: sel\n",
            event("x").severity(Severity::Critical),
            true,
        ),
        case(
            "severity by name",
            "  sel:\n    severity: err\n  condition: sel\n",
            event("x").severity(Severity::Error),
            true,
        ),
        case(
            "neq",
            "  sel:\n    User|neq: root\n  condition: sel\n",
            event("x").text("User", "bob"),
            true,
        ),
        case(
            "neq misses equal",
            "  sel:\n    User|neq: root\n  condition: sel\n",
            event("x").text("User", "ROOT"),
            false,
        ),
        case(
            "neq misses absent",
            "  sel:\n    User|neq: root\n  condition: sel\n",
            event("x"),
            false,
        ),
    ]);
}

#[test]
fn encoding_modifiers() {
    let cmd = |value: &str| event("x").text("CommandLine", value);
    run(vec![
        // "/bin/bash" base64 = L2Jpbi9iYXNo
        case(
            "base64",
            "  sel:\n    CommandLine|base64: '/bin/bash'\n  condition: sel\n",
            cmd("L2Jpbi9iYXNo"),
            true,
        ),
        case(
            "base64|contains",
            "  sel:\n    CommandLine|base64|contains: '/bin/bash'\n  condition: sel\n",
            cmd("echo L2Jpbi9iYXNo | base64 -d"),
            true,
        ),
        case(
            "base64 is case-sensitive data but matched ci",
            "  sel:\n    CommandLine|base64|contains: '/bin/bash'\n  condition: sel\n",
            cmd("l2jpbi9iyxno"),
            true,
        ),
        // "x/bin/bash" → eC9iaW4vYmFzaA== contains offset-1 variant "9iaW4vYmFza"
        case(
            "base64offset offset 1",
            "  sel:\n    CommandLine|base64offset|contains: '/bin/bash'\n  condition: sel\n",
            cmd("echo eC9iaW4vYmFzaA== |base64 -d"),
            true,
        ),
        // "xy/bin/bash" → eHkvYmluL2Jhc2g= contains offset-2 variant "vYmluL2Jhc2"
        case(
            "base64offset offset 2",
            "  sel:\n    CommandLine|base64offset|contains: '/bin/bash'\n  condition: sel\n",
            cmd("eHkvYmluL2Jhc2g="),
            true,
        ),
        case(
            "base64offset misses",
            "  sel:\n    CommandLine|base64offset|contains: '/bin/bash'\n  condition: sel\n",
            cmd("L2Jpbi9zaA=="),
            false,
        ),
        // "cmd" as UTF-16LE = 63 00 6d 00 64 00 → base64 "YwBtAGQA"
        case(
            "wide then base64",
            "  sel:\n    CommandLine|wide|base64: 'cmd'\n  condition: sel\n",
            cmd("YwBtAGQA"),
            true,
        ),
        case(
            "windash dash",
            "  sel:\n    CommandLine|windash|contains: ' -enc '\n  condition: sel\n",
            cmd("powershell -enc AAA"),
            true,
        ),
        case(
            "windash slash",
            "  sel:\n    CommandLine|windash|contains: ' -enc '\n  condition: sel\n",
            cmd("powershell /enc AAA"),
            true,
        ),
        case(
            "windash en dash",
            "  sel:\n    CommandLine|windash|contains: ' -enc '\n  condition: sel\n",
            cmd("powershell \u{2013}enc AAA"),
            true,
        ),
        case(
            "windash em dash",
            "  sel:\n    CommandLine|windash|contains: ' -enc '\n  condition: sel\n",
            cmd("powershell \u{2014}enc AAA"),
            true,
        ),
        case(
            "windash horizontal bar",
            "  sel:\n    CommandLine|windash|contains: ' -enc '\n  condition: sel\n",
            cmd("powershell \u{2015}enc AAA"),
            true,
        ),
        case(
            "windash misses",
            "  sel:\n    CommandLine|windash|contains: ' -enc '\n  condition: sel\n",
            cmd("powershell +enc AAA"),
            false,
        ),
    ]);
}

#[test]
fn conditions() {
    const THREE: &str = "  sel_a:\n    - alpha\n  sel_b:\n    - bravo\n  filter_c:\n    - charlie\n  _hidden:\n    - delta\n";
    let cond = |condition: &'static str| -> &'static str {
        Box::leak(format!("{THREE}  condition: {condition}\n").into_boxed_str())
    };
    run(vec![
        case("and", cond("sel_a and sel_b"), event("alpha bravo"), true),
        case("and misses", cond("sel_a and sel_b"), event("alpha"), false),
        case("or", cond("sel_a or sel_b"), event("bravo"), true),
        case(
            "not",
            cond("sel_a and not filter_c"),
            event("alpha charlie"),
            false,
        ),
        case(
            "not passes",
            cond("sel_a and not filter_c"),
            event("alpha"),
            true,
        ),
        case(
            "precedence: not > and > or",
            cond("sel_a or sel_b and not filter_c"),
            event("alpha charlie"),
            true,
        ),
        case(
            "precedence 2",
            cond("sel_a or sel_b and not filter_c"),
            event("bravo charlie"),
            false,
        ),
        case(
            "parentheses",
            cond("(sel_a or sel_b) and not filter_c"),
            event("alpha charlie"),
            false,
        ),
        case("1 of pattern", cond("1 of sel_*"), event("bravo"), true),
        case("any of pattern", cond("any of sel_*"), event("bravo"), true),
        case(
            "all of pattern",
            cond("all of sel_*"),
            event("bravo"),
            false,
        ),
        case(
            "all of pattern passes",
            cond("all of sel_*"),
            event("alpha bravo"),
            true,
        ),
        case("1 of them", cond("1 of them"), event("charlie"), true),
        case(
            "them skips underscore",
            cond("1 of them"),
            event("delta"),
            false,
        ),
        case(
            "all of them",
            cond("all of them"),
            event("alpha bravo charlie"),
            true,
        ),
        case(
            "all of them ignores underscore",
            cond("all of them"),
            event("alpha bravo charlie"),
            true,
        ),
        case(
            "not 1 of",
            cond("sel_a and not 1 of filter_*"),
            event("alpha charlie"),
            false,
        ),
        case(
            "underscore named directly",
            cond("_hidden"),
            event("delta"),
            true,
        ),
        case("negation only", cond("not sel_a"), event("zulu"), true),
        case(
            "negation only misses",
            cond("not sel_a"),
            event("alpha"),
            false,
        ),
        case(
            "condition list is OR",
            "  sel_a:\n    - alpha\n  sel_b:\n    - bravo\n  condition:\n    - sel_a\n    - sel_b\n",
            event("bravo"),
            true,
        ),
        case(
            "identifiers with digits",
            "  selection1:\n    - one\n  selection_2:\n    - two\n  condition: selection1 and selection_2\n",
            event("one two"),
            true,
        ),
    ]);
}

#[test]
fn field_resolution_and_aliases() {
    run(vec![
        case(
            "message alias",
            "  sel:\n    msg|contains: oops\n  condition: sel\n",
            event("an OOPS"),
            true,
        ),
        case(
            "hostname alias",
            "  sel:\n    hostname: web1\n  condition: sel\n",
            event("x").host("web1"),
            true,
        ),
        case(
            "Computer alias",
            "  sel:\n    Computer: web1\n  condition: sel\n",
            event("x").host("WEB1"),
            true,
        ),
        case(
            "program alias",
            "  sel:\n    program: sshd\n  condition: sel\n",
            event("x").app("sshd"),
            true,
        ),
        case(
            "process.name alias",
            "  sel:\n    process.name: sshd\n  condition: sel\n",
            event("x").app("sshd"),
            true,
        ),
        case(
            "pid alias",
            "  sel:\n    pid: 42\n  condition: sel\n",
            event("x").procid("42"),
            true,
        ),
        case(
            "facility",
            "  sel:\n    facility: authpriv\n  condition: sel\n",
            event("x").facility("authpriv"),
            true,
        ),
        case(
            "sd.id.param",
            "  sel:\n    sd.origin.ip: 10.0.0.1\n  condition: sel\n",
            event("x").sd("origin", &[("ip", "10.0.0.1")]),
            true,
        ),
        case(
            "sd wrong id",
            "  sel:\n    sd.meta.ip: 10.0.0.1\n  condition: sel\n",
            event("x").sd("origin", &[("ip", "10.0.0.1")]),
            false,
        ),
        case(
            "bare sd param",
            "  sel:\n    ip: 10.0.0.1\n  condition: sel\n",
            event("x").sd("origin", &[("ip", "10.0.0.1")]),
            true,
        ),
        case(
            "field wins over sd param",
            "  sel:\n    ip: 10.0.0.1\n  condition: sel\n",
            event("x")
                .sd("origin", &[("ip", "10.0.0.1")])
                .text("ip", "10.9.9.9"),
            false,
        ),
        case(
            "numeric field rendered as text",
            "  sel:\n    port|endswith: '22'\n  condition: sel\n",
            event("x").value("port", FieldValue::I64(2222)),
            true,
        ),
    ]);
}

#[test]
fn fieldref_compares_two_fields_of_the_event() {
    let pair = |user: &str, target: &str| event("x").text("User", user).text("TargetUser", target);
    let exact = "  sel:\n    User|fieldref: TargetUser\n  condition: sel\n";
    run(vec![
        case("equal", exact, pair("root", "root"), true),
        case("ASCII case folded", exact, pair("Root", "rOOT"), true),
        case("different", exact, pair("root", "admin"), false),
        case("prefix is not equal", exact, pair("root", "roo"), false),
        case(
            "referenced field absent",
            exact,
            event("x").text("User", "root"),
            false,
        ),
        case(
            "own field absent",
            exact,
            event("x").text("TargetUser", "root"),
            false,
        ),
        case("both empty are equal", exact, pair("", ""), true),
        case(
            "cased",
            "  sel:\n    User|fieldref|cased: TargetUser\n  condition: sel\n",
            pair("Root", "root"),
            false,
        ),
        case(
            "cased equal",
            "  sel:\n    User|fieldref|cased: TargetUser\n  condition: sel\n",
            pair("Root", "Root"),
            true,
        ),
        case(
            "contains",
            "  sel:\n    User|fieldref|contains: TargetUser\n  condition: sel\n",
            pair("xxROOTyy", "root"),
            true,
        ),
        case(
            "startswith",
            "  sel:\n    User|fieldref|startswith: TargetUser\n  condition: sel\n",
            pair("root-backup", "root"),
            true,
        ),
        case(
            "startswith is not endswith",
            "  sel:\n    User|fieldref|startswith: TargetUser\n  condition: sel\n",
            pair("backup-root", "root"),
            false,
        ),
        case(
            "endswith",
            "  sel:\n    User|fieldref|endswith: TargetUser\n  condition: sel\n",
            pair("backup-root", "root"),
            true,
        ),
        case(
            "neq differs",
            "  sel:\n    User|fieldref|neq: TargetUser\n  condition: sel\n",
            pair("root", "admin"),
            true,
        ),
        case(
            "neq equal",
            "  sel:\n    User|fieldref|neq: TargetUser\n  condition: sel\n",
            pair("root", "ROOT"),
            false,
        ),
        case(
            "neq with the referenced field absent is unknown",
            "  sel:\n    User|fieldref|neq: TargetUser\n  condition: sel\n",
            event("x").text("User", "root"),
            false,
        ),
        case(
            "list: any field",
            "  sel:\n    User|fieldref: [TargetUser, Owner]\n  condition: sel\n",
            pair("root", "admin").text("Owner", "root"),
            true,
        ),
        case(
            "list with all: every field",
            "  sel:\n    User|fieldref|all: [TargetUser, Owner]\n  condition: sel\n",
            pair("root", "admin").text("Owner", "root"),
            false,
        ),
        case(
            "against a header alias",
            "  sel:\n    User|fieldref: host\n  condition: sel\n",
            event("x").host("web1").text("User", "WEB1"),
            true,
        ),
        case(
            "numbers compare as their text",
            "  sel:\n    port|fieldref: expected\n  condition: sel\n",
            event("x")
                .value("port", FieldValue::I64(22))
                .text("expected", "22"),
            true,
        ),
        case(
            "combined with a literal test",
            "  sel:\n    User|fieldref: TargetUser\n    app: sudo\n  condition: sel\n",
            pair("root", "root").app("sudo"),
            true,
        ),
        case(
            "under not",
            "  sel:\n    User|fieldref: TargetUser\n  condition: not sel\n",
            pair("root", "admin"),
            true,
        ),
    ]);
}

#[test]
fn field_mapping_is_applied() {
    let rules = load_one("  sel:\n    CommandLine|contains: 'nc -e'\n  condition: sel\n");
    let options = CompileOptions {
        field_mapping: FieldMapping::new().with("CommandLine", "cmdline"),
        ..CompileOptions::default()
    };
    assert!(matches(
        &rules,
        &options,
        &event("x").text("cmdline", "nc -e /bin/sh")
    ));
    assert!(!matches(
        &rules,
        &options,
        &event("x").text("CommandLine", "nc -e /bin/sh")
    ));
    let to_message = CompileOptions {
        field_mapping: FieldMapping::new().with("CommandLine", "message"),
        ..CompileOptions::default()
    };
    assert!(matches(&rules, &to_message, &event("ran nc -e /bin/sh")));
}

#[test]
fn logsource_mapping_restricts_only_mapped_sources() {
    let sshd = parse_rules_str(
        "title: t\nlogsource:\n  product: linux\n  service: sshd\ndetection:\n  k:\n    - 'Failed password'\n  condition: k\n",
        "sshd.yml",
    )
    .loaded;
    let options = CompileOptions::default();
    assert!(matches(
        &sshd,
        &options,
        &event("Failed password for root").app("sshd")
    ));
    assert!(!matches(
        &sshd,
        &options,
        &event("Failed password for root").app("login")
    ));
    assert!(!matches(
        &sshd,
        &options,
        &event("Failed password for root")
    ));
    let unrestricted = CompileOptions {
        logsource_mapping: LogsourceMapping::empty(),
        ..CompileOptions::default()
    };
    assert!(matches(
        &sshd,
        &unrestricted,
        &event("Failed password for root")
    ));

    let auth = parse_rules_str(
        "title: t\nlogsource:\n  service: auth\ndetection:\n  k:\n    - 'session opened'\n  condition: k\n",
        "auth.yml",
    )
    .loaded;
    assert!(matches(
        &auth,
        &options,
        &event("session opened").facility("authpriv")
    ));
    assert!(!matches(
        &auth,
        &options,
        &event("session opened").facility("daemon")
    ));

    // Unmapped categories do not restrict.
    let process = load_one("  k:\n    - 'nc -e'\n  condition: k\n");
    assert!(matches(&process, &options, &event("nc -e /bin/sh")));

    let mut custom = LogsourceMapping::empty();
    custom.push(LogsourceEntry {
        product: Some("linux".into()),
        conditions: vec![("host".into(), vec!["linux-box".into()])],
        ..LogsourceEntry::default()
    });
    let custom = CompileOptions {
        logsource_mapping: custom,
        ..CompileOptions::default()
    };
    assert!(matches(
        &process,
        &custom,
        &event("nc -e x").host("LINUX-BOX")
    ));
    assert!(!matches(&process, &custom, &event("nc -e x").host("win")));
}

#[test]
fn logsource_mapping_set_replaces_the_entry_of_the_same_logsource() {
    let sshd = parse_rules_str(
        "title: t\nlogsource:\n  service: sshd\ndetection:\n  k:\n    - 'Failed password'\n  condition: k\n",
        "sshd.yml",
    )
    .loaded;
    let mut mapping = LogsourceMapping::default();
    mapping.set(LogsourceEntry {
        service: Some("SSHD".into()),
        conditions: vec![("app".into(), vec!["dropbear".into()])],
        ..LogsourceEntry::default()
    });
    let replaced = CompileOptions {
        logsource_mapping: mapping.clone(),
        ..CompileOptions::default()
    };
    let line = || event("Failed password for root");
    assert!(matches(&sshd, &replaced, &line().app("dropbear")));
    assert!(!matches(&sshd, &replaced, &line().app("sshd")));
    mapping.set(LogsourceEntry {
        service: Some("sshd".into()),
        ..LogsourceEntry::default()
    });
    let lifted = CompileOptions {
        logsource_mapping: mapping,
        ..CompileOptions::default()
    };
    assert!(matches(&sshd, &lifted, &line()));
}

#[test]
fn full_rule_yaml_round_trip_of_metadata() {
    let report = parse_rules_str(&rule_yaml(CMD), "x.yml");
    let rule = &report.loaded[0];
    assert_eq!(rule.title, "test rule");
    assert_eq!(rule.level, Some(cairn_correlate::Level::High));
    assert_eq!(rule.logsource.product.as_deref(), Some("linux"));
}
