//! A deterministic Sigma workload: 1,000 rules and a syslog corpus they partly match.
//!
//! Rules (by position modulo 20): 7 keyword rules (2–6 needles, some `|all`), 4 field `contains`
//! rules (2–5 needles, half with a `not filter`), 3 `startswith`, 3 `endswith`, 2 regex (10%, each with a
//! literal run so the prefilter can use it), 1 exact-value rule. Needles are drawn from a
//! vocabulary of Linux tools, arguments, paths and generated implant names (about 3,000
//! distinct needles for 1,000 rules). Fields are the ones Cairn's built-in extraction fills
//! from the corpus lines: `command`, `pwd`, `target_user` (sudo), `user`, `src_ip` (sshd),
//! `path`, `user_agent` (access logs), plus the headers `app`, `host` and the `message`.
//!
//! The corpus: RFC 3164 lines of sshd, sudo, cron, nginx access logs, kernel, systemd and
//! postfix, ~130 bytes each; about 3% carry a needle of some rule in the place that rule
//! looks at, so some rules match and most events match nothing (as in production).

use std::fmt::Write as _;

/// xorshift64: small, deterministic, good enough for workloads.
#[derive(Debug, Clone)]
pub struct Random(u64);

impl Random {
    pub fn new(seed: u64) -> Random {
        Random(seed.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    pub fn below(&mut self, bound: usize) -> usize {
        (self.next_u64() % bound.max(1) as u64) as usize
    }

    pub fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }

    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
}

const TOOLS: &[&str] = &[
    "wget",
    "curl",
    "nc",
    "ncat",
    "socat",
    "python3",
    "perl",
    "bash",
    "chmod",
    "chown",
    "useradd",
    "usermod",
    "passwd",
    "crontab",
    "iptables",
    "tcpdump",
    "nmap",
    "base64",
    "openssl",
    "mkfifo",
    "telnet",
    "ssh-keygen",
    "scp",
    "rsync",
    "tar",
    "gzip",
    "dd",
    "mount",
    "insmod",
    "modprobe",
    "systemctl",
    "journalctl",
    "setfacl",
    "xxd",
    "awk",
    "sed",
    "find",
    "whoami",
    "uname",
    "ifconfig",
    "netstat",
    "pkill",
    "nohup",
    "screen",
    "tmux",
    "git",
    "docker",
    "kubectl",
    "mysql",
    "psql",
    "redis-cli",
    "sqlite3",
    "php",
    "ruby",
    "node",
    "java",
    "gcc",
    "make",
    "apt-get",
    "yum",
    "dnf",
    "pip3",
    "npm",
    "chattr",
    "lsattr",
    "shred",
    "auditctl",
    "setenforce",
    "visudo",
    "sudoedit",
    "logrotate",
    "ldconfig",
    "strace",
    "ltrace",
    "gdb",
    "objdump",
    "readelf",
    "strings",
    "hexdump",
    "bzip2",
    "unzip",
    "7z",
    "tftp",
    "sftp",
    "smbclient",
    "rpcclient",
    "ldapsearch",
    "kinit",
    "keytool",
    "gpg",
    "ssh-add",
    "ssh-agent",
    "busybox",
    "lua",
    "tclsh",
    "expect",
    "xterm",
    "wall",
    "at",
];

const ARGS: &[&str] = &[
    "-e /bin/sh",
    "-O /tmp/",
    "-s http://",
    "-c 'import",
    "777 /tmp/",
    "+x /dev/shm/",
    "-rf /var/log",
    "--output /tmp/.",
    "-d | sh",
    "-lvnp 4444",
    "-i >& /dev/tcp/",
    "-x socks5://",
    "-k https://",
    "-q -O-",
    "--no-check-certificate",
    "-m 755",
    "-G root",
    "-o StrictHostKeyChecking=no",
    "-p 2222",
    "-R 8080:",
    "-D 1080",
    "enc -d -aes256",
    "-w /etc/passwd",
    "-a -k",
    "--privileged",
    "run --rm -v /:/mnt",
    "exec -it",
    "cp /bin/bash /tmp/",
    "+i /etc/",
    "-F",
    "stop auditd",
    "0",
    "-u root",
    "--upload-file",
    "-T /etc/shadow",
    "if=/dev/zero",
    "of=/dev/sda",
    "-r /root/.ssh",
    "clone http://",
    "install --user",
];

const PATHS: &[&str] = &[
    "/tmp/",
    "/dev/shm/",
    "/var/tmp/",
    "/etc/cron.d/",
    "/root/.ssh/",
    "/etc/sudoers.d/",
    "/usr/local/bin/",
    "/etc/systemd/system/",
    "/home/deploy/.cache/",
    "/run/user/0/",
    "/opt/app/",
    "/var/www/html/",
    "/lib/modules/",
    "/etc/init.d/",
    "/usr/lib/x86_64/",
];

const SYLLABLES: &[&str] = &[
    "kin", "sing", "xm", "rig", "kwo", "rker", "ds", "mir", "ai", "gafgyt", "tsu", "nami", "zer",
    "dax", "lok", "bot", "ngr", "ok", "sys", "upd", "ate", "dbus", "crypt", "lab", "mon", "ero",
    "hid", "den", "pnscan", "masscan", "watch", "dog", "kthr", "eadd", "rev", "shel", "lz", "ma",
    "pwn", "kit",
];

const METHODS: &[&str] = &["GET", "GET", "GET", "POST", "HEAD", "PUT"];
const WEB_PATHS: &[&str] = &[
    "/",
    "/index.html",
    "/api/v1/items",
    "/login",
    "/static/app.js",
    "/favicon.ico",
    "/api/v1/orders?page=2",
    "/healthz",
    "/images/logo.png",
    "/search?q=shoes",
];
const AGENTS: &[&str] = &[
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Gecko/20100101 Firefox/120.0",
    "curl/8.5.0",
    "kube-probe/1.28",
    "Go-http-client/1.1",
];
const USERS: &[&str] = &[
    "root", "deploy", "alice", "bob", "backup", "www-data", "postgres", "admin", "ubuntu", "git",
    "nagios", "jenkins",
];
const HOSTS: &[&str] = &[
    "web01",
    "web02",
    "db01",
    "bastion",
    "build-3",
    "mail",
    "k8s-node-7",
    "vpn-gw",
];
const COMMANDS: &[&str] = &[
    "/usr/bin/systemctl restart nginx",
    "/usr/bin/apt-get update",
    "/bin/journalctl -u app --since today",
    "/usr/bin/docker ps",
    "/usr/bin/tail -n 100 /var/log/syslog",
    "/bin/cat /etc/hosts",
    "/usr/sbin/service cron status",
    "/usr/bin/rsync -a /srv/data/ backup:/srv/data/",
];
const KERNEL: &[&str] = &[
    "[UFW BLOCK] IN=eth0 OUT= MAC=52:54:00:12:34:56 SRC=198.51.100.23 DST=10.0.0.5 LEN=60 PROTO=TCP SPT=51234 DPT=23",
    "EXT4-fs (sda1): mounted filesystem with ordered data mode. Opts: (null)",
    "eth0: Link is Up - 1Gbps/Full - flow control rx/tx",
    "TCP: request_sock_TCP: Possible SYN flooding on port 443. Sending cookies.",
    "usb 1-1: new high-speed USB device number 3 using xhci_hcd",
];
const SYSTEMD: &[&str] = &[
    "Started Daily apt download activities.",
    "Starting Cleanup of Temporary Directories...",
    "Finished Rotate log files.",
    "nginx.service: Reloaded A high performance web server.",
    "Started Session 4242 of user deploy.",
];
const POSTFIX: &[&str] = &[
    "connect from mail-ed1.example.net[203.0.113.44]",
    "disconnect from unknown[198.51.100.9] ehlo=1 auth=0/1 commands=1/2",
    "NOQUEUE: reject: RCPT from unknown[192.0.2.77]: 554 5.7.1 Relay access denied",
    "3F1A2C0B1D: client=mail-ed1.example.net[203.0.113.44]",
];

/// Where a rule looks, so the corpus can plant its needles in the right place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Message,
    Command,
    Path,
    UserAgent,
    Pwd,
    User,
}

