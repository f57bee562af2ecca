"""Print the answers each API operation got in a schemathesis run (from its HAR report), and the
operations that never got a 2xx/3xx answer, e.g. only 404s for want of a real opportunity
(scripts/schemathesis_run.sh).

    python scripts/schemathesis_summary.py <schema.json> <run.har>
"""

from __future__ import annotations

import json
import re
import sys
from collections import Counter, defaultdict
from urllib.parse import urlsplit


def main(schema_path: str, har_path: str) -> None:
    with open(schema_path) as schema_file:
        schema = json.load(schema_file)
    with open(har_path) as har_file:
        entries = json.load(har_file)["log"]["entries"]
    operations = []
    for path, item in schema["paths"].items():
        pattern = re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", path.rstrip("/")) + "/?$")
        for method in item:
            if method in {"get", "put", "post", "patch", "delete"}:
                operations.append((pattern, method.upper(), f"{method.upper()} {path}"))
    statuses: dict[str, Counter[int]] = defaultdict(Counter)
    for entry in entries:
        path = urlsplit(entry["request"]["url"]).path
        for pattern, method, name in operations:
            if method == entry["request"]["method"] and pattern.match(path):
                statuses[name][entry["response"]["status"]] += 1
                break
    print("schemathesis: answers per operation")
    for _, _, name in operations:
        counts = statuses.get(name, Counter())
        print(f"  {name}: " + (", ".join(f"{code}x{n}" for code, n in sorted(counts.items())) or "no calls"))
    never_ok = [name for _, _, name in operations if not any(200 <= code < 400 for code in statuses.get(name, {}))]
    print(f"schemathesis: {len(never_ok)} of {len(operations)} operations never got a 2xx/3xx answer: {never_ok}")


if __name__ == "__main__":
    main(*sys.argv[1:3])
