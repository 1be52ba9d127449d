"""docker/k8s lint (issue 8), no cluster needed: every manifest parses and has what running
several replicas needs — probes on /readyz and /healthz at a declared port, resources, the
restricted security context, an HPA and a PodDisruptionBudget for each stateless service,
Services that select their Deployment — and every Secret, ConfigMap and key a pod refers to is
made by docker/k8s/secrets-from-files (or config.yaml), every BLIGATE_*_FILE is mounted, every
BLIGATE_* variable set here or in compose.yaml is one the code reads."""

import pathlib
import re
import subprocess

import pytest
import yaml

REPO = pathlib.Path(__file__).resolve().parents[2]
K8S = REPO / "docker" / "k8s"
STATELESS = ("accounts", "workflow", "bliproxy", "audit", "gateway")
PORTS = {"accounts": 8081, "workflow": 8082, "bliproxy": 8083, "audit": 8084, "bli-sandbox": 8090, "gateway": 8080}


def load(path):
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


@pytest.fixture(scope="module")
def docs():
    out = []
    for f in sorted(K8S.glob("*.yaml")):
        if f.name == "kustomization.yaml":
            continue
        for d in load(f):
            out.append((f.name, d))
    return out


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """secrets-from-files on what docker/gen-secrets makes: {(kind, name): set(keys)}."""
    d = tmp_path_factory.mktemp("k8s")
    r = subprocess.run([str(REPO / "docker" / "gen-secrets"), str(d)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    r = subprocess.run([str(K8S / "secrets-from-files"), str(d)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return {(x["kind"], x["metadata"]["name"]): set(x["data"]) for x in yaml.safe_load_all(r.stdout) if x}


def of_kind(docs, kind):
    return {d["metadata"]["name"]: d for _, d in docs if d["kind"] == kind}


def pod_specs(docs):
    for _, d in docs:
        if d["kind"] in ("Deployment", "Job"):
            yield d["kind"], d["metadata"]["name"], d["spec"]["template"]["spec"], d


def known_variables():
    """Every BLIGATE_* name that C code or the containers' scripts read."""
    names = set()
    for pattern in ("services/**/*.c", "shared/**/*.c", "cli/*.c"):
        for f in REPO.glob(pattern):
            names |= set(re.findall(r'"(BLIGATE_[A-Z0-9_]+)"', f.read_text(errors="replace")))
    for f in ("bligate-entrypoint", "bligate-healthcheck", "gateway-entrypoint"):
        names |= set(re.findall(r"\b(BLIGATE_[A-Z0-9_]+)", (REPO / "docker" / f).read_text()))
    return names


def test_every_manifest_parses_and_is_applied(docs):
    assert docs
    for f, d in docs:
        assert d.get("apiVersion") and d.get("kind"), f
        assert d["metadata"].get("name"), f
    kust = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    for r in kust["resources"]:
        assert (K8S / r).is_file(), r
    # everything is applied by `kubectl apply -k`, but the sandbox (test namespaces only)
    files = {f.name for f in K8S.glob("*.yaml")} - {"kustomization.yaml", "bli-sandbox.yaml"}
    assert set(kust["resources"]) == files
    images = {i["name"] for i in kust["images"]}
    for _, d in docs:
        if d["kind"] == "Deployment" and d["metadata"]["name"] != "bli-sandbox":
            for c in d["spec"]["template"]["spec"]["containers"]:
                assert c["image"].split(":")[0] in images


def test_pods_are_restricted_and_sized(docs):
    for kind, name, spec, _ in pod_specs(docs):
        sc = spec["securityContext"]
        assert sc["runAsNonRoot"] is True and sc["runAsUser"] != 0, name
        assert sc["seccompProfile"]["type"] == "RuntimeDefault", name
        assert spec.get("automountServiceAccountToken") is False, name
        for c in spec.get("initContainers", []) + spec["containers"]:
            csc = c["securityContext"]
            assert csc["allowPrivilegeEscalation"] is False, (name, c["name"])
            assert csc["readOnlyRootFilesystem"] is True, (name, c["name"])
            assert csc["capabilities"]["drop"] == ["ALL"], (name, c["name"])
            for part in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(c["resources"][part]), (name, c["name"], part)
            mounts = {m["mountPath"] for m in c.get("volumeMounts", [])}
            assert "/tmp" in mounts or c["image"].startswith("postgres:"), \
                f"{name}/{c['name']}: a read-only root needs a writable /tmp"


def test_deployments_have_probes_on_their_port(docs):
    deployments = of_kind(docs, "Deployment")
    assert set(STATELESS) <= set(deployments)
    for name, d in deployments.items():
        spec = d["spec"]
        assert spec["selector"]["matchLabels"].items() <= spec["template"]["metadata"]["labels"].items(), name
        c = spec["template"]["spec"]["containers"][0]
        ports = {p["name"]: p["containerPort"] for p in c["ports"]}
        assert PORTS[name] in ports.values(), f"{name}: the image listens on {PORTS[name]}"
        for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
            p = c[probe]
            if "httpGet" in p:
                assert p["httpGet"]["path"] == path, (name, probe)
                assert p["httpGet"]["port"] in ports or p["httpGet"]["port"] in ports.values(), (name, probe)
            else:
                # the sandbox serves only mutual TLS: the image's check script presents a certificate
                assert p["exec"]["command"] == ["bligate-healthcheck"], (name, probe)
        if name in STATELESS:
            assert spec["replicas"] >= 2, name
            assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0, name
            assert c.get("lifecycle", {}).get("preStop"), f"{name}: no preStop (endpoints before SIGTERM)"


def test_services_select_their_deployments(docs):
    deployments = of_kind(docs, "Deployment")
    for name, s in of_kind(docs, "Service").items():
        d = deployments[name]
        labels = d["spec"]["template"]["metadata"]["labels"]
        assert s["spec"]["selector"].items() <= labels.items(), name
        ports = {p["name"] for p in d["spec"]["template"]["spec"]["containers"][0]["ports"]}
        for p in s["spec"]["ports"]:
            assert p["targetPort"] in ports, (name, p)
        if name != "gateway":
            # the services call each other (and the gateway calls them) by these names and ports
            assert s["spec"]["ports"][0]["port"] == PORTS[name]


def test_stateless_services_autoscale_and_have_disruption_budgets(docs):
    deployments = of_kind(docs, "Deployment")
    hpas = of_kind(docs, "HorizontalPodAutoscaler")
    pdbs = of_kind(docs, "PodDisruptionBudget")
    for name in STATELESS:
        h = hpas[name]
        assert h["apiVersion"] == "autoscaling/v2"
        ref = h["spec"]["scaleTargetRef"]
        assert ref["kind"] == "Deployment" and ref["name"] in deployments, name
        assert 2 <= h["spec"]["minReplicas"] <= h["spec"]["maxReplicas"], name
        assert h["spec"]["metrics"] and h["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"], name
        p = pdbs[name]
        assert p["apiVersion"] == "policy/v1"
        labels = deployments[name]["spec"]["template"]["metadata"]["labels"]
        assert p["spec"]["selector"]["matchLabels"].items() <= labels.items(), name
        # a node can still be drained: the budget leaves room below the HPA's minimum
        assert p["spec"]["minAvailable"] < h["spec"]["minReplicas"], name


def test_referenced_secrets_configmaps_and_keys_exist(docs, generated):
    made = dict(generated)
    for name, cm in of_kind(docs, "ConfigMap").items():
        made[("ConfigMap", name)] = set(cm["data"])
    for kind, name, spec, _ in pod_specs(docs):
        vols = {v["name"]: v for v in spec.get("volumes", [])}
        for c in spec.get("initContainers", []) + spec["containers"]:
            for m in c.get("volumeMounts", []):
                assert m["name"] in vols, (name, c["name"], m["name"])
            for e in c.get("envFrom", []):
                assert ("ConfigMap", e["configMapRef"]["name"]) in made
            for e in c.get("env", []):
                ref = e.get("valueFrom", {})
                if "secretKeyRef" in ref:
                    r = ref["secretKeyRef"]
                    assert r["key"] in made[("Secret", r["name"])], (name, r)
                if "configMapKeyRef" in ref:
                    r = ref["configMapKeyRef"]
                    assert r["key"] in made[("ConfigMap", r["name"])], (name, r)
        for v in vols.values():
            sources = [v] if "secret" in v or "configMap" in v else v.get("projected", {}).get("sources", [])
            for s in sources:
                if "secret" in s:
                    sec = s["secret"]
                    key = ("Secret", sec.get("secretName") or sec.get("name"))
                    assert key in made, (name, key)
                    for item in sec.get("items", []):
                        assert item["key"] in made[key], (name, key, item)
                elif "configMap" in s:
                    key = ("ConfigMap", s["configMap"]["name"])
                    assert key in made, (name, key)
                    for item in s["configMap"].get("items", []):
                        assert item["key"] in made[key], (name, key, item)


def test_file_variables_are_mounted_and_env_references_resolve(docs):
    config = of_kind(docs, "ConfigMap")["bligate-config"]["data"]
    for kind, name, spec, _ in pod_specs(docs):
        for c in spec.get("initContainers", []) + spec["containers"]:
            mounts = [m["mountPath"] for m in c.get("volumeMounts", [])]
            defined = set(config) if c.get("envFrom") else set()
            for e in c.get("env", []):
                value = e.get("value", "")
                for ref in re.findall(r"\$\(([A-Z_]+)\)", value):
                    assert ref in defined, f"{name}/{c['name']}: {e['name']} uses $({ref}), defined nowhere before it"
                if e["name"].endswith("_FILE") and value:
                    assert any(value.startswith(m.rstrip("/") + "/") for m in mounts), \
                        f"{name}/{c['name']}: {e['name']}={value} is not under a mounted volume"
                defined.add(e["name"])


def test_migrations_run_as_the_schema_owner(docs):
    deployments = of_kind(docs, "Deployment")
    for name in ("accounts", "workflow", "bliproxy", "audit"):
        spec = deployments[name]["spec"]["template"]["spec"]
        init = spec["initContainers"][0]
        assert init["args"] == ["migrate"] and init["image"] == spec["containers"][0]["image"]
        env = {e["name"]: e.get("value") for e in init["env"]}
        assert f"user=bligate_{name}_owner" in env["BLIGATE_DB_OWNER_URL"]
        main = {e["name"]: e.get("value") for e in spec["containers"][0]["env"]}
        assert f"user=bligate_{name} " in main["BLIGATE_DB_URL"]
        # the owner's password is mounted in the init container only
        owner_vols = {m["name"] for m in init["volumeMounts"]} - {m["name"] for m in spec["containers"][0]["volumeMounts"]}
        assert owner_vols == {"owner-secret"}


def test_client_scopes_match_the_development_stack(docs):
    text = (REPO / "scripts" / "stack").read_text()
    block = re.search(r"declare -A SCOPES=\((.*?)\n\)", text, re.S).group(1)
    want = {m.group(1): m.group(2).split() for m in re.finditer(r'\[([a-z-]+)\]="([^"]*)"', block)}
    job = of_kind(docs, "Job")["bligate-register-clients"]
    script = job["spec"]["template"]["spec"]["containers"][0]["command"][-1]
    got = {m.group(1): m.group(2).split()
           for m in re.finditer(r'add-client --id (\S+) --secret-file \S+ --scopes "([^"]*)"', script)}
    assert got == want


def test_only_variables_the_code_reads(docs):
    known = known_variables()
    used = set()
    for _, d in docs:
        if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "bligate-config":
            used |= {k for k in d["data"] if k.startswith("BLIGATE_")}
    for kind, name, spec, _ in pod_specs(docs):
        for c in spec.get("initContainers", []) + spec["containers"]:
            used |= {e["name"] for e in c.get("env", []) if e["name"].startswith("BLIGATE_")}
    compose = yaml.safe_load((REPO / "docker" / "compose.yaml").read_text())
    for svc in compose["services"].values():
        used |= {k for k in (svc.get("environment") or {}) if k.startswith("BLIGATE_")}
    assert used - known == set(), "set but read by nothing (a typo?)"


def test_network_policies_deny_by_default_and_trust_only_what_they_admit(docs):
    """Only bligate's own pods reach the services, so the pod network may be trusted for
    X-Forwarded-For (config.yaml); the gateway takes traffic from anywhere; the sandbox only
    from the proxy."""
    pols = of_kind(docs, "NetworkPolicy")
    deny = pols["default-deny-ingress"]["spec"]
    assert deny["podSelector"] == {} and deny["policyTypes"] == ["Ingress"] and "ingress" not in deny
    services = pols["services-from-bligate"]["spec"]
    names = services["podSelector"]["matchExpressions"][0]["values"]
    assert sorted(names) == sorted(s for s in STATELESS if s != "gateway")
    (rule,) = services["ingress"]
    assert rule["from"] == [{"podSelector": {"matchLabels": {"app.kubernetes.io/part-of": "bligate"}}}]
    assert {p["port"] for p in rule["ports"]} == {PORTS[s] for s in names}
    gw = pols["gateway-from-anywhere"]["spec"]
    assert gw["ingress"] == [{"ports": [{"port": PORTS["gateway"], "protocol": "TCP"}]}]
    sbx = pols["bli-sandbox-from-bliproxy"]["spec"]
    assert sbx["ingress"][0]["from"] == [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": "bliproxy"}}}]
    # every pod the services admit carries the label the policy admits by
    for kind, name, spec, d in pod_specs(docs):
        assert d["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/part-of"] == "bligate", name
    trusted = of_kind(docs, "ConfigMap")["bligate-config"]["data"]["BLIGATE_TRUSTED_PROXIES"]
    assert "/" in trusted  # a range: gateway pods change address
