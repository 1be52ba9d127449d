"""The browsable contract (issue 8): the gateway serves the bundled contract at /openapi.yaml
and Swagger UI at /docs from the pinned swagger-ui-dist, locally, under a strict
Content-Security-Policy; in headless Chromium (tests/browser/docs.js) every tag renders, a demo
user's token goes in through the Authorize dialog and GET /v1/auth/me runs from the page.
The screenshots are saved as <build>/test-output/docs.png (the page) and docs-me.png (the
operation run)."""

import json
import os
import pathlib
import shutil
import subprocess

import pytest
import requests
import yaml

REPO = pathlib.Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("BLIGATE_CHROMIUM", "/usr/bin/chromium")


def output_dir():
    """<build>/test-output (the build of BLIGATE_BIN_DIR), or BLIGATE_TEST_OUTPUT."""
    out = os.environ.get("BLIGATE_TEST_OUTPUT")
    if not out:
        out = str(pathlib.Path(os.environ.get("BLIGATE_BIN_DIR", str(REPO / "build" / "bin"))).parent / "test-output")
    os.makedirs(out, exist_ok=True)
    return pathlib.Path(out)


def csp_directives(value):
    out = {}
    for part in value.split(";"):
        words = part.split()
        if words:
            out[words[0]] = words[1:]
    return out


@pytest.fixture(scope="module")
def gw(stack):
    return stack["BLIGATE_GATEWAY_URL"]


def test_openapi_yaml_is_the_bundled_contract(gw):
    r = requests.get(gw + "/openapi.yaml", timeout=10)
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("application/yaml")
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.content == (REPO / "openapi" / "build" / "openapi.yaml").read_bytes()
    assert yaml.safe_load(r.content)["openapi"].startswith("3.1")


def test_docs_page_headers(gw):
    r = requests.get(gw + "/docs", allow_redirects=False, timeout=10)
    assert r.status_code == 301
    assert r.headers["Location"] == "/docs/"   # relative: right behind any proxy

    r = requests.get(gw + "/docs/", timeout=10)
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/html")
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["X-Frame-Options"] == "DENY"
    csp = csp_directives(r.headers["Content-Security-Policy"])
    assert csp["default-src"] == ["'none'"]
    assert csp["script-src"] == ["'self'"]          # no inline script, no eval, no CDN
    assert csp["connect-src"] == ["'self'"]
    assert csp["frame-ancestors"] == ["'none'"]
    assert csp["base-uri"] == ["'none'"]
    # the page loads nothing from elsewhere
    assert "http://" not in r.text and "https://" not in r.text


def test_swagger_ui_is_the_pinned_package(gw):
    lock = json.loads((REPO / "package-lock.json").read_text())
    pinned = lock["packages"]["node_modules/swagger-ui-dist"]["version"]
    dist = REPO / "node_modules" / "swagger-ui-dist"
    assert json.loads((dist / "package.json").read_text())["version"] == pinned
    for name in ("swagger-ui-bundle.js", "swagger-ui.css"):
        r = requests.get(f"{gw}/docs/{name}", timeout=10)
        assert r.status_code == 200, name
        assert r.headers["X-Content-Type-Options"] == "nosniff"
        assert "Content-Security-Policy" in r.headers
        assert r.content == (dist / name).read_bytes(), name
    # only the Swagger UI files: nothing else of node_modules is reachable
    assert requests.get(gw + "/docs/../package.json", timeout=10).status_code == 404
    assert requests.get(gw + "/node_modules/swagger-ui-dist/package.json", timeout=10).status_code == 404


def test_docs_in_chromium(gw, login, demo):
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: scripts/bootstrap installs chromium")
    node = shutil.which("node")
    assert node, "node is missing: scripts/bootstrap installs nodejs"
    contract = yaml.safe_load(requests.get(gw + "/openapi.yaml", timeout=10).content)
    tags = [t["name"] for t in contract["tags"]]
    for item in contract["paths"].values():
        for op in item.values():
            if isinstance(op, dict):
                tags += [t for t in op.get("tags", []) if t not in tags]
    me = contract["paths"]["/v1/auth/me"]["get"]

    user = login("querier1")
    shot = output_dir() / "docs.png"
    for old in (shot, shot.with_name("docs-me.png")):
        if old.exists():
            old.unlink()
    env = dict(os.environ,
               DOCS_BASE_URL=gw,
               DOCS_TOKEN=user.token,
               DOCS_TAGS=json.dumps(tags),
               DOCS_OPERATION=json.dumps({"tag": me["tags"][0], "operation_id": me["operationId"],
                                          "expect": demo["querier1"]["account_id"]}),
               DOCS_SCREENSHOT=str(shot),
               DOCS_CHROMIUM=CHROMIUM)
    r = subprocess.run([node, str(REPO / "tests" / "browser" / "docs.js")], env=env, capture_output=True,
                       text=True, timeout=120)
    assert r.stdout.strip(), f"docs.js printed nothing (exit {r.returncode}): {r.stderr[-3000:]}"
    report = json.loads(r.stdout.strip().splitlines()[-1])
    assert report["page_status"] == 200
    assert report["title"].startswith(contract["info"]["title"])
    missing = [t for t, shown in report["tags"].items() if not shown]
    assert not missing and set(report["tags"]) == set(tags), f"tags not rendered: {missing}"
    assert report["status"] == "200", report
    assert report["body_has_expected"], "the 200 answer does not show querier1's account"
    assert report["external_requests"] == [], "the page fetched from another origin"
    assert report["csp_violations"] == [], "the page broke its own Content-Security-Policy"
    assert report["page_errors"] == []
    assert r.returncode == 0, r.stderr[-3000:]
    for png in (shot, pathlib.Path(report["screenshot_operation"])):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", png


def test_gateway_routes_every_path_of_the_contract(gw):
    """"Try it out" works for every operation: each path of the served contract reaches a
    service (whose every reply says Cache-Control: no-store), none ends at the gateway's own 404."""
    contract = yaml.safe_load(requests.get(gw + "/openapi.yaml", timeout=10).content)
    unrouted = []
    for path, item in contract["paths"].items():
        if path in ("/healthz", "/readyz"):
            continue   # the gateway answers its own probes
        url = gw + path.replace("{", "").replace("}", "")   # {id} -> a value no service has
        for method in ("get", "post", "patch", "delete", "put"):
            if method in item:
                r = requests.request(method.upper(), url, timeout=10, allow_redirects=False,
                                     headers={"Content-Type": "application/json"}, data="{}")
                if "no-store" not in r.headers.get("Cache-Control", ""):
                    unrouted.append(f"{method.upper()} {path} -> {r.status_code}")
                break
    assert not unrouted, "not routed by the gateway: " + ", ".join(unrouted)
