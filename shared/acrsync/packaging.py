"""Build the Function Compute code packages that s.yaml deploys (``make package``).

    python -m acrsync.packaging build/fc [--config PATH] [--no-deps] [--function NAME ...]

For every function (``functions/<name>/index.py``) it writes ``build/fc/<name>/`` holding ``index.py`` at the
root, the ``acrsync`` package, the replication config as ``acrsync.yaml`` and the pinned runtime dependencies
installed for the FC platform (python3.10, manylinux x86_64). Dependencies are installed once into
``build/fc/_deps`` and hard-linked into each function, so three functions cost one download.

The emulator (``localcloud``) is never deployed: a package that contains it is refused.

Standard library only (pip runs as a subprocess), so it works before anything else is importable; the one
exception is validating the config, which uses ``acrsync.config`` and so needs the project's dependencies.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import py_compile
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from acrsync.errors import AcrsyncError

REPO_ROOT = Path(__file__).resolve().parents[2]
CONFIG_ENV = "ACRSYNC_CONFIG"
CONFIG_NAME = "acrsync.yaml"
DEPS_DIR = "_deps"
DEPS_STAMP = ".acrsync-deps.json"
FORBIDDEN = "localcloud"

# The FC runtime s.yaml names (python3.10 on x86_64 Linux): pip resolves wheels for it, not for this machine.
PLATFORM_ARGS = ("--platform", "manylinux2014_x86_64", "--implementation", "cp", "--python-version", "3.10",
                 "--only-binary=:all:")
RUNTIME_VERSION = (3, 10)

# Never copied from shared/acrsync: test code, and bytecode compiled by whatever Python the builder used.
_SOURCE_IGNORE = shutil.ignore_patterns("tests", "__pycache__", "*.pyc", "*.pyo", ".pytest_cache")
# pip --target also writes console scripts, and the stamp is ours; the functions need neither. (__pycache__
# here is kept: pip runs with --no-compile, so any bytecode is what compile_for_runtime wrote for 3.10.)
_DEPS_IGNORE = shutil.ignore_patterns("bin", DEPS_STAMP)


class PackagingError(AcrsyncError):
    """A package that cannot be built; the message says what is wrong and how to fix it."""


@dataclass(frozen=True)
class FunctionPackage:
    """One built function directory and what it weighs (bytes as they will be zipped)."""

    name: str
    path: Path
    code_bytes: int
    deps_bytes: int
    files: int

    @property
    def total_bytes(self) -> int:
        return self.code_bytes + self.deps_bytes


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
    try:
        import tomllib  # Python 3.11+
    except ModuleNotFoundError:
        deps = _project_dependencies(text, pyproject)
    else:
        deps = tomllib.loads(text).get("project", {}).get("dependencies")
        if deps is None:
            raise PackagingError(f"{pyproject} has no [project].dependencies list")
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


def resolve_config(config: str | os.PathLike | None) -> Path:
    """The config file to package: ``--config``, else ``$ACRSYNC_CONFIG``; validated for use on FC."""
    raw = config or os.environ.get(CONFIG_ENV)
    if not raw:
        raise PackagingError(f"no replication config: pass --config PATH or set {CONFIG_ENV}=PATH "
                             f"(it is packaged as {CONFIG_NAME} and read by the functions)")
    path = Path(raw)
    if not path.is_file():
        raise PackagingError(f"config file {path} does not exist; pass --config with the path of your "
                             "replication config")
    check_config(path)
    return path


def check_config(path: Path) -> None:
    """Refuse a config that would fail or misbehave on FC: invalid, or with a per-instance ledger."""
    try:
        from acrsync.config import ConfigError, load_config
    except ImportError as e:
        raise PackagingError(f"cannot validate {path}: {e}; install the project first (make venv)") from None
    try:
        cfg = load_config(path)
    except ConfigError as e:
        raise PackagingError(str(e)) from None
    if cfg.ledger.backend != "tablestore":
        raise PackagingError(
            f"{path}: ledger.backend is {cfg.ledger.backend!r}, but a function's disk is read-only (/code) or "
            "private to one instance (/tmp), so the exactly-once gate would not hold across instances; set "
            "ledger.backend: tablestore with ledger.endpoint and ledger.instance (docs/DEPLOY.md)")


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
        probe = subprocess.run([*cmd, "-c", f"import sys; assert sys.version_info[:2] == {RUNTIME_VERSION!r}"],
                               capture_output=True, check=False)
        if probe.returncode == 0:
            return cmd
    raise PackagingError(f"the dependencies must be installed by a Python {want} (the FC runtime's), and none "
                         f"runs here; install Python {want} (e.g. `pyenv install {want}`) or build under it")


def install_dependencies(requirements: list[str], target: Path) -> None:
    """pip-install ``requirements`` for the FC platform into ``target``; reused while the inputs are unchanged."""
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
    print(f"dependencies: pip install {len(requirements)} pinned requirements for python3.10 manylinux x86_64")
    result = subprocess.run(cmd, check=False)
    if result.returncode != 0:
        shutil.rmtree(target, ignore_errors=True)
        raise PackagingError(
            f"pip install failed (exit {result.returncode}); see pip's message above. Every dependency must "
            "have a manylinux2014 x86_64 (or pure-Python) wheel for CPython 3.10; check the network or the "
            "package index, or build with --no-deps and supply the dependencies as an FC layer")
    stamp_file.write_text(json.dumps(stamp, indent=1), encoding="utf-8")


def _link_or_copy(src: str, dst: str) -> str:
    """Hard-link (free, same bytes) and fall back to a copy across file systems."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)
    return dst


