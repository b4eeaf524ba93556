#!/usr/bin/env python3
"""Writes seed inputs for the fuzz targets from the project's fixtures.

    python3 ingest/fuzz/seed_corpora.py OUT_DIR

creates OUT_DIR/<target>/<sha1> files (libFuzzer's naming). Each input starts with the
option bytes its target's check function reads (see `cairn_*::fuzzing`). The committed corpora
in `fixtures/fuzz/<target>/` are these seeds plus what the fuzzer found, minimised with
`cargo fuzz cmin`.
"""
import hashlib
import json
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
SYSLOG = ROOT / "fixtures" / "syslog"
SIGMA = ROOT / "fixtures" / "sigma"


def jsonl(path):
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def write(out, target, data):
    folder = out / target
    folder.mkdir(parents=True, exist_ok=True)
    (folder / hashlib.sha1(data).hexdigest()).write_bytes(data)


def syslog_lines():
    for row in jsonl(SYSLOG / "curated_syslog_lines.jsonl"):
        yield row["category"], row["line"]
    for row in jsonl(SYSLOG / "rsyslog_parser_vectors.jsonl"):
        for line in row.get("inputs", []):
            yield "rsyslog", line


def main():
    out = pathlib.Path(sys.argv[1])

    # framing: [max_frame_bytes - 1, seed, seed, stream]
    for row in jsonl(SYSLOG / "go-syslog" / "octetcounting.jsonl") + jsonl(
        SYSLOG / "go-syslog" / "nontransparent.jsonl"
    ):
        stream = row["input"].replace("%[1]s", "\n").encode()
        for max_byte in (0x0F, 0xFF):
            write(out, "framing", bytes([max_byte, row["idx"] & 0xFF, 7]) + stream)
    lines = [line.encode() for _, line in syslog_lines()][:40]
    write(out, "framing", b"\x7f\x01\x02" + b"\n".join(lines) + b"\n")
    write(out, "framing", b"\x7f\x03\x04" + b"".join(b"%d %s" % (len(l), l) for l in lines))
    write(out, "framing", b"\x20\x05\x06" + b"\0".join(lines) + b"\r\n")

    # rfc5424 / rfc3164: [options selector, frame]
    for row in jsonl(SYSLOG / "go-syslog" / "rfc5424.jsonl"):
        write(out, "rfc5424", b"\0" + row["input"].encode())
    for row in jsonl(SYSLOG / "go-syslog" / "rfc3164.jsonl"):
        write(out, "rfc3164", b"\0" + row["input"].encode())
    for category, line in syslog_lines():
        target = "rfc5424" if "5424" in category else "rfc3164"
        write(out, target, b"\0" + line.encode())
    write(out, "rfc3164", b"\x07<13>Jan  1 00:00:00 host app: {\"a\":{\"b\":[1,2]},\"c\":true}")
    write(out, "rfc3164", b"\x01<13>Jan  1 00:00:00 host app: bad \xff\xfe byte")

    # ndjson: [line limit / 4 (255 = default), max fields, max depth, body]
    events = [json.dumps(row).encode() for row in jsonl(SIGMA / "agreement" / "events.jsonl")]
    for start in range(0, 200, 20):
        write(out, "ndjson", b"\xff\x10\x10" + b"\n".join(events[start : start + 20]))
    write(out, "ndjson", b"\x10\x02\x02" + b"\r\n".join(events[:10]))
    write(
        out,
        "ndjson",
        b"\xff\x04\x03"
        + b"\n".join(
            [
                b'{"message":"ok","ts":"2024-01-02T03:04:05Z","host":"h","severity":5}',
                b'"bare string"',
                b'{"msg":"deep","a":{"b":{"c":{"d":{"e":1}}}}}',
                b"{not json",
                b'{"message":"bad \xff"}',
                b'{"log":"x","ts":1700000000123}',
                b"[1,2]",
                b'{"level":"info"}',
            ]
        ),
    )

    # rules: Sigma YAML as is
    for path in sorted(SIGMA.rglob("*.yml")):
        write(out, "rules", path.read_bytes())

    # query: the query text as is
    for query in [
        "",
        "error",
        '"Failed password"',
        "host:web1 AND app:sshd",
        "NOT severity:debug",
        "a OR (b AND NOT c)",
        "fields.user:alice",
        "fields.sd.exampleSDID@32473.iut:3",
        "signature:ssh-brute-force",
        'rule:"brute force"',
        "flags:parse_error",
        "peer:10.0.0.1",
        "peer:[10.0.0.0 TO 10.0.0.255]",
        "severity_code:[0 TO 3]",
        "seq:>100",
        "ts:[2024-01-01T00:00:00Z TO 2024-01-02T00:00:00Z]",
        "message:foo~2",
        "host:web*",
        "(unclosed",
        "fields.n:>=1.5",
        "+must -mustnot",
        "'single' IN [a b]",
    ]:
        write(out, "query", query.encode())


if __name__ == "__main__":
    main()
