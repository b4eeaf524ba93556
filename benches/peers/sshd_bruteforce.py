#!/usr/bin/env python3
"""Side-by-side correlation benchmark: Cairn `replay` against SEC and syslog-ng on one file.

The rule: >= 5 sshd "Failed password" from one source IP within 60 s (event time) -> one alert,
then that IP's window resets. The input is the peers' generator output (an auth.log-style file,
RFC 3164 without PRI, with decoys and slow bursts); with N = 1,000,000 and seed 42 the right
answer is 12,548 alerts.

usage: benches/peers/sshd_bruteforce.py [--lines N] [--runs R] [--peers DIR] [--cairn BIN] [--rsigma BIN]
  --peers   the folder holding bench/ and clients/ (the peers kit; default ../shared/peers)
  --cairn   the cairn binary (default target/release/cairn; build it with
            `cargo build --release -p cairn-api`)
  --rsigma  the rsigma 0.23 binary (default /tmp/cairn-peers/cargo/bin/rsigma, skipped if absent).
            rsigma reads JSON events with the fields already extracted: the file is converted
            once with the kit's bench/to_ndjson.py, outside the timing, so rsigma is timed on
            less work than the others (no parsing, no extraction).

Each engine runs R times on the same file in this one run (the machines are shared and noisy;
compare ratios, not absolute figures). Prints one table: engine, alerts, best and median wall
time, lines/s, peak RSS, and the ratio of Cairn's lines/s to each peer's.
"""
import argparse
import os
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile


def timed(cmd, stdin_path=None, stdout_path=None):
    """Runs cmd under /usr/bin/time; returns (seconds, peak RSS KiB)."""
    stdin = open(stdin_path, "rb") if stdin_path else subprocess.DEVNULL
    stdout = open(stdout_path, "wb") if stdout_path else subprocess.DEVNULL
    try:
        proc = subprocess.run(
            ["/usr/bin/time", "-f", "TIME %e %M"] + cmd,
            stdin=stdin,
            stdout=stdout,
            stderr=subprocess.PIPE,
            check=False,
        )
    finally:
        if stdin_path:
            stdin.close()
        if stdout_path:
            stdout.close()
    err = proc.stderr.decode(errors="replace")
    found = re.findall(r"TIME ([0-9.]+) ([0-9]+)", err)
    if proc.returncode != 0 or not found:
        sys.exit(f"{cmd[0]} failed ({proc.returncode}):\n{err[-2000:]}")
    seconds, rss = found[-1]
    return float(seconds), int(rss)


def count_lines(path):
    with open(path, "rb") as f:
        return sum(1 for _ in f)


def count_correlation_alerts(path):
    """rsigma also prints the referenced detection rule's matches (despite --no-detections,
    in 0.23); its correlation alerts are the lines with a correlation_type."""
    with open(path, "rb") as f:
        return sum(1 for line in f if b'"correlation_type"' in line)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--peers", default="../shared/peers")
    ap.add_argument("--cairn", default="target/release/cairn")
    ap.add_argument("--year", default="2026")
    ap.add_argument("--rsigma", default="/tmp/cairn-peers/cargo/bin/rsigma")
    args = ap.parse_args()

    peers = os.path.abspath(args.peers)
    work = tempfile.mkdtemp(prefix="cairn-sshd-bench-")
    log = os.path.join(work, "sshd.log")
    subprocess.run(
        [sys.executable, f"{peers}/bench/gen_sshd_bench.py", str(args.lines), log, "42"],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    rule = f"{peers}/clients/sshd_bruteforce_correlation.yml"

    engines = {}

    def cairn_run(i):
        out = os.path.join(work, "cairn.alerts")
        cmd = [args.cairn, "replay", "--year", args.year, "--rules", rule, log]
        t, rss = timed(cmd, stdout_path=out)
        return t, rss, out

    def sec_run(i):
        out = os.path.join(work, f"sec.alerts")
        if os.path.exists(out):
            os.remove(out)
        conf = os.path.join(work, "sec.conf")
        with open(f"{peers}/bench/sec_eventtime.conf") as src, open(conf, "w") as dst:
            dst.write(src.read().replace("ALERTS_FILE", out))
        cmd = ["sec", f"--conf={conf}", f"--input={log}", "--notail", "--fromstart",
               "--nodetach", "--log=/dev/null"]
        t, rss = timed(cmd)
        return t, rss, out

    def syslog_ng_run(i):
        out = os.path.join(work, "syslog-ng.alerts")
        if os.path.exists(out):
            os.remove(out)
        conf = os.path.join(work, "syslog-ng.conf")
        with open(f"{peers}/bench/syslog-ng-bruteforce.conf") as src, open(conf, "w") as dst:
            dst.write(src.read().replace("ALERTS_FILE", out))
        state = os.path.join(work, f"sng{i}")
        os.makedirs(state, exist_ok=True)
        # syslog-ng's stdin() source needs a pipe (it cannot poll a regular file).
        pipeline = (f"cat {shlex.quote(log)} | syslog-ng -F --no-caps -f {shlex.quote(conf)} "
                    f"--persist-file={shlex.quote(state)}/persist --pidfile={shlex.quote(state)}/pid "
                    f"--control={shlex.quote(state)}/ctl")
        t, rss = timed(["bash", "-c", pipeline])
        return t, rss, out

    def rsigma_run(i):
        events = os.path.join(work, "events.ndjson")
        if not os.path.exists(events):
            subprocess.run(
                [sys.executable, f"{peers}/bench/to_ndjson.py", log, events, args.year],
                check=True,
                stdout=subprocess.DEVNULL,
            )
        out = os.path.join(work, "rsigma.alerts")
        cmd = [args.rsigma, "engine", "eval", "-r", rule, "--timestamp-field", "timestamp",
               "--action", "reset", "--no-detections"]
        t, rss = timed(cmd, stdin_path=events, stdout_path=out)
        return t, rss, out

    runners = [("cairn replay", cairn_run)]
    if os.access(args.rsigma, os.X_OK):
        runners.append(("rsigma 0.23 (pre-parsed)", rsigma_run))
    if shutil.which("sec"):
        runners.append(("SEC 2.9 (event time)", sec_run))
    if shutil.which("syslog-ng"):
        runners.append(("syslog-ng grouping-by", syslog_ng_run))

    lines = count_lines(log)
    for i in range(args.runs):
        for name, run in runners:
            t, rss, out = run(i)
            if not os.path.exists(out):
                alerts = 0
            elif name.startswith("rsigma"):
                alerts = count_correlation_alerts(out)
            else:
                alerts = count_lines(out)
            engines.setdefault(name, {"times": [], "rss": 0, "alerts": alerts})
            engines[name]["times"].append(t)
            engines[name]["rss"] = max(engines[name]["rss"], rss)
            engines[name]["alerts"] = alerts

    print(f"input: {lines} lines ({os.path.getsize(log) / 1e6:.1f} MB), {args.runs} runs each")
    print(f"{'engine':<24} {'alerts':>7} {'best s':>7} {'median s':>9} {'lines/s':>11} {'peak RSS':>9}")
    rates = {}
    for name, e in engines.items():
        best = min(e["times"])
        rates[name] = lines / best if best > 0 else float("inf")
        print(f"{name:<24} {e['alerts']:>7} {best:>7.2f} {statistics.median(e['times']):>9.2f} "
              f"{rates[name]:>11,.0f} {e['rss'] / 1024:>7.0f}MiB")
    cairn = rates.get("cairn replay")
    for name, rate in rates.items():
        if name != "cairn replay" and cairn:
            print(f"cairn / {name}: {cairn / rate:.1f}x lines/s")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
