"""The FC code packages built by ``python -m acrsync.packaging`` (``make package``): layout, importability
from the package directory alone, and that the emulator never ships."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from acrsync import packaging
from acrsync.packaging import PackagingError, assert_no_localcloud, build, read_dependencies, resolve_config
from tests.deploy.deploy_world import FUNCTIONS, REPO_ROOT

# Made-up demo accounts and instances: nothing here exists.
CONFIG = """\
source: {account_id: "1111111111111111", region: cn-hangzhou, instance_id: cri-madeupsource01}
targets:
  - {name: beijing, account_id: "2222222222222222", region: cn-beijing, instance_id: cri-madeuptarget01}
ledger: {backend: tablestore, endpoint: "https://acrsync.cn-hangzhou.ots.aliyuncs.com", instance: acrsync}
"""
PROBE = """\
import acrsync.config


def handler(event, context):
    return acrsync.config.load_config().source.instance_id
"""


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "replication.yaml"
    path.write_text(CONFIG, encoding="utf-8")
    return path


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A repository with one probe function and the real acrsync, plus things that must not be packaged."""
    root = tmp_path / "repo"
    for name in ("probe", "probe2"):
        (root / "functions" / name).mkdir(parents=True)
        (root / "functions" / name / "index.py").write_text(PROBE, encoding="utf-8")
    (root / "functions" / "no_entry_point").mkdir()
    shutil.copytree(REPO_ROOT / "shared" / "acrsync", root / "shared" / "acrsync",
                    ignore=shutil.ignore_patterns("__pycache__"))
    (root / "shared" / "acrsync" / "tests").mkdir()
    (root / "shared" / "acrsync" / "tests" / "test_x.py").write_text("", encoding="utf-8")
    (root / "shared" / "acrsync" / "__pycache__").mkdir()
    (root / "shared" / "acrsync" / "__pycache__" / "stale.cpython-39.pyc").write_bytes(b"\0")
    shutil.copy2(REPO_ROOT / "pyproject.toml", root / "pyproject.toml")
    return root


def _import_in(function_dir: Path, code: str, pythonpath: str = "", python: list[str] | None = None,
               ) -> subprocess.CompletedProcess:
    """Run ``code`` the way FC runs the handler: cwd = the code directory, nothing else of this checkout
    importable (-S: no site-packages unless ``pythonpath`` names them)."""
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": pythonpath,
           "ACRSYNC_CONFIG": str(function_dir / "acrsync.yaml"),
           "ALIBABA_CLOUD_ECS_METADATA_DISABLED": "true"}
    if "PYENV_ROOT" in os.environ:
        env["PYENV_ROOT"] = os.environ["PYENV_ROOT"]
    env["HOME"] = os.environ.get("HOME", "/root")
    return subprocess.run([*(python or [sys.executable]), "-S", "-c", code], cwd=function_dir, env=env,
                          capture_output=True, text=True, timeout=120, check=False)


IMPORT_CHECK = """\
import sys, index, acrsync
assert acrsync.__file__.startswith({dir!r}), acrsync.__file__
assert "localcloud" not in sys.modules
from acrsync.config import load_config
print(load_config("acrsync.yaml").source.instance_id)
"""


def _files(path: Path) -> set[str]:
    return {str(p.relative_to(path)) for p in path.rglob("*")}


# ------------------------------------------------------------------ layout


