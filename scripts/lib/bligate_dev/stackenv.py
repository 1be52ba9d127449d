"""Read $BLIGATE_VAR/stack.env (written by scripts/stack start) without a shell.

The file holds lines KEY='value' (single-quoted shell words, ' written as '\\''), so both
`set -a; . var/stack.env; set +a` and load() understand it."""

import os
import shlex


def load(path=None):
    """Return stack.env as a dict. path defaults to $BLIGATE_VAR/stack.env, where
    BLIGATE_VAR defaults to <repo>/var."""
    if path is None:
        var = os.environ.get("BLIGATE_VAR") or os.path.join(
            os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "var")
        path = os.path.join(var, "stack.env")
    elif os.path.isdir(path):
        path = os.path.join(path, "stack.env")
    env = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            if line.startswith("export "):
                line = line[len("export "):]
            key, _, value = line.partition("=")
            words = shlex.split(value) if value else [""]
            env[key] = words[0] if words else ""
    return env