impl Target {
    fn field(self) -> &'static str {
        match self {
            Target::Message => "message",
            Target::Command => "command",
            Target::Path => "path",
            Target::UserAgent => "user_agent",
            Target::Pwd => "pwd",
            Target::User => "user",
        }
    }
}

/// How a planted needle must sit in its field to match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    Anywhere,
    Start,
    End,
    Whole,
}

/// One needle a rule needs, for planting into events.
#[derive(Debug, Clone)]
pub struct Plant {
    pub target: Target,
    pub placement: Placement,
    /// All of these must be planted (for `|all` and regexes, one text).
    pub texts: Vec<String>,
}

/// The rule set: one YAML document per rule and, per rule, a way to make it match.
#[derive(Debug, Clone)]
pub struct RuleSet {
    pub documents: Vec<String>,
    pub plants: Vec<Plant>,
}

impl RuleSet {
    /// All documents as one multi-document YAML stream.
    pub fn yaml(&self) -> String {
        self.documents.join("---\n")
    }
}

fn implant_name(random: &mut Random) -> String {
    let parts = 2 + random.below(2);
    (0..parts).map(|_| random.pick(SYLLABLES)).collect()
}

/// A realistic literal: a tool with an argument, a path with a tool or implant, or an implant.
fn needle(random: &mut Random) -> String {
    match random.below(4) {
        0 | 1 => format!("{} {}", random.pick(TOOLS), random.pick(ARGS)),
        2 => format!("{}{}", random.pick(PATHS), implant_name(random)),
        _ => format!("{}-{}", implant_name(random), random.pick(TOOLS)),
    }
}

fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// Escapes a literal for a regex (the `regex` crate syntax, PCRE-compatible for these).
fn regex_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if "\\.+*?()|[]{}^$#&-~".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// `count` rules, deterministic for a given seed: the mixed set with 10% regex rules.
pub fn generate_rules(count: usize, seed: u64) -> RuleSet {
    generate_rules_with(count, seed, RegexShare::TenPercent)
}

/// How many of the generated rules are regexes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegexShare {
    /// Literal-only: the two regex rules of every 20 become field `contains` rules.
    None,
    /// Two rules of every 20 (the default mix).
    TenPercent,
}

impl RegexShare {
    /// `0` → [`RegexShare::None`], anything else → [`RegexShare::TenPercent`].
    pub fn from_percent(percent: usize) -> RegexShare {
        if percent == 0 {
            RegexShare::None
        } else {
            RegexShare::TenPercent
        }
    }
}

/// `count` rules, deterministic for a given seed and regex share. With
/// [`RegexShare::TenPercent`] the result is exactly [`generate_rules`]'s.
pub fn generate_rules_with(count: usize, seed: u64, regex: RegexShare) -> RuleSet {
    let mut random = Random::new(seed);
    let mut documents = Vec::with_capacity(count);
    let mut plants = Vec::with_capacity(count);
    for index in 0..count {
        let kind = match (index % 20, regex) {
            (17 | 18, RegexShare::None) => 7 + index % 2 * 2,
            (kind, _) => kind,
        };
        let (detection, plant) = match kind {
            0..=6 => {
                let needles: Vec<String> = (0..2 + random.below(5))
                    .map(|_| needle(&mut random))
                    .collect();
                let list = needles
                    .iter()
                    .map(|n| quote(n))
                    .collect::<Vec<_>>()
                    .join(", ");
                if needles.len() > 1 && index % 20 == 6 {
                    (
                        format!(
                            "    keywords:\n        '|all': [{list}]\n    condition: keywords\n"
                        ),
                        Plant {
                            target: Target::Message,
                            placement: Placement::Anywhere,
                            texts: needles,
                        },
                    )
                } else {
                    let first = needles[0].clone();
                    (
                        format!("    keywords: [{list}]\n    condition: keywords\n"),
                        Plant {
                            target: Target::Message,
                            placement: Placement::Anywhere,
                            texts: vec![first],
                        },
                    )
                }
            }
            7..=10 => {
                let target = [
                    Target::Command,
                    Target::Command,
                    Target::Path,
                    Target::Message,
                ][index % 4];
                let needles: Vec<String> = (0..2 + random.below(4))
                    .map(|_| needle(&mut random))
                    .collect();
                let list = needles
                    .iter()
                    .map(|n| quote(n))
                    .collect::<Vec<_>>()
                    .join(", ");
                let filter = if index % 2 == 0 {
                    format!(
                        "    filter:\n        host|startswith: 'trusted-'\n        user: {}\n    condition: selection and not filter\n",
                        quote(random.pick(USERS))
                    )
                } else {
                    "    condition: selection\n".to_owned()
                };
                (
                    format!(
                        "    selection:\n        {}|contains: [{list}]\n{filter}",
                        target.field()
                    ),
                    Plant {
                        target,
                        placement: Placement::Anywhere,
                        texts: vec![needles[0].clone()],
                    },
                )
            }
            11..=13 => {
                let target = [Target::Command, Target::Path, Target::UserAgent][index % 3];
                let text = match target {
                    Target::Command => format!("{}{}", random.pick(PATHS), random.pick(TOOLS)),
                    Target::Path => format!("/{}", implant_name(&mut random)),
                    _ => format!("{}/{}", implant_name(&mut random), 1 + random.below(9)),
                };
                (
                    format!(
                        "    selection:\n        {}|startswith: {}\n    condition: selection\n",
                        target.field(),
                        quote(&text)
                    ),
                    Plant {
                        target,
                        placement: Placement::Start,
                        texts: vec![text],
                    },
                )
            }
            14..=16 => {
                let target = [Target::Command, Target::Path, Target::Pwd][index % 3];
                let text = match target {
                    Target::Path => format!(
                        ".{}",
                        ["php", "jsp", "asp", "cgi", "env", "git/config"][random.below(6)]
                    )
                    .replace('.', &format!("/{}.", implant_name(&mut random))),
                    _ => format!("/{}", implant_name(&mut random)),
                };
                (
                    format!(
                        "    selection:\n        {}|endswith: {}\n    selection_app:\n        app: ['sudo', 'nginx', 'sshd', 'cron']\n    condition: selection and selection_app\n",
                        target.field(),
                        quote(&text)
                    ),
                    Plant {
                        target,
                        placement: Placement::End,
                        texts: vec![text],
                    },
                )
            }
            17 | 18 => {
                let tool = random.pick(TOOLS);
                let implant = implant_name(&mut random);
                let target = if index % 2 == 0 {
                    Target::Command
                } else {
                    Target::Message
                };
                let pattern = format!(
                    "{}\\s+-[a-z]+\\s+\\S*{}",
                    regex_escape(tool),
                    regex_escape(&implant)
                );
                (
                    format!(
                        "    selection:\n        {}|re: {}\n    condition: selection\n",
                        target.field(),
                        quote(&pattern)
                    ),
                    Plant {
                        target,
                        placement: Placement::Anywhere,
                        texts: vec![format!("{tool} -x /tmp/{implant}")],
                    },
                )
            }
            _ => {
                let user = format!("{}{}", implant_name(&mut random), random.below(100));
                (
                    format!(
                        "    selection:\n        user: {}\n    condition: selection\n",
                        quote(&user)
                    ),
                    Plant {
                        target: Target::User,
                        placement: Placement::Whole,
                        texts: vec![user],
                    },
                )
            }
        };
        let mut document = String::new();
        let _ = write!(
            document,
            "title: Synthetic rule {index} ({})\nid: 00000000-0000-4000-8000-{index:012}\nstatus: test\nlevel: medium\nlogsource:\n    product: linux\ndetection:\n{detection}",
            plant.target.field()
        );
        documents.push(document);
        plants.push(plant);
    }
    RuleSet { documents, plants }
}