def test_layout_without_dependencies(root, config, tmp_path):
    out = tmp_path / "build" / "fc"
    result = build(out, config=config, root=root, with_deps=False, compile_bytecode=False)
    assert [p.name for p in result.functions] == ["probe", "probe2"]      # no_entry_point has no index.py
    assert result.layer is None and result.layer_name.startswith(packaging.LAYER_PREFIX)
    fdir = out / "probe"
    assert (fdir / "index.py").read_text(encoding="utf-8") == PROBE
    assert (fdir / "acrsync.yaml").read_text(encoding="utf-8") == CONFIG
    assert (fdir / "acrsync" / "__init__.py").is_file()
    files = _files(fdir)
    # Never in a function: the CLI, the demo, this builder, test code, bytecode of the builder's Python.
    assert not [f for f in files if {"tests", "__pycache__", "cli"} & set(Path(f).parts)], files
    assert not {"acrsync/packaging.py", "acrsync/demo.py", "acrsync/__main__.py"} & files
    assert zipfile.ZipFile(out / "probe.zip").namelist() == sorted(f for f in files if (fdir / f).is_file())
    assert not (out / packaging.DEPS_DIR).exists()


def test_bytecode_is_compiled_for_the_runtime_at_its_deployed_path(root, config, tmp_path):
    out = tmp_path / "out"
    build(out, config=config, root=root, functions=["probe"], with_deps=False)
    pycs = {p.name for p in (out / "probe" / "acrsync").rglob("*.pyc")}
    assert "config.cpython-310.pyc" in pycs
    assert "stale.cpython-39.pyc" not in pycs
    pyc = (out / "probe" / "acrsync" / "__pycache__" / "config.cpython-310.pyc").read_bytes()
    assert b"/code/acrsync/config.py" in pyc and str(out).encode() not in pyc


def test_rebuild_replaces_stale_files_and_is_byte_identical(root, config, tmp_path):
    out = tmp_path / "out"
    build(out, config=config, root=root, functions=["probe"], with_deps=False)
    first = (out / "probe.zip").read_bytes()
    (out / "probe" / "leftover.py").write_text("", encoding="utf-8")
    build(out, config=config, root=root, functions=["probe"], with_deps=False)
    assert not (out / "probe" / "leftover.py").exists()
    elsewhere = tmp_path / "elsewhere"
    build(elsewhere, config=config, root=root, functions=["probe"], with_deps=False)
    assert (out / "probe.zip").read_bytes() == first == (elsewhere / "probe.zip").read_bytes()


def test_zip_entries_are_normalised(tmp_path):
    (tmp_path / "d" / "sub").mkdir(parents=True)
    (tmp_path / "d" / "b.py").write_text("b", encoding="utf-8")
    (tmp_path / "d" / "sub" / "run").write_text("x", encoding="utf-8")
    os.chmod(tmp_path / "d" / "sub" / "run", 0o700)
    packaging.write_zip(tmp_path / "d", tmp_path / "out.zip", prefix="python/")
    infos = zipfile.ZipFile(tmp_path / "out.zip").infolist()
    assert [i.filename for i in infos] == ["python/b.py", "python/sub/run"]
    assert {i.date_time for i in infos} == {packaging.ZIP_EPOCH}
    assert [(i.external_attr >> 16) & 0o777 for i in infos] == [0o644, 0o755]


def test_importable_from_the_package_directory(root, config, tmp_path):
    out = tmp_path / "out"
    build(out, config=config, root=root, with_deps=False)
    fdir = out / "probe"
    # --no-deps: the third-party packages come from this venv's site-packages, acrsync only from fdir.
    result = _import_in(fdir, IMPORT_CHECK.format(dir=str(fdir)) + "print(index.handler(b'{}', None))",
                        sysconfig.get_paths()["purelib"])
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["cri-madeupsource01", "cri-madeupsource01"]


# ------------------------------------------------------------------ the layer: what is pruned, its name


@pytest.mark.parametrize("path,pruned", [
    ("numpy", True), ("numpy.libs", True), ("numpy-2.4.6.dist-info", True),
    ("tablestore/ots_sdk/ots_sdk.so", True), ("tablestore/ots_sdk/__init__.py", False),
    ("tablestore/native/native_plainbuffer.cpython-313-darwin.so", True), ("x/libfoo.dylib", True),
    ("future/tests", True), ("a/b/tests", True), ("tests", False), ("bin", True), ("libfuturize", True),
    ("pydantic", False), ("tablestore", False),
    ("aiohttp/_http_parser.cpython-310-x86_64-linux-gnu.so", False),
])
def test_what_the_layer_leaves_out(path, pruned):
    assert packaging._pruned(path) is pruned


