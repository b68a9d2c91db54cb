"""The project's own renderer for s.yaml: the subset of Serverless Devs' variables the project uses, with s's
rules, so that the real ``s preview`` can be compared with it (tests/deploy/test_s_cli.py):
``${vars.name}``, ``${env('NAME')}`` (an error when unset), ``${env('NAME', 'default')}`` (an empty
variable, ``NAME=``, counts as unset, as in s) and ``${config('AccountID')}`` (left as it is when no
credential alias is given, as s does). Anything else is an error, so a new kind of variable in s.yaml fails
the tests instead of passing unrendered."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

_EXPR = re.compile(r"\$\{([^{}]+)\}")
_ENV = re.compile(r"""\s*env\(\s*(['"])([^'"]+)\1\s*(?:,\s*(['"])([^'"]*)\3\s*)?\)\s*""")
_CONFIG = re.compile(r"""\s*config\(\s*(['"])(\w+)\1\s*\)\s*""")
_VARS = re.compile(r"\s*vars\.([A-Za-z_][\w.]*)\s*")


class RenderError(ValueError):
    """s.yaml uses something the renderer (and so s) cannot resolve."""


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys, as js-yaml (which s uses) does."""


def _no_duplicates(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    keys = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in keys:
            raise RenderError(f"duplicate key {key!r} at line {key_node.start_mark.line + 1}")
        keys.add(key)
    return loader.construct_mapping(node, deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _no_duplicates)


def load_raw(path: Path) -> dict[str, Any]:
    """The file as YAML, unrendered."""
    data = yaml.load(path.read_text(encoding="utf-8"), Loader=_StrictLoader)  # a SafeLoader
    if not isinstance(data, dict):
        raise RenderError(f"{path} is not a YAML mapping")
    return data


def _lookup(vars_: Mapping[str, Any], dotted: str) -> Any:
    value: Any = vars_
    for part in dotted.split("."):
        if not isinstance(value, Mapping) or part not in value:
            raise RenderError(f"${{vars.{dotted}}}: no such var")
        value = value[part]
    return value


def _resolve(expr: str, env: Mapping[str, str], vars_: Mapping[str, Any],
             access: Mapping[str, str] | None) -> Any:
    m = _ENV.fullmatch(expr)
    if m:
        name, default = m.group(2), m.group(4)
        if env.get(name):
            return env[name]
        if default is None:
            raise RenderError(f"env('{name}') not found")
        return default
    m = _CONFIG.fullmatch(expr)
    if m:
        if access is None:
            return "${" + expr + "}"
        if m.group(2) not in access:
            raise RenderError(f"config('{m.group(2)}') not found in the credential alias")
        return access[m.group(2)]
    m = _VARS.fullmatch(expr)
    if m:
        return _lookup(vars_, m.group(1))
    raise RenderError(f"${{{expr}}}: not a variable this project uses (vars.x, env('X'), env('X', 'd'), "
                      "config('AccountID'))")


def _render(value: Any, env: Mapping[str, str], vars_: Mapping[str, Any], access: Mapping[str, str] | None,
            depth: int = 0) -> Any:
    if depth > 20:
        raise RenderError(f"{value!r}: variables refer to each other in a loop")
    if isinstance(value, dict):
        return {k: _render(v, env, vars_, access, depth) for k, v in value.items()}
    if isinstance(value, list):
        return [_render(v, env, vars_, access, depth) for v in value]
    if not isinstance(value, str):
        return value

    def one(expr: str) -> Any:
        resolved = _resolve(expr, env, vars_, access)
        if isinstance(resolved, str) and resolved == "${" + expr + "}":
            return resolved     # config() without an alias: kept literally, not rendered again
        return _render(resolved, env, vars_, access, depth + 1)

    whole = _EXPR.fullmatch(value)
    if whole:
        return one(whole.group(1))
    return _EXPR.sub(lambda m: str(one(m.group(1))), value)


def render(raw: Mapping[str, Any], env: Mapping[str, str], access: Mapping[str, str] | None = None,
           ) -> dict[str, Any]:
    """The document with every variable replaced, using ``env`` (never os.environ) for ``env()`` and
    ``access`` (the credential alias's fields, e.g. AccountID) for ``config()``."""
    vars_ = raw.get("vars") or {}
    rendered_vars = _render(vars_, env, vars_, access)
    return {k: (rendered_vars if k == "vars" else _render(v, env, rendered_vars, access))
            for k, v in raw.items()}