fn ip(random: &mut Random) -> String {
    format!(
        "{}.{}.{}.{}",
        [198, 203, 192, 10][random.below(4)],
        random.below(256),
        random.below(256),
        1 + random.below(254)
    )
}

/// `count` RFC 3164 lines (no trailing newline), deterministic; about `planted_percent`% carry
/// a needle of some rule of `rules` where that rule looks.
pub fn generate_corpus(
    count: usize,
    seed: u64,
    rules: &RuleSet,
    planted_percent: usize,
) -> Vec<String> {
    let mut random = Random::new(seed);
    let mut lines = Vec::with_capacity(count);
    for index in 0..count {
        let plant = (random.chance(planted_percent) && !rules.plants.is_empty())
            .then(|| rules.plants[random.below(rules.plants.len())].clone());
        let host = random.pick(HOSTS);
        let pid = 1000 + random.below(30000);
        let time = format!(
            "Nov 21 {:02}:{:02}:{:02}",
            index / 3600 % 24,
            index / 60 % 60,
            index % 60
        );
        let target = plant.as_ref().map_or_else(
            || [Target::Message, Target::Command, Target::Path, Target::User][random.below(4)],
            |plant| plant.target,
        );
        let planted_text = |default: String, random: &mut Random| -> String {
            let Some(plant) = &plant else { return default };
            let joined = plant.texts.join(" ");
            match plant.placement {
                Placement::Whole => joined,
                Placement::Start => {
                    format!("{joined}{}", ["", "/x", " -v", ".bak"][random.below(4)])
                }
                Placement::End => format!(
                    "{}{joined}",
                    ["/var/www", "/srv", "", "/home/x"][random.below(4)]
                ),
                Placement::Anywhere => format!("{default} {joined} {}", random.pick(ARGS)),
            }
        };
        let line = match target {
            Target::Command | Target::Pwd => {
                let user = random.pick(USERS);
                let command = if target == Target::Command {
                    planted_text(random.pick(COMMANDS).to_owned(), &mut random)
                } else {
                    random.pick(COMMANDS).to_owned()
                };
                let pwd = if target == Target::Pwd {
                    planted_text("/home/deploy".to_owned(), &mut random)
                } else {
                    format!("/home/{user}")
                };
                format!(
                    "<85>{time} {host} sudo: {user} : TTY=pts/{} ; PWD={pwd} ; USER=root ; COMMAND={command}",
                    random.below(9)
                )
            }
            Target::Path | Target::UserAgent => {
                let path = if target == Target::Path {
                    planted_text(random.pick(WEB_PATHS).to_owned(), &mut random).replace(' ', "%20")
                } else {
                    random.pick(WEB_PATHS).to_owned()
                };
                let agent = if target == Target::UserAgent {
                    planted_text(random.pick(AGENTS).to_owned(), &mut random)
                } else {
                    random.pick(AGENTS).to_owned()
                };
                format!(
                    "<190>{time} {host} nginx[{pid}]: {} - - [21/Nov/2024:{:02}:{:02}:{:02} +0000] \"{} {path} HTTP/1.1\" {} {} \"-\" \"{agent}\"",
                    ip(&mut random),
                    index / 3600 % 24,
                    index / 60 % 60,
                    index % 60,
                    random.pick(METHODS),
                    [200, 200, 200, 304, 404, 500][random.below(6)],
                    random.below(50_000),
                )
            }
            Target::User => {
                let user =
                    planted_text(random.pick(USERS).to_owned(), &mut random).replace(' ', "_");
                let verb = [
                    "Failed password for",
                    "Accepted publickey for",
                    "Failed password for invalid user",
                ][random.below(3)];
                format!(
                    "<38>{time} {host} sshd[{pid}]: {verb} {user} from {} port {} ssh2",
                    ip(&mut random),
                    1024 + random.below(60000)
                )
            }
            Target::Message => {
                let (app, text) = match random.below(5) {
                    0 => ("kernel", random.pick(KERNEL).to_owned()),
                    1 => ("systemd", random.pick(SYSTEMD).to_owned()),
                    2 => ("postfix/smtpd", random.pick(POSTFIX).to_owned()),
                    3 => (
                        "CRON",
                        format!("({}) CMD ({})", random.pick(USERS), random.pick(COMMANDS)),
                    ),
                    _ => (
                        "dockerd",
                        format!(
                            "level=info msg=\"container {} started\" id={:x}",
                            random.pick(USERS),
                            random.next_u64()
                        ),
                    ),
                };
                let text = planted_text(text, &mut random);
                if app == "kernel" {
                    format!(
                        "<4>{time} {host} kernel: [{}.{:06}] {text}",
                        random.below(99999),
                        random.below(999_999)
                    )
                } else {
                    format!("<30>{time} {host} {app}[{pid}]: {text}")
                }
            }
        };
        lines.push(line);
    }
    lines
}

