"""Check HTTP responses against the bundled OpenAPI 3.1 contract (openapi/build/*.yaml).

Only the standard library, PyYAML and jsonschema (Debian's python3-yaml and python3-jsonschema
4.10) are used. OpenAPI 3.1 schemas are JSON Schema 2020-12, so bodies are checked with
Draft202012Validator; `$ref`s into `#/components/...` resolve against the whole bundled file.

    from bligate_dev.contract import Contract, ContractError

    contract = Contract.from_repo()            # openapi/build/openapi.yaml + internal.yaml
    # or Contract("openapi/build/openapi.yaml", "openapi/build/internal.yaml")
    body = contract.validate("GET", "/v1/units?limit=5", 200, resp.headers, resp.content)
    contract.check(resp)                       # the same for a requests.Response
    ...
    print(contract.report_unexercised())       # documented operations no test called

`validate` raises ContractError (an AssertionError, so pytest reports it as a failure) when:
- the path matches no documented path template (405 and 414 excepted: see below);
- the method is not documented on that path (unless the answer is a 405 problem);
- the status is not documented for the operation (exact, `4XX` range, or `default`);
- a required documented header is missing, or a documented header's value does not match
  its schema (Retry-After an integer, Cache-Control containing no-store, ...);
- the response has a body where none is documented, or none where one is, or its
  Content-Type is not a documented media type;
- a JSON body is not valid JSON (duplicate keys included) or does not match the schema;
- a problem body (application/problem+json) is inconsistent: `status` differs from the HTTP
  status, `code` is not in the response's `x-problem-codes`, the code is not in the
  registry (`x-problem-registry`) or is registered with another status, `type` is not
  `.../problems/<code>`, `request_id` differs from X-Request-Id, or `instance` is not the
  request path.

Any documented path may also answer 405 (validated against
`components/responses/MethodNotAllowed`), and any request 414 (`.../UriTooLong`).

Every validated call is recorded as (METHOD, path template, status); `report_unexercised()`
lists documented operations never called and `unexercised_responses()` the documented
(operation, status) pairs never seen.
"""

import json
import os
import re
import threading
import urllib.parse

import jsonschema
import yaml

__all__ = ["Contract", "ContractError"]

HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


class ContractError(AssertionError):
    """A response that the contract does not allow."""


# ---------- loading ----------


class _Loader(yaml.SafeLoader):
    """SafeLoader that keeps timestamps as strings (examples stay JSON-like)."""


_Loader.yaml_implicit_resolvers = {
    k: [(tag, rx) for tag, rx in v if tag != "tag:yaml.org,2002:timestamp"]
    for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _load_yaml(path):
    with open(path, encoding="utf-8") as f:
        doc = yaml.load(f, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    if not isinstance(doc, dict) or not str(doc.get("openapi", "")).startswith("3.1"):
        raise ValueError(f"{path}: not an OpenAPI 3.1 document")
    return doc


def _pointer(doc, ref, where):
    if not ref.startswith("#/"):
        raise ValueError(f"{where}: only local $refs are supported in a bundled file, got {ref!r}")
    node = doc
    for part in ref[2:].split("/"):
        part = urllib.parse.unquote(part).replace("~1", "/").replace("~0", "~")
        if isinstance(node, list):
            node = node[int(part)]
        elif isinstance(node, dict) and part in node:
            node = node[part]
        else:
            raise ValueError(f"{where}: unresolvable $ref {ref!r}")
    return node


def _deref(doc, node, where):
    """Follows $ref chains of non-schema objects (responses, headers, parameters, path items)."""
    seen = 0
    while isinstance(node, dict) and "$ref" in node:
        node = _pointer(doc, node["$ref"], where)
        seen += 1
        if seen > 32:
            raise ValueError(f"{where}: $ref loop")
    return node


# ---------- formats (jsonschema 4.10 needs optional packages for some; these need none) ----------

_DATE_TIME = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-](\d{2}):(\d{2}))$")
_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def _valid_date(y, m, d):
    import datetime

    try:
        datetime.date(int(y), int(m), int(d))
        return True
    except ValueError:
        return False