def assert_no_localcloud(path: Path) -> None:
    """The emulator is test tooling and never deployed; refuse a package that carries it."""
    found = [p for p in path.rglob(f"{FORBIDDEN}*") if p.name == FORBIDDEN or p.name.startswith(FORBIDDEN + ".")
             or p.name.startswith(FORBIDDEN + "-")]
    if found:
        raise PackagingError(f"{path} contains {found[0]}: {FORBIDDEN} (the emulator) must never be deployed; "
                             "remove it from shared/ and from the project's dependencies")


def compile_for_runtime(path: Path) -> bool:
    """Precompile bytecode when this Python is the runtime's (3.10): FC's /code is read-only, so without it
    every cold start compiles every module again. Hash-checked .pyc stay valid after zip changes mtimes and
    are ignored if someone edits a source file in the console."""
    if sys.version_info[:2] != RUNTIME_VERSION:
        return False
    ok = compileall.compile_dir(str(path), quiet=1, workers=0,
                                invalidation_mode=py_compile.PycInvalidationMode.CHECKED_HASH)
    if not ok:
        raise PackagingError(f"bytecode compilation failed under {path}; see the errors above")
    return True


def _size(path: Path) -> tuple[int, int]:
    total = files = 0
    for p in path.rglob("*"):
        if p.is_file():
            total += p.stat().st_size
            files += 1
    return total, files


def build_function(name: str, out: Path, config: Path, *, root: Path = REPO_ROOT,
                   deps: Path | None = None, compile_bytecode: bool = True) -> FunctionPackage:
    """Write ``out/<name>/`` from scratch: index.py, acrsync, acrsync.yaml and (if given) the dependencies."""
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
    deps_bytes = 0
    if deps is not None:
        shutil.copytree(deps, dest, ignore=_DEPS_IGNORE, copy_function=_link_or_copy, dirs_exist_ok=True)
        deps_bytes, _ = _size(dest)
    if (dest / "acrsync").exists():
        raise PackagingError(f"a dependency installed a top-level 'acrsync' into {deps}; it would shadow the "
                             "project's package. Remove it from [project].dependencies")
    shutil.copy2(entry, dest / "index.py")
    shutil.copytree(package_src, dest / "acrsync", ignore=_SOURCE_IGNORE)
    shutil.copy2(config, dest / CONFIG_NAME)
    assert_no_localcloud(dest)
    if compile_bytecode:
        compile_for_runtime(dest / "acrsync")
    total, files = _size(dest)
    return FunctionPackage(name=name, path=dest, code_bytes=total - deps_bytes, deps_bytes=deps_bytes, files=files)


def build(out: Path, *, config: str | os.PathLike | None = None, root: Path = REPO_ROOT,
          functions: list[str] | None = None, with_deps: bool = True,
          compile_bytecode: bool = True) -> list[FunctionPackage]:
    """Build every requested function (default: all under functions/) into ``out``."""
    cfg = resolve_config(config)
    names = functions or discover_functions(root)
    if not names:
        raise PackagingError(f"no functions to package: {root / 'functions'} has no <name>/index.py")
    if DEPS_DIR in names:
        raise PackagingError(f"{DEPS_DIR} is reserved for the shared dependencies; rename that function")
    out.mkdir(parents=True, exist_ok=True)
    deps = None
    if with_deps:
        deps = out / DEPS_DIR
        install_dependencies(read_dependencies(root / "pyproject.toml"), deps)
        assert_no_localcloud(deps)
        if compile_bytecode:
            compile_for_runtime(deps)
    return [build_function(n, out, cfg, root=root, deps=deps, compile_bytecode=compile_bytecode)
            for n in names]


# ---------------------------------------------------------------- command line


def _mib(n: int) -> str:
    return f"{n / 1024 / 1024:.1f} MiB"


def summary(packages: list[FunctionPackage]) -> str:
    """One line per function: where it is and what it weighs unzipped."""
    width = max(len(p.name) for p in packages)
    return "\n".join(f"{p.name:<{width}}  {_mib(p.total_bytes):>10}  (code {_mib(p.code_bytes)}, dependencies "
                     f"{_mib(p.deps_bytes)}, {p.files} files)  {p.path}" for p in packages)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m acrsync.packaging", description=__doc__.splitlines()[0])
    parser.add_argument("outdir", type=Path, help="where to write <function>/ (s.yaml expects build/fc)")
    parser.add_argument("--config", help=f"replication config to package (default: ${CONFIG_ENV})")
    parser.add_argument("--no-deps", action="store_true",
                        help="skip pip (tests, or dependencies supplied another way, e.g. an FC layer)")
    parser.add_argument("--no-compile", action="store_true", help="do not precompile bytecode")
    parser.add_argument("--function", action="append", dest="functions", metavar="NAME",
                        help="package only this function (repeatable; default: every functions/<name>)")
    parser.add_argument("--root", type=Path, default=REPO_ROOT, help="repository root (default: %(default)s)")
    args = parser.parse_args(argv)
    try:
        packages = build(args.outdir, config=args.config, root=args.root, functions=args.functions,
                         with_deps=not args.no_deps, compile_bytecode=not args.no_compile)
    except PackagingError as e:
        print(f"acrsync.packaging: {e}", file=sys.stderr)
        return 2
    print(summary(packages))
    if not args.no_compile and sys.version_info[:2] != RUNTIME_VERSION:
        print(f"note: bytecode not precompiled (this is Python {sys.version_info[0]}.{sys.version_info[1]}, "
              "the runtime is 3.10); cold starts compile it instead")
    return 0


if __name__ == "__main__":
    sys.exit(main())