/// Frame metadata for bench events.
pub fn frame_meta(seq: u64) -> cairn_ingest::FrameMeta {
    cairn_ingest::FrameMeta {
        seq: cairn_ingest::Seq(seq),
        received_at: cairn_ingest::Timestamp(1_732_183_200_000_000_000),
        peer: Some(std::net::SocketAddr::from(([127, 0, 0, 1], 40_000))),
        source: cairn_ingest::Source::SyslogTcp,
        flags: cairn_ingest::EventFlags::empty(),
    }
}

/// The event as one JSON object with its fields pre-extracted (what a Sigma engine reading
/// NDJSON sees): `message`, `host`, `app`, `pid`, then every extracted field.
pub fn event_to_json(event: &cairn_ingest::Event) -> serde_json::Value {
    use cairn_ingest::FieldValue;
    let mut object = serde_json::Map::new();
    object.insert("message".into(), event.message_str().into());
    if let Some(host) = event.host_str() {
        object.insert("host".into(), host.into());
    }
    if let Some(app) = event.app_str() {
        object.insert("app".into(), app.into());
    }
    if let Some(pid) = event.procid_str() {
        object.insert("pid".into(), pid.into());
    }
    for field in &event.fields {
        let name = event.text(&field.name).to_owned();
        let value: serde_json::Value = match &field.value {
            FieldValue::Text(text) => event.text(text).into(),
            FieldValue::I64(number) => (*number).into(),
            FieldValue::U64(number) => (*number).into(),
            FieldValue::F64(number) => (*number).into(),
            FieldValue::Bool(flag) => (*flag).into(),
        };
        object.entry(name).or_insert(value);
    }
    serde_json::Value::Object(object)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generation_is_deterministic_and_sized() {
        let rules = generate_rules(1000, 7);
        assert_eq!(rules.documents.len(), 1000);
        assert_eq!(rules.yaml(), generate_rules(1000, 7).yaml());
        let corpus = generate_corpus(1000, 9, &rules, 3);
        assert_eq!(corpus.len(), 1000);
        assert_eq!(corpus, generate_corpus(1000, 9, &rules, 3));
    }
}
