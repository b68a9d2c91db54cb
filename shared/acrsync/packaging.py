"""Build what s.yaml deploys (``make package``): one dependency layer and one small code package per function.

    python -m acrsync.packaging build/fc [--config PATH] [--region REGION] [--layer-name NAME] [--no-deps]

It writes, reproducibly (the same inputs give the same bytes, so fc3 skips an unchanged upload):

- ``build/fc/layer.zip`` (and ``build/fc/layer/``): the pinned runtime dependencies under ``python/``,
  installed for the FC runtime (python3.10, manylinux x86_64). FC unpacks a layer into /opt and puts
  /opt/python on the import path
  (https://www.alibabacloud.com/help/en/functioncompute/create-a-custom-layer). The layer's name,
  ``acrsync-deps-py310-<hash>``, is derived from the pins, so a new set of pins is a new layer.
  Only what the functions import is kept: no CLI-only libraries (typer, rich and theirs), no numpy (see
  ``PRUNED``), no test folders, no binaries that cannot load on the runtime.
- ``build/fc/<function>.zip`` (and ``build/fc/<function>/``): ``index.py`` at the root, the ``acrsync``
  package without its CLI, and the replication config as ``acrsync.yaml`` with its validated form
  (``acrsync.validated.json``, what the function reads); bytecode precompiled for 3.10.

The emulator (``localcloud``) is never deployed: a package that contains it is refused. The config must
use the Tablestore ledger and the region s.yaml deploys to (``--region``, from vars.region).

Standard library only (pip and the runtime's Python run as subprocesses), apart from validating the config,
which uses ``acrsync.config``.
"""

from __future__ import annotations

import argparse
import fnmatch
import hashlib
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from acrsync.errors import AcrsyncError

if TYPE_CHECKING:
    from acrsync.config import Config

REPO_ROOT = Path(__file__).resolve().parents[2]
CONFIG_ENV = "ACRSYNC_CONFIG"
CONFIG_NAME = "acrsync.yaml"
DEPS_DIR = "_deps"            # pip's output, reused while the pins are unchanged
LAYER_DIR = "layer"           # the layer as a directory: python/<packages>
LAYER_PREFIX = "acrsync-deps-py310-"
DEPS_STAMP = ".acrsync-deps.json"
FORBIDDEN = "localcloud"
RESERVED = (DEPS_DIR, LAYER_DIR)

# The FC runtime s.yaml names (python3.10 on x86_64 Linux): pip resolves wheels for it, not for this machine.
PLATFORM_ARGS = ("--platform", "manylinux2014_x86_64", "--implementation", "cp", "--python-version", "3.10",
                 "--only-binary=:all:")
RUNTIME_VERSION = (3, 10)
# Where FC puts the code and the layer; compiled bytecode names these paths, not the build directory's.
CODE_ROOT, LAYER_ROOT = "/code", "/opt/python"
# Every file in the zips gets this timestamp (the zip format's earliest), so a rebuild is byte-identical.
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)

