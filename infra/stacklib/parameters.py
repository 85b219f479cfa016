"""The service's settings as template parameters: the environment of `make up`/`make deploy` reaches the functions."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from infra.stacklib.layout import MERGE_TEMPLATE

# Given by their own options (`deploy --database-url`, `up`'s database), never read from the environment here.
OWN_OPTIONS = frozenset({"DatabaseUrl", "DatabaseSecretArn", "LocalApiId", "SubnetIds", "SecurityGroupIds"})


def setting_parameters(template: Mapping[str, Any] | None = None) -> dict[str, str]:
    """Environment variable -> template parameter, for every function variable a parameter sets."""
    t = template if template is not None else json.loads(MERGE_TEMPLATE.read_text())
    variables = t["Globals"]["Function"]["Environment"]["Variables"]
    found: dict[str, str] = {}
    for name, value in variables.items():
        ref = value.get("Ref") if isinstance(value, dict) else None
        if isinstance(ref, str) and ref in t.get("Parameters", {}) and ref not in OWN_OPTIONS:
            found[name] = ref
    return found


def from_environment(environ: Mapping[str, str], template: Mapping[str, Any] | None = None) -> dict[str, str]:
    """Parameter values for the settings set (non-empty) in `environ`; the others keep the template's default."""
    return {param: environ[name] for name, param in setting_parameters(template).items() if environ.get(name)}