def _format_checker():
    fc = jsonschema.FormatChecker(formats=())

    @fc.checks("date-time")
    def _dt(v):
        if not isinstance(v, str):
            return True
        m = _DATE_TIME.match(v)
        return bool(m) and _valid_date(*m.group(1, 2, 3)) and int(m.group(4)) < 24 and int(m.group(5)) < 60 \
            and int(m.group(6)) < 61

    @fc.checks("date")
    def _d(v):
        if not isinstance(v, str):
            return True
        m = _DATE.match(v)
        return bool(m) and _valid_date(*m.groups())

    @fc.checks("uuid")
    def _u(v):
        return not isinstance(v, str) or bool(_UUID.match(v))

    @fc.checks("uri")
    def _uri(v):
        if not isinstance(v, str):
            return True
        p = urllib.parse.urlsplit(v)
        return bool(p.scheme) and not any(c.isspace() for c in v)

    @fc.checks("uri-reference")
    def _uriref(v):
        return not isinstance(v, str) or not any(c.isspace() for c in v)

    @fc.checks("email")
    def _email(v):
        return not isinstance(v, str) or ("@" in v and " " not in v)

    return fc


_FORMATS = _format_checker()


# ---------- helpers ----------


def _header_dict(headers):
    """Case-insensitive view (lower-case names) of dict / requests headers / list of pairs / HTTPMessage."""
    out = {}
    if headers is None:
        return out
    items = headers.items() if hasattr(headers, "items") else headers
    for k, v in items:
        k = str(k).lower()
        out[k] = f"{out[k]}, {v}" if k in out else str(v)
    return out


def _media_type(ct):
    return ct.split(";", 1)[0].strip().lower() if ct else ""


def _media_matches(pattern, actual):
    pattern = _media_type(pattern)
    if pattern in ("*/*", actual):
        return True
    if pattern.endswith("/*"):
        return actual.split("/", 1)[0] == pattern[:-2]
    return False


def _is_json(mt):
    return mt == "application/json" or mt.endswith("+json")


def strict_loads(raw):
    """json.loads refusing what a strict reader refuses (JSON_REJECT_DUPLICATES in jansson): a
    duplicate key, which json.loads settles by keeping the last, and NaN or Infinity
    (ValueError)."""
    def pairs(kv):
        d = {}
        for k, v in kv:
            if k in d:
                raise ValueError(f"duplicate key {k!r}")
            d[k] = v
        return d

    def const(name):
        raise ValueError(f"{name} is not JSON")

    return json.loads(raw, object_pairs_hook=pairs, parse_constant=const)


def _json_path(path):
    s = "$"
    for p in path:
        s += f"[{p}]" if isinstance(p, int) else f".{p}"
    return s


def _short(v, n=120):
    s = json.dumps(v, ensure_ascii=False) if not isinstance(v, str) else repr(v)
    return s if len(s) <= n else s[: n - 3] + "..."


class _Op:
    __slots__ = ("doc", "doc_path", "method", "template", "op", "regex", "literal_len", "nparams")

    def __init__(self, doc, doc_path, method, template, op):
        self.doc, self.doc_path, self.method, self.template, self.op = doc, doc_path, method, template, op
        parts = re.split(r"(\{[^}/]+\})", template)
        rx = "".join("[^/]+" if p.startswith("{") and p.endswith("}") else re.escape(p) for p in parts)
        self.regex = re.compile("^" + rx + "$")
        self.nparams = sum(1 for p in parts if p.startswith("{") and p.endswith("}"))
        self.literal_len = len(re.sub(r"\{[^}/]+\}", "", template))