# Distributions only the CLI imports (acrsync.cli): never installed into the layer. A function that
# imported one would fail in the package tests (tests/deploy/test_artifacts.py).
CLI_ONLY = ("typer", "rich")
# Paths (fnmatch patterns relative to the installed dependencies) left out of the layer, and why.
PRUNED: tuple[tuple[str, str], ...] = (
    ("numpy", "tablestore imports numpy only through flatbuffers.compat.import_numpy(), which returns None "
              "when numpy is absent; only the flatbuffers *AsNumpy accessors (SQL/timeseries) need it, and "
              "acrsync calls none (tested: the Tablestore ledger runs from the package without numpy)"),
    ("numpy.libs", "numpy's bundled OpenBLAS"),
    ("numpy-*.dist-info", "numpy's metadata"),
    ("tablestore/ots_sdk/ots_sdk.so", "tablestore's C++ encoder, built for CPython 3.12 only: it cannot load "
                                      "on 3.10, where tablestore falls back to its Python implementation"),
    ("libfuturize", "future's Python 2 to 3 converters (command-line tools)"),
    ("libpasteurize", "future's Python 3 to 2 converters (command-line tools)"),
    ("*-darwin.so", "macOS binaries"),
    ("*.dylib", "macOS binaries"),
    ("*/tests", "third-party test suites"),
    ("bin", "console scripts"),
    (DEPS_STAMP, "the builder's own stamp"),
)
# Top-level names kept in the layer although no sample event makes a function import them: each is
# imported on a path the samples do not take. tests/deploy/test_artifacts.py fails on any other name that no
# handler loads, so a dependency the functions do not need is noticed.
KEPT_UNLOADED: dict[str, str] = {
    "alibabacloud_tea_util": "utilities the SDK clients import on some request paths",
    "attrs": "the attrs distribution's new namespace (aiohttp loads its 'attr' one)",
    "cffi": "cffi's Python side; cryptography loads only _cffi_backend",
    "pycparser": "cffi's C parser, for cffi modules built at run time",
    "future": "tablestore's Python 2 compatibility dependency",
    "past": "part of the future distribution",
    "jinja2": "compliance reports rendered as HTML or Markdown (acrsync.compliance.render)",
    "markupsafe": "jinja2's escaping",
    "yaml": "reads a config that has no validated form beside it (make package writes one)",
    "_yaml": "PyYAML's compatibility shim for its C extension",
}
# Parts of acrsync that never run in a function: the CLI (and its entry point), the demo, this builder.
CODE_EXCLUDED = ("cli", "__main__.py", "demo.py", "packaging.py", "tests", "__pycache__", "*.pyc", "*.pyo",
                 ".pytest_cache")

_SOURCE_IGNORE = shutil.ignore_patterns(*CODE_EXCLUDED)


class PackagingError(AcrsyncError):
    """A package that cannot be built; the message says what is wrong and how to fix it."""


@dataclass(frozen=True)
class Artifact:
    """One built directory, its reproducible zip, and what it weighs unpacked."""

    name: str
    path: Path
    zip_path: Path
    unpacked_bytes: int
    files: int

    @property
    def zip_bytes(self) -> int:
        return self.zip_path.stat().st_size


@dataclass(frozen=True)
class BuildResult:
    """What ``build`` wrote: one code package per function and (unless --no-deps) the layer."""

    functions: list[Artifact]
    layer: Artifact | None
    layer_name: str


# ---------------------------------------------------------------- inputs


def discover_functions(root: Path = REPO_ROOT) -> list[str]:
    """Names of the functions that have an entry point, ``functions/<name>/index.py``, sorted."""
    base = root / "functions"
    if not base.is_dir():
        raise PackagingError(f"{base} does not exist; run from a clone of the repository (or pass --root)")
    return sorted(p.parent.name for p in base.glob("*/index.py"))


def read_dependencies(pyproject: Path) -> list[str]:
    """The project's pinned runtime dependencies: ``[project].dependencies`` of pyproject.toml."""
    try:
        text = pyproject.read_text(encoding="utf-8")
    except OSError as e:
        raise PackagingError(f"cannot read {pyproject}: {e.strerror}") from None
    if sys.version_info >= (3, 11):
        import tomllib

        deps = tomllib.loads(text).get("project", {}).get("dependencies")
        if deps is None:
            raise PackagingError(f"{pyproject} has no [project].dependencies list")
    else:
        deps = _project_dependencies(text, pyproject)
    return list(deps)


def _project_dependencies(text: str, source: Path) -> list[str]:
    """Read ``dependencies = [...]`` from the ``[project]`` table without a TOML library (Python 3.10)."""
    table = None
    offset = 0
    for line in text.splitlines(keepends=True):
        header = re.match(r"\s*\[\[?\s*([^\]]+?)\s*\]", line)
        if header:
            table = header.group(1)
        elif table == "project":
            start = re.match(r"\s*dependencies\s*=\s*\[", line)
            if start:
                return _string_array(text, offset + start.end(), source)
        offset += len(line)
    raise PackagingError(f"{source} has no [project].dependencies list")


