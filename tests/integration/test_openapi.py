"""docs/openapi.yaml parses, and documents every route of the route table (gateway/http/
http_api.c) with its method, and no route the table lacks: the reference says what is served."""
import os
import re

import yaml

from gwtest import Checks

c = Checks("openapi")
top = os.path.join(os.path.dirname(__file__), "../..")
with open(os.path.join(top, "docs/openapi.yaml")) as f:
    doc = yaml.safe_load(f)
c.check(isinstance(doc, dict) and "paths" in doc, "openapi.yaml parses and has paths")

with open(os.path.join(top, "gateway/http/http_api.c")) as f:
    src = f.read()
table = re.findall(r'\{"(GET|POST|PUT|PATCH|DELETE)",\s*"(/[^"]*)"', src)
c.check(len(table) > 30, "the route table was read (%d routes)" % len(table))


def shape(path):
    """A path with every parameter replaced by one marker, to compare the two notations (a
    string segment of the table, {s}, takes a suffix such as the feed's ".ics" with it)."""
    return re.sub(r"\{[^}]+\}(\.[a-z]+)?", "{}", path)


served = {(m.lower(), shape(p)) for m, p in table}
documented = set()
for path, ops in doc["paths"].items():
    for m in ops:
        if m in ("get", "post", "put", "patch", "delete"):
            documented.add((m, shape(path)))
# the table's catch-all booking action is documented as one path per action
acts = {(m, p) for m, p in documented if re.fullmatch(r"/v1/orgs/\{\}/bookings/\{\}/[a-z-]+", p)
        and m == "post" and not p.endswith("/notes")}
if acts:
    documented -= acts
    documented.add(("post", "/v1/orgs/{}/bookings/{}/{}"))
c.eq(sorted(served - documented), [], "every served route is documented")
c.eq(sorted(documented - served), [], "every documented route is served")
c.done()