class Contract:
    """The contract of one or more bundled OpenAPI 3.1 files (public and internal)."""

    def __init__(self, *paths):
        if len(paths) == 1 and isinstance(paths[0], (list, tuple)):
            paths = tuple(paths[0])
        if not paths:
            raise ValueError("Contract needs at least one bundled OpenAPI file")
        self.docs = []  # (path, doc)
        self._ops = []  # list of _Op
        self._templates = {}  # template -> {method: _Op}
        self._registry = {}  # code -> status
        self._validators = {}
        self._lock = threading.Lock()
        self.exercised = set()  # (METHOD, template, status:int)
        for p in paths:
            self._add(os.fspath(p))
        # Most specific first: literal paths beat templated ones (OpenAPI rule), then longer literals.
        self._ops.sort(key=lambda o: (o.nparams, -o.literal_len))

    @classmethod
    def from_repo(cls, root=None):
        """openapi/build/openapi.yaml, internal.yaml and bli-sandbox.yaml of the repository (run
        scripts/openapi-build first)."""
        if root is None:
            root = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
        build = os.path.join(root, "openapi", "build")
        files = [os.path.join(build, n) for n in ("openapi.yaml", "internal.yaml", "bli-sandbox.yaml")]
        missing = [f for f in files if not os.path.exists(f)]
        if missing:
            raise FileNotFoundError(f"{', '.join(missing)} missing: run scripts/openapi-build")
        return cls(*files)

    def _add(self, path):
        doc = _load_yaml(path)
        self.docs.append((path, doc))
        for code, entry in (doc.get("x-problem-registry") or {}).items():
            self._registry[str(code)] = int(entry["status"]) if isinstance(entry, dict) else int(entry)
        for template, item in (doc.get("paths") or {}).items():
            item = _deref(doc, item, f"{path}: paths.{template}")
            for method in HTTP_METHODS:
                if method in item:
                    if template in self._templates and method.upper() in self._templates[template]:
                        continue  # first document wins
                    op = _Op(doc, path, method.upper(), template, item[method])
                    self._ops.append(op)
                    self._templates.setdefault(template, {})[method.upper()] = op

    # ---------- public API ----------

    def operations(self):
        """Every documented (METHOD, path template), sorted."""
        return sorted((o.method, o.template) for o in self._ops)

    def match(self, method, url_path):
        """(template, _Op or None) for a request; template None when no documented path matches."""
        path = self._path_only(url_path)
        method = method.upper()
        template = None
        for o in self._ops:
            if o.regex.match(path):
                if template is None:
                    template = o.template
                if o.template == template and o.method == method:
                    return template, o
        return template, None

    def validate(self, method, url_path, status, headers, body_bytes):
        """Checks one response; returns the parsed JSON body (or None). Raises ContractError."""
        method = method.upper()
        status = int(status)
        path = self._path_only(url_path)
        hdrs = _header_dict(headers)
        template, op = self.match(method, path)
        where = f"{method} {path} -> {status}"

        if op is None:
            glob = None
            if status == 414:
                glob = self._global_response("UriTooLong")
            elif status == 405 and template is not None:
                glob = self._global_response("MethodNotAllowed")
            if glob is None:
                if template is None:
                    raise ContractError(f"{where}: undocumented path (no path template matches {path!r})")
                documented = ", ".join(sorted(self._templates.get(template, {})))
                raise ContractError(f"{where}: {method} is not documented on {template} (documented: {documented})")
            doc, response = glob
            key = f"{method} {template or path} (any path)"
            self._record(method, template or "(any path)", status)
            return self._check_response(doc, response, key, path, status, hdrs, body_bytes)

        where = f"{method} {op.template} -> {status} ({path})"
        responses = op.op.get("responses") or {}
        response = None
        for key in (str(status), f"{str(status)[0]}XX", f"{str(status)[0]}xx", "default"):
            if key in responses:
                response = responses[key]
                break
        if response is None:
            if status == 405:
                g = self._global_response("MethodNotAllowed", op.doc)
                response = g[1] if g else None
            elif status == 414:
                g = self._global_response("UriTooLong", op.doc)
                response = g[1] if g else None
        if response is None:
            documented = ", ".join(sorted(str(k) for k in responses))
            raise ContractError(f"{where}: status {status} is not documented (documented: {documented})")
        self._record(method, op.template, status)
        return self._check_response(op.doc, response, where, path, status, hdrs, body_bytes)

    def check(self, response):
        """validate() for a requests.Response (or anything with .request.method, .url, .status_code,
        .headers and .content); returns the parsed JSON body or None."""
        req = response.request
        url = getattr(req, "path_url", None) or getattr(req, "url", None) or response.url
        return self.validate(req.method, url, response.status_code, response.headers, response.content)

    def validate_problem(self, status, headers, body_bytes, path=None, codes=None):
        """Checks a problem response that no operation documents (for example a 404 for an unrouted
        path): common headers, the Problem schema, the registry, and `codes` when given."""
        for path_, doc in self.docs:
            schemas = (doc.get("components") or {}).get("schemas") or {}
            if "Problem" in schemas:
                response = {
                    "headers": {k: {"$ref": f"#/components/headers/{k}"} for k in
                                ("X-Request-Id", "Cache-Control", "X-Content-Type-Options")
                                if k in ((doc.get("components") or {}).get("headers") or {})},
                    "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
                }
                if codes is not None:
                    response["x-problem-codes"] = list(codes)
                return self._check_response(doc, response, f"problem {status}", path, int(status),
                                            _header_dict(headers), body_bytes)
        raise ContractError("no Problem schema in the contract")

    def report_unexercised(self):
        """Documented operations never validated, as sorted 'METHOD /template' strings."""
        with self._lock:
            done = {(m, t) for m, t, _ in self.exercised}
        return [f"{m} {t}" for m, t in self.operations() if (m, t) not in done]

    def unexercised_responses(self):
        """Documented (METHOD, template, status) never seen; ranges and 'default' are left out."""
        with self._lock:
            seen = {(m, t, str(s)) for m, t, s in self.exercised}
        out = []
        for o in self._ops:
            for key in (o.op.get("responses") or {}):
                k = str(key)
                if k.isdigit() and (o.method, o.template, k) not in seen:
                    out.append((o.method, o.template, int(k)))
        return sorted(out)

    def coverage(self):
        """A one-line summary, handy at the end of a test session."""
        ops = self.operations()
        un = self.report_unexercised()
        return f"{len(ops) - len(un)}/{len(ops)} documented operations exercised"

    # ---------- internals ----------

    @staticmethod
    def _path_only(url_path):
        p = urllib.parse.urlsplit(url_path)
        return p.path or "/"

    def _record(self, method, template, status):
        with self._lock:
            self.exercised.add((method, template, status))

    def _global_response(self, name, prefer_doc=None):
        docs = [d for _, d in self.docs]
        if prefer_doc is not None:
            docs.sort(key=lambda d: d is not prefer_doc)
        for doc in docs:
            resp = ((doc.get("components") or {}).get("responses") or {}).get(name)
            if resp is not None:
                return doc, resp
        return None

    def _validator(self, doc, schema):
        key = (id(doc), id(schema))
        v = self._validators.get(key)
        if v is None:
            resolver = jsonschema.RefResolver(base_uri="", referrer=doc)
            v = jsonschema.Draft202012Validator(schema, resolver=resolver, format_checker=_FORMATS)
            self._validators[key] = v
        return v

    def _check_schema(self, doc, schema, instance, where, what):
        errors = sorted(self._validator(doc, schema).iter_errors(instance), key=lambda e: list(e.absolute_path))
        if errors:
            lines = []
            for e in errors[:8]:
                # For oneOf/anyOf, say which branch came closest.
                best = jsonschema.exceptions.best_match([e]) if e.context else e
                lines.append(f"  {_json_path(best.absolute_path)}: {best.message}")
            more = f"\n  ... and {len(errors) - 8} more" if len(errors) > 8 else ""
            raise ContractError(f"{where}: {what} does not match the schema:\n" + "\n".join(lines) + more)

    def _check_response(self, doc, response, where, path, status, hdrs, body_bytes):
        response = _deref(doc, response, where)

        # headers
        for name, h in (response.get("headers") or {}).items():
            if name.lower() == "content-type":
                continue
            h = _deref(doc, h, f"{where}: header {name}")
            value = hdrs.get(name.lower())
            if value is None:
                if h.get("required"):
                    raise ContractError(f"{where}: required header {name} is missing")
                continue
            schema = h.get("schema")
            if schema is not None:
                inst = value
                resolved = _deref(doc, schema, where)
                types = resolved.get("type")
                types = types if isinstance(types, list) else [types]
                if ("integer" in types or "number" in types) and re.fullmatch(r"-?\d+", value.strip()):
                    inst = int(value.strip())
                self._check_schema(doc, schema, inst, where, f"header {name}: {value!r}")

        # body
        if body_bytes is None:
            body_bytes = b""
        if isinstance(body_bytes, str):
            body_bytes = body_bytes.encode("utf-8")
        content = response.get("content") or {}
        ct = hdrs.get("content-type")
        if not content:
            if body_bytes:
                raise ContractError(f"{where}: no body is documented but {len(body_bytes)} bytes came "
                                    f"(Content-Type {ct!r})")
            return None
        if not body_bytes:
            raise ContractError(f"{where}: a body is documented ({', '.join(content)}) but none came")
        if not ct:
            raise ContractError(f"{where}: the body has no Content-Type (documented: {', '.join(content)})")
        mt = _media_type(ct)
        media = None
        for pattern, m in content.items():
            if _media_matches(pattern, mt):
                media = m or {}
                break
        if media is None:
            raise ContractError(f"{where}: Content-Type {ct!r} is not documented (documented: {', '.join(content)})")
        if not _is_json(mt):
            schema = media.get("schema")
            if schema is not None:
                try:
                    text = body_bytes.decode("utf-8")
                except UnicodeDecodeError:
                    raise ContractError(f"{where}: the {mt} body is not UTF-8") from None
                self._check_schema(doc, schema, text, where, "body")
            return None
        try:
            body = strict_loads(body_bytes.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as e:
            raise ContractError(f"{where}: the body is not valid JSON ({e}): {body_bytes[:200]!r}") from None
        schema = media.get("schema")
        if schema is not None:
            self._check_schema(doc, schema, body, where, "body")
        if mt == "application/problem+json" or "x-problem-codes" in response:
            self._check_problem(response, where, path, status, hdrs, body)
        return body

    def _check_problem(self, response, where, path, status, hdrs, body):
        if not isinstance(body, dict):
            raise ContractError(f"{where}: a problem body must be a JSON object")
        code = body.get("code")
        if body.get("status") != status:
            raise ContractError(f"{where}: problem status {body.get('status')!r} differs from the HTTP status {status}")
        allowed = response.get("x-problem-codes")
        if allowed is not None and code not in allowed:
            raise ContractError(f"{where}: problem code {code!r} is not documented for this response "
                                f"(x-problem-codes: {', '.join(allowed)})")
        if self._registry:
            if code not in self._registry:
                raise ContractError(f"{where}: problem code {code!r} is not in the registry (problems.def)")
            if self._registry[code] != status:
                raise ContractError(f"{where}: problem code {code!r} is registered with status "
                                    f"{self._registry[code]}, sent with {status}")
        t = body.get("type")
        if isinstance(t, str) and isinstance(code, str) and not t.endswith("/problems/" + code):
            raise ContractError(f"{where}: problem type {t!r} does not name its code {code!r}")
        rid = hdrs.get("x-request-id")
        if rid is not None and "request_id" in body and body["request_id"] != rid:
            raise ContractError(f"{where}: problem request_id {body['request_id']!r} differs from "
                                f"X-Request-Id {rid!r}")
        inst = body.get("instance")
        if path is not None and isinstance(inst, str) and inst != path and \
                urllib.parse.unquote(inst) != urllib.parse.unquote(path):
            raise ContractError(f"{where}: problem instance {inst!r} is not the request path {path!r}")
        errs = body.get("errors")
        if errs is not None and not isinstance(errs, list):
            raise ContractError(f"{where}: problem errors must be an array")