def _string_array(text: str, i: int, source: Path) -> list[str]:
    """The strings of a TOML array whose ``[`` ends just before ``i`` (comments and commas skipped)."""
    out: list[str] = []
    while i < len(text):
        c = text[i]
        if c == "]":
            return out
        if c == "#":
            i = text.find("\n", i)
            if i < 0:
                break
        elif c in "\"'":
            end = text.find(c, i + 1)
            if end < 0:
                break
            value = text[i + 1:end]
            if "\\" in value or "\n" in value:
                raise PackagingError(f"{source}: [project].dependencies entry {value!r} needs a TOML parser; "
                                     "write each requirement as a plain one-line string")
            out.append(value)
            i = end
        elif not (c.isspace() or c == ","):
            raise PackagingError(f"{source}: [project].dependencies may hold only strings; found {c!r}")
        i += 1
    raise PackagingError(f"{source}: [project].dependencies is not a closed list")


def resolve_config(config: str | os.PathLike[str] | None, region: str | None = None) -> Path:
    """The config file to package: ``--config``, else ``$ACRSYNC_CONFIG``; validated for use on FC and, with
    ``region`` (s.yaml's vars.region), for that region."""
    path = _config_path(config)
    check_config(path, region)
    return path


def _config_path(config: str | os.PathLike[str] | None) -> Path:
    raw = config or os.environ.get(CONFIG_ENV)
    if not raw:
        raise PackagingError(f"no replication config: pass --config PATH or set {CONFIG_ENV}=PATH "
                             f"(it is packaged as {CONFIG_NAME} and read by the functions)")
    path = Path(raw)
    if not path.is_file():
        raise PackagingError(f"config file {path} does not exist; pass --config with the path of your "
                             "replication config")
    return path


def check_config(path: Path, region: str | None = None) -> Config:
    """The config, validated; refused when it would fail or misbehave on FC: invalid, with a per-instance
    ledger, or for another region than the one the functions are deployed to."""
    try:
        from acrsync.config import ConfigError, load_config, region_mismatches
    except ImportError as e:
        raise PackagingError(f"cannot validate {path}: {e}; install the project first (make venv)") from None
    try:
        cfg = load_config(path)
    except ConfigError as e:
        raise PackagingError(str(e)) from None
    if cfg.ledger.backend != "tablestore":
        raise PackagingError(
            f"{path}: ledger.backend is {cfg.ledger.backend!r}, but a function's disk is read-only (/code) "
            "or private to one instance (/tmp), so the exactly-once gate would not hold across instances; "
            "set ledger.backend: tablestore with ledger.endpoint and ledger.instance (docs/DEPLOY.md)"
        )
    problems = region_mismatches(cfg, region)
    if problems:
        raise PackagingError(f"{path}: " + "; ".join(problems))
    return cfg


def function_requirements(requirements: list[str]) -> list[str]:
    """The project's pins without the CLI-only distributions."""
    def name(req: str) -> str:
        return re.split(r"[\s\[<>=!~;]", req, maxsplit=1)[0].lower().replace("_", "-")
    return [r for r in requirements if name(r) not in CLI_ONLY]


def layer_name(requirements: list[str]) -> str:
    """``acrsync-deps-py310-<8 hex>``: a digest of everything that decides the layer's content."""
    recipe = {"requirements": sorted(requirements), "platform": list(PLATFORM_ARGS),
              "pruned": [p for p, _ in PRUNED], "layout": "python/", "root": LAYER_ROOT}
    return LAYER_PREFIX + hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:8]


# ---------------------------------------------------------------- building


