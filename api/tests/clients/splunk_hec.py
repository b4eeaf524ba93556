#!/usr/bin/env python3
"""Drives the PyPI Splunk HEC logging handlers against Cairn, as a user would.

usage: splunk_hec.py PORT TOKEN MARKER COUNT
1. splunk-handler (`splunk_handler.SplunkHandler`): COUNT records through its background timer
   thread, which batches them into concatenated JSON events on /services/collector/event;
2. splunk-hec-handler (`splunk_hec_handler.SplunkHecHandler`): COUNT dict records (an object
   event with `fields`);
3. splunk-hec-handler with a wrong token: the HTTP error it raises.
Prints one JSON object with what the handlers reported.
"""
import json
import logging
import sys

import requests
from splunk_handler import SplunkHandler
from splunk_hec_handler import SplunkHecHandler

port, token, marker, count = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
report = {}

# 1. splunk-handler: asynchronous, batched by its timer thread.
batched = SplunkHandler(host="127.0.0.1", port=port, protocol="http", token=token, index="main",
                        sourcetype="handler-type", verify=False, flush_interval=0.2,
                        force_keep_ahead=True, debug=False, retry_count=3, retry_backoff=0.5)
log1 = logging.getLogger("cairn-hec-batched")
log1.propagate = False
log1.addHandler(batched)
log1.setLevel(logging.INFO)
for i in range(count):
    log1.warning("sshd[%d]: Failed password for root from 203.0.113.%d port 22 ssh2 a%s", i, i, marker)
batched.close()  # flushes what is queued

# 2. splunk-hec-handler: one request per record, an object event with fields.
direct = SplunkHecHandler("127.0.0.1", token, port=port, proto="http", ssl_verify=False,
                          source="peer-app", sourcetype="_json", index="ops")
log2 = logging.getLogger("cairn-hec-direct")
log2.propagate = False
log2.addHandler(direct)
log2.setLevel(logging.INFO)
for i in range(count):
    log2.error({"message": "sudo: alice : COMMAND=/bin/ls b%s %d" % (marker, i),
                "fields": {"region": "eu-west", "attempt": i}})

# 3. a wrong token: the handler raises the HTTP error of the refusal.
wrong = SplunkHecHandler("127.0.0.1", "not-" + token, port=port, proto="http", ssl_verify=False)
log3 = logging.getLogger("cairn-hec-wrong")
log3.propagate = False
log3.addHandler(wrong)
try:
    log3.error({"message": "wrong token c%s" % marker})
    report["wrong_token"] = None
except requests.exceptions.HTTPError as error:
    report["wrong_token"] = {"status": error.response.status_code, "body": error.response.json()}

print(json.dumps(report))
