"""schemathesis hooks for `.ci/run`: how to send the bodies schemathesis cannot serialise itself.

NDJSON (`POST /api/v1/ingest`, the Elasticsearch `_bulk` routes) is described as a string, since
JSON Schema cannot describe one JSON document per line: send the generated string as is, as for
text/plain (out-of-schema values from negative tests go as their JSON text).
"""

import schemathesis

schemathesis.serializer.alias(
    ["application/x-ndjson", "application/vnd.elasticsearch+x-ndjson"], "text/plain"
)