def runtime_python() -> list[str]:
    """A command running Python 3.10, the FC runtime's: this interpreter, a pyenv 3.10, or python3.10.

    pip must run under it: ``--python-version`` picks wheels for 3.10 but environment markers (e.g.
    aiohttp's ``async-timeout; python_version < "3.11"``) are evaluated for the interpreter running pip,
    so a 3.12 pip would leave out what 3.10 needs.
    """
    if sys.version_info[:2] == RUNTIME_VERSION:
        return [sys.executable]
    want = ".".join(map(str, RUNTIME_VERSION))
    candidates: list[list[str]] = []
    if shutil.which("pyenv"):
        listed = subprocess.run(["pyenv", "versions", "--bare"], capture_output=True, text=True, check=False)
        candidates += [["env", f"PYENV_VERSION={v}", f"python{want}"]
                       for v in reversed(listed.stdout.split()) if v == want or v.startswith(want + ".")]
    candidates.append([f"python{want}"])
    for cmd in candidates:
        probe = subprocess.run(
            [*cmd, "-c", f"import sys; assert sys.version_info[:2] == {RUNTIME_VERSION!r}"],
            capture_output=True,
            check=False,
        )
        if probe.returncode == 0:
            return cmd
    raise PackagingError(
        f"the dependencies must be installed by a Python {want} (the FC runtime's), and none "
        f"runs here; install Python {want} (e.g. `pyenv install {want}`) or build under it"
    )


def install_dependencies(requirements: list[str], target: Path) -> None:
    """pip-install ``requirements`` for the FC platform into ``target``; reused while the inputs are
    unchanged."""
    stamp = {"requirements": requirements, "platform": list(PLATFORM_ARGS),
             "markers_for": ".".join(map(str, RUNTIME_VERSION))}   # pip ran under the runtime's Python
    stamp_file = target / DEPS_STAMP
    if stamp_file.is_file():
        try:
            if json.loads(stamp_file.read_text(encoding="utf-8")) == stamp:
                print(f"dependencies: reusing {target} (same pins)")
                return
        except (OSError, ValueError):
            pass
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    cmd = [*runtime_python(), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-input",
           "--no-compile", "--target", str(target), *PLATFORM_ARGS, *requirements]
    print(
        f"dependencies: pip install {len(requirements)} pinned requirements for python3.10 manylinux x86_64"
    )
    result = subprocess.run(cmd, check=False)
    if result.returncode != 0:
        shutil.rmtree(target, ignore_errors=True)
        raise PackagingError(
            f"pip install failed (exit {result.returncode}); see pip's message above. Every dependency must "
            "have a manylinux2014 x86_64 (or pure-Python) wheel for CPython 3.10; check the network or the "
            "package index, or build with --no-deps and supply the dependencies as an FC layer")
    stamp_file.write_text(json.dumps(stamp, indent=1), encoding="utf-8")


def assert_no_localcloud(path: Path) -> None:
    """The emulator is test tooling and never deployed; refuse a package that carries it."""
    found = [
        p
        for p in path.rglob(f"{FORBIDDEN}*")
        if p.name == FORBIDDEN or p.name.startswith(FORBIDDEN + ".") or p.name.startswith(FORBIDDEN + "-")
    ]
    if found:
        raise PackagingError(
            f"{path} contains {found[0]}: {FORBIDDEN} (the emulator) must never be deployed; "
            "remove it from shared/ and from the project's dependencies"
        )


def _pruned(rel: str) -> bool:
    """fnmatch's ``*`` also matches ``/``: ``*/tests`` is a tests folder at any depth below the top."""
    return any(fnmatch.fnmatchcase(rel, pattern) for pattern, _ in PRUNED)


def prune_copy(src: Path, dest: Path) -> None:
    """Copy the installed dependencies to ``dest`` without what ``PRUNED`` names."""
    def ignore(directory: str, names: list[str]) -> set[str]:
        base = Path(directory).relative_to(src).as_posix()
        return {n for n in names if _pruned(n if base == "." else f"{base}/{n}")}
    shutil.copytree(src, dest, ignore=ignore)