def test_prune_copy(tmp_path):
    src = tmp_path / "deps"
    for rel in ("numpy/__init__.py", "pkg/__init__.py", "pkg/tests/test_a.py", "bin/tool",
                "tablestore/ots_sdk/ots_sdk.so", "tablestore/ots_sdk/__init__.py"):
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_text("", encoding="utf-8")
    packaging.prune_copy(src, tmp_path / "layer")
    assert _files(tmp_path / "layer") == {"pkg", "pkg/__init__.py", "tablestore", "tablestore/ots_sdk",
                                          "tablestore/ots_sdk/__init__.py"}


def test_the_cli_libraries_are_not_installed_for_functions():
    pins = read_dependencies(REPO_ROOT / "pyproject.toml")
    kept = packaging.function_requirements(pins)
    assert [p for p in pins if p not in kept] == [p for p in pins
                                                  if p.lower().startswith(("typer==", "rich=="))]
    assert packaging.function_requirements(["Typer[all]==1",
                                            "rich>=2; python_version<'4'", "a==1"]) == ["a==1"]


def test_the_layer_name_follows_the_pins():
    a = packaging.layer_name(["a==1", "b==2"])
    assert a == packaging.layer_name(["b==2", "a==1"])            # order does not matter
    assert a != packaging.layer_name(["a==1", "b==3"])
    assert re.fullmatch(r"acrsync-deps-py310-[0-9a-f]{8}", a)


def test_a_stale_layer_name_is_refused(root, config, tmp_path):
    with pytest.raises(PackagingError, match="acrsync-deps-py310-00000000.*set vars.layerName: acrsync-deps"):
        build(tmp_path / "out", config=config, root=root, with_deps=False,
              expected_layer="acrsync-deps-py310-00000000")


# ------------------------------------------------------------------ regions


def test_a_config_for_another_region_is_refused_naming_both(root, config, tmp_path):
    with pytest.raises(PackagingError, match="vars.region .* is cn-beijing but source.region .* is "
                                             "cn-hangzhou"):
        build(tmp_path / "out", config=config, root=root, with_deps=False, region="cn-beijing")
    build(tmp_path / "out", config=config, root=root, with_deps=False, region="cn-hangzhou")


def test_a_ledger_in_another_region_is_refused(tmp_path):
    other = tmp_path / "other.yaml"
    other.write_text(CONFIG.replace("acrsync.cn-hangzhou.ots", "acrsync.cn-shanghai.ots"), encoding="utf-8")
    with pytest.raises(PackagingError, match="ledger.endpoint is in region cn-shanghai but source.region is "
                                             "cn-hangzhou"):
        resolve_config(other)


# ------------------------------------------------------------------ the emulator never ships


@pytest.mark.parametrize("planted", ["localcloud/__init__.py", "sub/localcloud/x.py", "localcloud.py",
                                     "localcloud-0.1.0.dist-info/METADATA"])
def test_localcloud_is_refused(tmp_path, planted):
    (tmp_path / planted).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / planted).write_text("", encoding="utf-8")
    with pytest.raises(PackagingError, match="never be deployed"):
        assert_no_localcloud(tmp_path)


def test_a_package_carrying_localcloud_is_not_built(root, config, tmp_path):
    (root / "shared" / "acrsync" / "localcloud").mkdir()
    (root / "shared" / "acrsync" / "localcloud" / "__init__.py").write_text("", encoding="utf-8")
    with pytest.raises(PackagingError, match="localcloud"):
        build(tmp_path / "out", config=config, root=root, with_deps=False)


def test_assert_no_localcloud_accepts_a_clean_tree(root):
    assert_no_localcloud(root / "shared")


