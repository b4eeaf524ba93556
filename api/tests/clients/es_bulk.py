#!/usr/bin/env python3
"""Drives the official Elasticsearch Python client against Cairn, as a user would.

usage: es_bulk.py URL MARKER GOOD_COUNT
Checks the node (GET /), sends GOOD_COUNT good documents and two bad ones with helpers.bulk
into `logs-test`, then GOOD_COUNT documents with helpers.bulk(index=…) (PUT /{index}/_bulk).
Prints one JSON object: the node info and each bulk call's (ok, errors).
"""
import json
import sys

from elasticsearch import Elasticsearch, helpers

url, marker, good = sys.argv[1], sys.argv[2], int(sys.argv[3])
es = Elasticsearch(url, request_timeout=10, max_retries=0)
info = es.info()


def good_doc(i, prefix):
    return {
        "@timestamp": "2024-05-01T12:00:%02dZ" % (i % 60),
        "host": {"name": "web%d" % i},
        "service": {"name": "shop"},
        "log": {"level": "error"},
        "user": {"name": "alice", "id": i},
        "message": "%s%s item %d payment failed" % (prefix, marker, i),
    }


actions = [{"_index": "logs-test", "_source": good_doc(i, "a")} for i in range(good)]
# A bad item in the middle: Elasticsearch refuses a date it cannot parse.
actions.insert(good // 2, {"_index": "logs-test", "_source": {"@timestamp": "not a date", "message": "bad" + marker}})
# And a document that is not an object.
actions.append({"_index": "logs-test", "_source": [1, 2, 3]})
ok, errors = helpers.bulk(es, actions, raise_on_error=False, chunk_size=500)

# The index from the path, the documents without _index.
path_actions = ({"_source": good_doc(i, "b")} for i in range(good))
path_ok, path_errors = helpers.bulk(es, path_actions, index="logs-path", raise_on_error=False)

print(json.dumps({
    "info": dict(info),
    "ok": ok,
    "errors": errors,
    "path_ok": path_ok,
    "path_errors": path_errors,
}))
