#!/usr/bin/env python3
"""Soak run: the whole appliance at a steady fraction of its measured maximum for a long time.

1. Starts `cairn serve` (release build) on free loopback ports with a fresh data directory.
2. Measures the maximum: `cairn-loadgen --mode tcp` sends --probe-events as fast as the appliance
   takes them and reports events/s from the first byte sent until every event is searchable.
3. Soaks: `cairn-loadgen --rate FRACTION*max` for --minutes, over --connections TCP connections,
   while this script samples the appliance every --every seconds: resident memory (VmRSS), open
   file descriptors (/proc/PID/fd), threads, and /api/v1/stats (received, indexed, dropped,
   rejected, the memory budget in use, WAL segments).
4. Verdict: every event sent over TCP (no application acknowledgement, but no drop allowed either)
   is searchable exactly once -- the loadgen's search count equals N; nothing dropped; counters
   reconcile; and memory and open files are flat: the mean of the last fifth of the run against
   the mean of the second fifth (the first is warm-up) must not grow by more than --rss-slack and
   --fd-slack. Memory here is anonymous resident memory (RssAnon: heap, queues, buffers); the
   whole RSS also counts the index files the searcher maps, which grow with the index by design,
   and is printed beside it.

usage: benches/soak.py [--minutes 10] [--fraction 0.7] [--connections 2] [--every 10]
                       [--cairn target/release/cairn] [--loadgen target/release/cairn-loadgen]

Build first: cargo build --release -p cairn-api -p cairn-benches --bin cairn --bin cairn-loadgen
Prints a table of samples and a summary; exits 1 when a check fails.
"""
import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import re

# The loadgen's closing line: found/sent, and the end-to-end rate.
SEARCHABLE = re.compile(r"searchable: (\d+)/(\d+) events after [\d.]+ s: (\d+) events/s end to end")


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get_json(http, path):
    with urllib.request.urlopen(f"http://{http}{path}", timeout=10) as response:
        return json.load(response)


def proc_figures(pid):
    status = open(f"/proc/{pid}/status").read()
    fields = dict(
        line.split(":", 1) for line in status.splitlines() if ":" in line
    )
    rss_kib = int(fields["VmRSS"].split()[0])
    anon_kib = int(fields["RssAnon"].split()[0])
    threads = int(fields["Threads"].strip())
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    return rss_kib, anon_kib, fds, threads