def compile_for_runtime(path: Path, deployed_at: str) -> None:
    """Precompile bytecode with the runtime's Python (3.10): FC's /code and /opt are read-only, so without it
    every cold start compiles every module again. Hash-checked .pyc are deterministic and stay valid after
    zipping; ``deployed_at`` is the path the code has on FC, so tracebacks name it and the bytes do not
    depend on the build directory."""
    cmd = [*runtime_python(), "-m", "compileall", "-q", "-j", "1", "--invalidation-mode", "checked-hash",
           "-s", str(path), "-p", deployed_at, str(path)]
    # A fixed hash seed: sets of strings in constants are marshalled in hash order, which would differ
    # per run.
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if result.returncode != 0:
        raise PackagingError(f"bytecode compilation failed under {path}:\n{result.stdout}{result.stderr}")


def write_zip(directory: Path, zip_path: Path, prefix: str = "") -> None:
    """A reproducible zip: sorted entries, one fixed timestamp, permissions reduced to 644/755."""
    tmp = zip_path.with_suffix(".zip.tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for path in sorted(directory.rglob("*"), key=lambda p: p.relative_to(directory).as_posix()):
            if not path.is_file():
                continue
            info = zipfile.ZipInfo(prefix + path.relative_to(directory).as_posix(), date_time=ZIP_EPOCH)
            mode = 0o755 if path.stat().st_mode & stat.S_IXUSR else 0o644
            info.external_attr = (stat.S_IFREG | mode) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3     # Unix, so the permissions above are read
            zf.writestr(info, path.read_bytes(), compresslevel=9)
    tmp.replace(zip_path)


def _size(path: Path) -> tuple[int, int]:
    total = files = 0
    for p in path.rglob("*"):
        if p.is_file():
            total += p.stat().st_size
            files += 1
    return total, files


def build_layer(deps: Path, out: Path, *, compile_bytecode: bool = True) -> Artifact:
    """``out/layer/python`` from the installed dependencies, pruned and compiled, and ``out/layer.zip``."""
    dest = out / LAYER_DIR
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    prune_copy(deps, dest / "python")
    assert_no_localcloud(dest)
    if (dest / "python" / "acrsync").exists():
        raise PackagingError(f"a dependency installed a top-level 'acrsync' into {deps}; it would shadow the "
                             "project's package. Remove it from [project].dependencies")
    if compile_bytecode:
        compile_for_runtime(dest / "python", LAYER_ROOT)
    write_zip(dest, out / f"{LAYER_DIR}.zip")
    total, files = _size(dest)
    return Artifact(LAYER_DIR, dest, out / f"{LAYER_DIR}.zip", total, files)


def build_function(name: str, out: Path, config: Path, validated: Config, *, root: Path = REPO_ROOT,
                   compile_bytecode: bool = True) -> Artifact:
    """Write ``out/<name>/`` from scratch (index.py, acrsync without its CLI, acrsync.yaml with its
    ``validated`` form beside it, which the function reads: no YAML parser, no pydantic at cold start) and
    its zip."""
    from acrsync.config import write_validated

    entry = root / "functions" / name / "index.py"
    if not entry.is_file():
        raise PackagingError(f"{entry} does not exist; every function s.yaml deploys needs "
                             f"functions/{name}/index.py with handler(event, context)")
    package_src = root / "shared" / "acrsync"
    if not (package_src / "__init__.py").is_file():
        raise PackagingError(f"{package_src} is not the acrsync package; run from a clone of the repository")
    dest = out / name
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    shutil.copy2(entry, dest / "index.py")
    shutil.copytree(package_src, dest / "acrsync", ignore=_SOURCE_IGNORE)
    shutil.copy2(config, dest / CONFIG_NAME)
    write_validated(validated, dest / CONFIG_NAME)
    assert_no_localcloud(dest)
    if compile_bytecode:
        compile_for_runtime(dest, CODE_ROOT)
    write_zip(dest, out / f"{name}.zip")
    total, files = _size(dest)
    return Artifact(name, dest, out / f"{name}.zip", total, files)


def build(out: Path, *, config: str | os.PathLike[str] | None = None, root: Path = REPO_ROOT,
          functions: list[str] | None = None, with_deps: bool = True, compile_bytecode: bool = True,
          region: str | None = None, expected_layer: str | None = None) -> BuildResult:
    """Build the layer and every requested function (default: all under functions/) into ``out``.

    ``region`` and ``expected_layer`` are s.yaml's vars.region and vars.layerName: a config for another
    region, or a layer name that no longer matches the pins, is refused with both values named."""
    cfg_path = _config_path(config)
    validated = check_config(cfg_path, region)
    names = functions or discover_functions(root)
    if not names:
        raise PackagingError(f"no functions to package: {root / 'functions'} has no <name>/index.py")
    reserved = sorted(set(names) & set(RESERVED))
    if reserved:
        raise PackagingError(f"{reserved[0]} is reserved for the dependency layer; rename that function")
    requirements = function_requirements(read_dependencies(root / "pyproject.toml"))
    name = layer_name(requirements)
    if expected_layer and expected_layer != name:
        raise PackagingError(f"s.yaml names the layer {expected_layer} but the pinned dependencies make "
                             f"{name}; set vars.layerName: {name} in s.yaml (a new layer for the new pins)")
    out.mkdir(parents=True, exist_ok=True)
    layer = None
    if with_deps:
        deps = out / DEPS_DIR
        install_dependencies(requirements, deps)
        assert_no_localcloud(deps)
        layer = build_layer(deps, out, compile_bytecode=compile_bytecode)
    packages = [build_function(n, out, cfg_path, validated, root=root, compile_bytecode=compile_bytecode)
                for n in names]
    return BuildResult(packages, layer, name)


# ---------------------------------------------------------------- command line


def _mib(n: int) -> str:
    return f"{n / 1024 / 1024:.1f} MiB"


def summary(result: BuildResult) -> str:
    """One line per artifact: its zip, what it weighs zipped and unpacked."""
    rows = [*result.functions, *([result.layer] if result.layer else [])]
    width = max(len(a.name) for a in rows)
    lines = [f"{a.name:<{width}}  {_mib(a.zip_bytes):>9} zipped  {_mib(a.unpacked_bytes):>9} unpacked  "
             f"{a.files:>5} files  {a.zip_path}" for a in rows]
    lines.append(f"layer name: {result.layer_name}" + ("" if result.layer else " (not built: --no-deps)"))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m acrsync.packaging", description=__doc__.splitlines()[0])
    parser.add_argument("outdir", type=Path, help="where to write the zips (s.yaml expects build/fc)")
    parser.add_argument("--config", help=f"replication config to package (default: ${CONFIG_ENV})")
    parser.add_argument("--region", help="the region s.yaml deploys to (vars.region); must be the config's")
    parser.add_argument(
        "--layer-name", help="the layer name s.yaml uses (vars.layerName); must match the pins"
    )
    parser.add_argument("--no-deps", action="store_true", help="skip pip and the layer (tests)")
    parser.add_argument("--no-compile", action="store_true", help="do not precompile bytecode")
    parser.add_argument("--function", action="append", dest="functions", metavar="NAME",
                        help="package only this function (repeatable; default: every functions/<name>)")
    parser.add_argument("--root", type=Path, default=REPO_ROOT, help="repository root (default: %(default)s)")
    args = parser.parse_args(argv)
    try:
        result = build(args.outdir, config=args.config, root=args.root, functions=args.functions,
                       with_deps=not args.no_deps, compile_bytecode=not args.no_compile,
                       region=args.region or None, expected_layer=args.layer_name or None)
    except PackagingError as e:
        print(f"acrsync.packaging: {e}", file=sys.stderr)
        return 2
    print(summary(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