# ------------------------------------------------------------------ inputs


def test_config_is_required(monkeypatch):
    monkeypatch.delenv(packaging.CONFIG_ENV, raising=False)
    with pytest.raises(PackagingError, match="--config"):
        resolve_config(None)


def test_config_from_the_environment(monkeypatch, config):
    monkeypatch.setenv(packaging.CONFIG_ENV, str(config))
    assert resolve_config(None) == config


def test_missing_config_file(tmp_path):
    with pytest.raises(PackagingError, match="does not exist"):
        resolve_config(tmp_path / "nope.yaml")


def test_invalid_config_is_refused_with_the_field(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(CONFIG.replace("cri-madeupsource01", "not-an-instance"), encoding="utf-8")
    with pytest.raises(PackagingError, match="instance_id"):
        resolve_config(bad)


def test_sqlite_ledger_is_refused(tmp_path):
    sqlite = tmp_path / "sqlite.yaml"
    sqlite.write_text(CONFIG.split("ledger:")[0] + "ledger: {backend: sqlite}\n", encoding="utf-8")
    with pytest.raises(PackagingError, match="tablestore"):
        resolve_config(sqlite)


def test_missing_entry_point(root, config, tmp_path):
    with pytest.raises(PackagingError, match="functions/no_entry_point/index.py"):
        build(tmp_path / "out", config=config, root=root, functions=["no_entry_point"], with_deps=False)


def test_dependencies_are_the_projects_pins():
    try:
        import tomllib
    except ModuleNotFoundError:   # Python 3.10: pytest brings tomli
        import tomli as tomllib
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    expected = pyproject["project"]["dependencies"]
    assert read_dependencies(REPO_ROOT / "pyproject.toml") == expected
    assert packaging._project_dependencies((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"),
                                           Path("pyproject.toml")) == expected
    assert all("==" in d for d in expected), "every runtime dependency is pinned"


def test_dependency_parser_reads_only_the_project_table():
    text = """\
[tool.other]
dependencies = ["wrong==1"]

[project]
name = "x"
dependencies = [
  "a==1",   # a comment, with "quotes"
  'b[extra]==2; python_version < "3.11"',
]

[project.optional-dependencies]
dev = ["c==3"]
"""
    assert packaging._project_dependencies(text, Path("t")) == ["a==1", 'b[extra]==2; python_version '
                                                                        '< "3.11"']
    with pytest.raises(PackagingError, match="no \\[project\\].dependencies"):
        packaging._project_dependencies("[project]\nname = 'x'\n", Path("t"))


# ------------------------------------------------------------------ command line


def test_cli(root, config, tmp_path, capsys):
    out = tmp_path / "out"
    code = packaging.main([str(out), "--config", str(config), "--no-deps", "--root", str(root),
                           "--function", "probe"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "probe" in printed and "MiB" in printed and "probe2" not in printed
    assert (out / "probe" / "index.py").is_file()


def test_cli_reports_errors(root, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv(packaging.CONFIG_ENV, raising=False)
    assert packaging.main([str(tmp_path / "out"), "--no-deps", "--root", str(root)]) == 2
    assert "--config" in capsys.readouterr().err


# ------------------------------------------------------------------ the real functions


def test_the_packaged_functions_are_the_deployed_ones():
    assert set(packaging.discover_functions()) == set(FUNCTIONS), "functions/*/index.py and s.yaml disagree"


@pytest.mark.parametrize("name", FUNCTIONS)
def test_each_deployed_function_packages_and_imports(config, tmp_path, name):
    (package,) = build(tmp_path / "build" / "fc", config=config, functions=[name], with_deps=False).functions
    result = _import_in(package.path, IMPORT_CHECK.format(dir=str(package.path)),
                        sysconfig.get_paths()["purelib"])
    assert result.returncode == 0, f"{name}: {result.stderr}"
    assert not [f for f in _files(package.path) if "localcloud" in f]
