"""oaschema.py -- check a response against the API's OpenAPI document
(docs/openapi.json): the subset of JSON Schema the document uses (type, also
as a list; properties; required; items; enum; oneOf; $ref; minimum, maximum;
minLength; additionalProperties false).

    from oaschema import OpenAPI
    api = OpenAPI()                         # reads docs/openapi.json
    problems = api.check("POST", "/api/v1/chat", 200, body_bytes, content_type)
    # [] when the status is documented for the route and the body matches
"""
import json
import os
import re

from ingen import SRCDIR

TYPES = {"object": dict, "array": list, "string": str, "boolean": bool, "null": type(None)}


class OpenAPI:
    def __init__(self, path=None):
        with open(path or os.path.join(SRCDIR, "docs", "openapi.json")) as f:
            self.doc = json.load(f)
        self.routes = []
        for p, item in self.doc["paths"].items():
            rx = re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", p) + "$")
            self.routes.append((rx, p, item))

    def resolve(self, s):
        while isinstance(s, dict) and "$ref" in s:
            node = self.doc
            for k in s["$ref"].split("/")[1:]:
                node = node[k]
            s = node
        return s

    def validate(self, value, schema, where="$"):
        s = self.resolve(schema)
        out = []
        if "oneOf" in s:
            if not any(not self.validate(value, alt, where) for alt in s["oneOf"]):
                out.append("%s: matches none of oneOf" % where)
            return out
        types = s.get("type")
        if types is not None:
            types = types if isinstance(types, list) else [types]
            ok = False
            for ty in types:
                if ty == "integer":
                    ok = ok or (isinstance(value, int) and not isinstance(value, bool))
                elif ty == "number":
                    ok = ok or (isinstance(value, (int, float)) and not isinstance(value, bool))
                elif ty == "boolean":
                    ok = ok or isinstance(value, bool)
                else:
                    ok = ok or isinstance(value, TYPES[ty])
            if not ok:
                return ["%s: %r is not of type %s" % (where, value, types)]
        if "enum" in s and value not in s["enum"]:
            out.append("%s: %r not in %s" % (where, value, s["enum"]))
        if isinstance(value, str) and len(value) < s.get("minLength", 0):
            out.append("%s: shorter than %d" % (where, s["minLength"]))
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if "minimum" in s and value < s["minimum"]:
                out.append("%s: below %s" % (where, s["minimum"]))
            if "maximum" in s and value > s["maximum"]:
                out.append("%s: above %s" % (where, s["maximum"]))
        if isinstance(value, dict):
            for k in s.get("required", []):
                if k not in value:
                    out.append("%s: %s is required" % (where, k))
            props = s.get("properties", {})
            for k, v in value.items():
                if k in props:
                    out += self.validate(v, props[k], "%s.%s" % (where, k))
                elif s.get("additionalProperties") is False:
                    out.append("%s: %s is not allowed" % (where, k))
        if isinstance(value, list) and "items" in s:
            for i, v in enumerate(value):
                out += self.validate(v, s["items"], "%s[%d]" % (where, i))
        return out

    def operation(self, method, path):
        path = path.split("?")[0]
        for rx, p, item in self.routes:
            if rx.match(path):
                return p, item.get(method.lower())
        return None, None

    def check(self, method, path, status, body, content_type="application/json"):
        p, op = self.operation(method, path)
        if op is None:
            return ["%s %s is not in the document" % (method, path)]
        r = op["responses"].get(str(status)) or op["responses"].get("%dXX" % (status // 100))
        if r is None:
            return ["%s %s: status %s is not documented (%s)" % (method, p, status,
                                                                 sorted(op["responses"]))]
        r = self.resolve(r)
        if "content" not in r:
            return []
        ctype = (content_type or "").split(";")[0].strip()
        if ctype not in r["content"]:
            return ["%s %s %s: content type %r, documented %s" % (method, p, status, ctype,
                                                               sorted(r["content"]))]
        if ctype != "application/json":
            return []
        try:
            value = json.loads(body)
        except ValueError as ex:
            return ["%s %s %s: not JSON (%s)" % (method, p, status, ex)]
        return ["%s %s %s: %s" % (method, p, status, x)
                for x in self.validate(value, r["content"][ctype]["schema"])]
