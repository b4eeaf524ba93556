//! The lines the load generator sends.
//!
//! Every line carries `run=RUN_ID n=SEQ` at the end of its message, so one search for the run id
//! token counts exactly this run's events. Hosts, users, IPs, ports and message kinds vary
//! deterministically with the sequence number; a line is ~120–140 bytes.

use std::io::Write as _;

/// Month abbreviations as RFC 3164 writes them.
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// The wall clock, formatted once per refresh instead of once per line.
#[derive(Debug, Clone)]
pub struct Clock {
    /// `Nov 21 13:08:46` (UTC, day space-padded).
    rfc3164: String,
    /// `2024-11-21T13:08:46Z`.
    rfc3339: String,
}

impl Clock {
    pub fn now() -> Clock {
        let now = jiff::Timestamp::now();
        let civil = now.to_zoned(jiff::tz::TimeZone::UTC).datetime();
        let month_index = usize::try_from(civil.month() - 1).unwrap_or(0);
        Clock {
            rfc3164: format!(
                "{} {:>2} {:02}:{:02}:{:02}",
                MONTHS[month_index % 12],
                civil.day(),
                civil.hour(),
                civil.minute(),
                civil.second()
            ),
            rfc3339: format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
                civil.year(),
                civil.month(),
                civil.day(),
                civil.hour(),
                civil.minute(),
                civil.second()
            ),
        }
    }
}

/// Deterministic per-event values derived from the sequence number.
#[derive(Debug, Clone, Copy)]
struct Variation {
    kind: u64,
    host: u64,
    user: u64,
    pid: u64,
    ip: [u64; 3],
    port: u64,
}

impl Variation {
    fn of(seq: u64) -> Variation {
        // splitmix64 finaliser: neighbouring sequence numbers get unrelated values.
        let mut z = seq.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        Variation {
            kind: z & 7,
            host: (z >> 3) % 64,
            user: (z >> 9) % 500,
            pid: 1000 + (z >> 18) % 30_000,
            ip: [(z >> 33) & 255, (z >> 41) & 255, 1 + (z >> 49) % 254],
            port: 1024 + (z >> 20) % 60_000,
        }
    }
}

/// Builds the lines of one run.
#[derive(Debug, Clone)]
pub struct LineBuilder {
    run_id: String,
}

impl LineBuilder {
    pub fn new(run_id: &str) -> LineBuilder {
        LineBuilder {
            run_id: run_id.to_owned(),
        }
    }

    /// Appends the RFC 3164 syslog line of event `seq` (no trailing LF).
    pub fn syslog_line(&self, seq: u64, clock: &Clock, out: &mut Vec<u8>) {
        let variation = Variation::of(seq);
        let (pri, app) = Self::pri_and_app(variation);
        // Writing into a Vec<u8> cannot fail.
        let _ = write!(
            out,
            "<{pri}>{} host-{} {app}",
            clock.rfc3164, variation.host
        );
        if app == "sshd" {
            let _ = write!(out, "[{}]", variation.pid);
        }
        out.extend_from_slice(b": ");
        self.message(seq, variation, out);
    }

    /// Appends the NDJSON line of event `seq` (no trailing LF), as `POST /api/v1/ingest` takes it.
    pub fn ndjson_line(&self, seq: u64, clock: &Clock, out: &mut Vec<u8>) {
        let variation = Variation::of(seq);
        let (_, app) = Self::pri_and_app(variation);
        // No part of the message needs JSON escaping: it is ASCII without quotes or backslashes.
        let _ = write!(
            out,
            r#"{{"ts":"{}","host":"host-{}","app":"{app}","message":""#,
            clock.rfc3339, variation.host
        );
        self.message(seq, variation, out);
        out.extend_from_slice(b"\"}");
    }

    fn pri_and_app(variation: Variation) -> (u32, &'static str) {
        match variation.kind {
            6 => (85, "sudo"),
            _ => (38, "sshd"),
        }
    }

    fn message(&self, seq: u64, variation: Variation, out: &mut Vec<u8>) {
        let Variation { user, ip, port, .. } = variation;
        let [b, c, d] = ip;
        let run_id = &self.run_id;
        let _ = match variation.kind {
            0..=3 => write!(
                out,
                "Failed password for user{user} from 10.{b}.{c}.{d} port {port} ssh2"
            ),
            4 | 5 => write!(
                out,
                "Accepted publickey for user{user} from 10.{b}.{c}.{d} port {port} ssh2"
            ),
            6 => write!(
                out,
                "user{user} : TTY=pts/{} ; PWD=/home/user{user} ; USER=root ; COMMAND=/usr/bin/id",
                port % 8
            ),
            _ => write!(
                out,
                "Invalid user admin{user} from 10.{b}.{c}.{d} port {port}"
            ),
        };
        let _ = write!(out, " run={run_id} n={seq}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syslog_lines_carry_run_id_and_sequence() {
        let builder = LineBuilder::new("lgabcdefghij");
        let clock = Clock::now();
        let mut lengths = Vec::new();
        for seq in 0..1000 {
            let mut line = Vec::new();
            builder.syslog_line(seq, &clock, &mut line);
            let text = String::from_utf8(line).expect("ascii");
            assert!(
                text.ends_with(&format!(" run=lgabcdefghij n={seq}")),
                "{text}"
            );
            assert!(!text.contains('\n'));
            lengths.push(text.len());
        }
        let mean = lengths.iter().sum::<usize>() / lengths.len();
        assert!((100..=160).contains(&mean), "mean line length {mean}");
    }

    #[test]
    fn ndjson_lines_are_json_objects_with_message() {
        let builder = LineBuilder::new("lgabcdefghij");
        let clock = Clock::now();
        for seq in 0..100 {
            let mut line = Vec::new();
            builder.ndjson_line(seq, &clock, &mut line);
            let value: serde_json::Value = serde_json::from_slice(&line).expect("valid JSON");
            let message = value["message"].as_str().expect("message");
            assert!(message.ends_with(&format!("n={seq}")));
            assert!(value["ts"].as_str().expect("ts").ends_with('Z'));
        }
    }
}