def mean(values):
    return sum(values) / len(values) if values else 0.0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--fraction", type=float, default=0.7)
    parser.add_argument("--connections", type=int, default=2)
    parser.add_argument("--every", type=float, default=10.0)
    parser.add_argument("--probe-events", type=int, default=1_000_000)
    parser.add_argument("--cairn", default="target/release/cairn")
    parser.add_argument("--loadgen", default="target/release/cairn-loadgen")
    parser.add_argument("--rss-slack", type=float, default=0.15,
                        help="allowed relative RSS growth, late vs early (default 0.15)")
    parser.add_argument("--fd-slack", type=int, default=16,
                        help="allowed growth in open files, late vs early (default 16)")
    parser.add_argument("--keep", action="store_true", help="keep the data directory")
    args = parser.parse_args()

    data = tempfile.mkdtemp(prefix="cairn-soak-")
    http = f"127.0.0.1:{free_port()}"
    tcp = f"127.0.0.1:{free_port()}"
    log = open(os.path.join(data, "cairn.log"), "wb")
    cairn = subprocess.Popen(
        [args.cairn, "serve", "--data-dir", os.path.join(data, "data"), "--http", http,
         "--syslog-tcp", tcp, "--syslog-udp", "off"],
        stdout=subprocess.DEVNULL, stderr=log,
    )
    failures = []
    try:
        deadline = time.time() + 60
        while True:
            try:
                urllib.request.urlopen(f"http://{http}/readyz", timeout=2)
                break
            except OSError:
                if time.time() > deadline or cairn.poll() is not None:
                    sys.exit("cairn did not become ready; see " + log.name)
                time.sleep(0.2)

        loadgen = [args.loadgen, "--mode", "tcp", "--http", http, "--syslog-tcp", tcp,
                   "--pid", str(cairn.pid), "-c", str(args.connections)]
        probe = subprocess.run(loadgen + ["-n", str(args.probe_events), "--timeout", "600"],
                               capture_output=True, text=True)
        print(probe.stdout + probe.stderr)
        maximum = None
        for found, sent, eps in SEARCHABLE.findall(probe.stdout):
            if found == sent:
                maximum = float(eps)
        if not maximum:
            sys.exit("could not read the end-to-end rate from the probe run")
        rate = maximum * args.fraction
        seconds = args.minutes * 60
        events = int(rate * seconds)
        print(f"maximum {maximum:,.0f} events/s end to end; soaking at {rate:,.0f} events/s "
              f"({args.fraction:.0%}) for {args.minutes:g} min = {events:,} events")

        soak = subprocess.Popen(
            loadgen + ["-n", str(events), "--rate", str(rate),
                       "--timeout", str(int(seconds * 2 + 300))],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        samples = []
        start = time.time()
        header = f"{'t_s':>6} {'rss_mib':>8} {'anon_mib':>8} {'fds':>5} {'thr':>4} {'received':>11} {'indexed':>11} {'dropped':>8} {'mem_mib':>8} {'in_flight':>9}"
        print(header)
        while soak.poll() is None:
            time.sleep(args.every)
            try:
                rss, anon, fds, threads = proc_figures(cairn.pid)
                stats = get_json(http, "/api/v1/stats")
            except (OSError, ValueError, KeyError) as error:
                failures.append(f"sampling failed: {error}")
                break
            sample = {
                "t": time.time() - start,
                "rss_mib": rss / 1024,
                "anon_mib": anon / 1024,
                "fds": fds,
                "threads": threads,
                "received": stats["received"],
                "indexed": stats["indexed"],
                "dropped": stats["dropped_total"],
                "memory_mib": stats["queues"]["memory_bytes"] / 1048576,
                "in_flight": stats["reconcile"]["in_flight"],
            }
            samples.append(sample)
            print(f"{sample['t']:6.0f} {sample['rss_mib']:8.1f} {sample['anon_mib']:8.1f} {fds:5d} {threads:4d} "
                  f"{sample['received']:11,d} {sample['indexed']:11,d} {sample['dropped']:8d} "
                  f"{sample['memory_mib']:8.1f} {sample['in_flight']:9,d}", flush=True)
        output = soak.stdout.read()
        print(output)
        if soak.returncode != 0:
            failures.append(f"loadgen exited {soak.returncode}")
        outcome = SEARCHABLE.findall(output)
        if not outcome or outcome[-1][0] != outcome[-1][1]:
            failures.append(f"not every event sent is searchable exactly once: {outcome}")

        final = get_json(http, "/api/v1/stats")
        if final["dropped_total"] != 0:
            failures.append(f"dropped {final['dropped']}")
        if final["reconcile"]["in_flight"] != 0:
            failures.append(f"counters do not reconcile: {final['reconcile']}")

        fifth = max(1, len(samples) // 5)
        early = samples[fifth:2 * fifth]
        late = samples[-fifth:]
        early_rss, late_rss = mean([s["anon_mib"] for s in early]), mean([s["anon_mib"] for s in late])
        early_fds, late_fds = mean([s["fds"] for s in early]), mean([s["fds"] for s in late])
        print(f"RSS (all): early {mean([s['rss_mib'] for s in early]):.1f} MiB, "
              f"late {mean([s['rss_mib'] for s in late]):.1f} MiB, "
              f"max {max(s['rss_mib'] for s in samples):.1f} MiB (includes the index files "
              "the searcher maps, which grow with the index)")
        print(f"anonymous memory (heap): early {early_rss:.1f} MiB, late {late_rss:.1f} MiB "
              f"({(late_rss / early_rss - 1) * 100 if early_rss else 0:+.1f}%), "
              f"max {max(s['anon_mib'] for s in samples):.1f} MiB")
        print(f"open files: early {early_fds:.1f}, late {late_fds:.1f}, "
              f"max {max(s['fds'] for s in samples)}")
        if early_rss and late_rss > early_rss * (1 + args.rss_slack):
            failures.append(f"anonymous memory grew from {early_rss:.1f} to {late_rss:.1f} MiB")
        if late_fds > early_fds + args.fd_slack:
            failures.append(f"open files grew from {early_fds:.1f} to {late_fds:.1f}")
    finally:
        cairn.send_signal(signal.SIGTERM)
        try:
            cairn.wait(timeout=60)
        except subprocess.TimeoutExpired:
            cairn.kill()
        if not args.keep:
            shutil.rmtree(data, ignore_errors=True)

    if failures:
        print("SOAK FAILED:\n  " + "\n  ".join(failures))
        sys.exit(1)
    print("SOAK PASSED")


if __name__ == "__main__":
    main()
