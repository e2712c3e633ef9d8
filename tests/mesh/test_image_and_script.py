"""The image (Dockerfile, .dockerignore) and the one command (istio/cluster.sh), checked
without a container engine: hadolint and shellcheck, the rules they do not know, what
the image must contain, and that its entry points are the commands ./dev up runs."""

from __future__ import annotations

import fnmatch
import json
import shlex
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from devstack.stack import SPECS
from tests.callsites import import_closure, module_path, third_party_imports
from tests.mesh.manifests import IMAGE, ROOT, build, of_kind, pod_spec

BIN = Path(sys.executable).parent
DOCKERFILE = ROOT / "Dockerfile"
CLUSTER = ROOT / "istio" / "cluster.sh"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined."""
    lines: list[tuple[str, str]] = []
    pending = ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        pending += line.removesuffix("\\").strip() + " "
        if not line.endswith("\\"):
            word, _, rest = pending.strip().partition(" ")
            lines.append((word.upper(), rest.strip()))
            pending = ""
    return lines


def final_stage() -> list[tuple[str, str]]:
    steps = instructions()
    last_from = max(i for i, (word, _) in enumerate(steps) if word == "FROM")
    return steps[last_from:]


def test_hadolint_finds_nothing() -> None:
    run = subprocess.run(
        [str(BIN / "hadolint"), str(DOCKERFILE)], capture_output=True, text=True, check=False
    )
    assert run.returncode == 0, run.stdout + run.stderr


def test_the_final_stage_runs_as_a_non_root_user_from_a_pinned_slim_base() -> None:
    steps = instructions()
    base_args = {
        rest.split("=", 1)[0]: rest.split("=", 1)[1] for word, rest in steps if word == "ARG"
    }
    base = base_args["PYTHON_IMAGE"]
    name, _, tag = base.partition(":")
    assert name == "python"
    assert "slim" in tag
    assert tag[0].isdigit(), f"pin a release: {base}"
    assert tag.split("-")[0].count(".") == 2, f"pin a patch release: {base}"
    assert "latest" not in base
    users = [rest for word, rest in final_stage() if word == "USER"]
    assert users, "the final stage must switch user"
    assert users[-1].split(":")[0] not in ("root", "0")
    assert int(users[-1].split(":")[0]) >= 10000


def test_no_build_tools_and_no_secrets_in_the_final_stage() -> None:
    final = final_stage()
    text = " ".join(rest for _, rest in final).lower()
    for tool in ("gcc", "build-essential", "apt-get install", "pip install", "requirements-dev"):
        assert tool not in text, tool
    copied = [rest for word, rest in final if word in ("COPY", "ADD")]
    assert all(rest.startswith("--from=") for rest in copied), "only what stage 1 built"
    everything = " ".join(rest for _, rest in instructions()).lower()
    for secret in (".pem", ".key", ".env", ".data", "keys/", "secret"):
        assert secret not in everything, secret
    assert "requirements-dev" not in everything


def _ignored(path: str) -> bool:
    """Whether .dockerignore keeps `path` out of the build context (last match wins)."""
    excluded = False
    for raw in (ROOT / ".dockerignore").read_text().splitlines():
        pattern = raw.strip()
        if not pattern or pattern.startswith("#"):
            continue
        negate = pattern.startswith("!")
        pattern = pattern.removeprefix("!").rstrip("/")
        candidates = [pattern, f"{pattern}/*", pattern.removeprefix("**/")]
        if any(fnmatch.fnmatch(path, c) or fnmatch.fnmatch(Path(path).name, c) for c in candidates):
            excluded = not negate
    return excluded


def test_the_build_context_holds_no_keys_data_or_tools() -> None:
    for path in (".data/keys/jwt-ed25519.pem", "svc_user/key.pem", ".venv/bin/python", ".env"):
        assert _ignored(path), path
    for path in ("requirements.txt", "svc_user/__main__.py", "generated/trading/v1/user_pb2.py"):
        assert not _ignored(path), path


def _copied_sources() -> set[str]:
    sources: set[str] = set()
    for word, rest in instructions():
        if word == "COPY" and not rest.startswith("--from="):
            *parts, _ = shlex.split(rest)
            sources |= {part.rstrip("/") for part in parts}
    return sources


@pytest.mark.parametrize("module", [f"{spec.name}.__main__" for spec in SPECS] + ["ops.tables"])
def test_the_image_holds_every_module_each_process_imports(module: str) -> None:
    copied = _copied_sources()
    for name in import_closure(module):
        path = module_path(name)
        assert path is not None
        relative = path.relative_to(ROOT).as_posix()
        assert relative.split("/")[0] in copied or relative in copied, relative
        assert not _ignored(relative), relative
    assert "generated" in copied
    assert "requirements.txt" in copied


def _entrypoint() -> list[str]:
    (entry,) = [json.loads(rest) for word, rest in final_stage() if word == "ENTRYPOINT"]
    assert isinstance(entry, list)
    return [str(part) for part in entry]


def _commands() -> dict[str, list[str]]:
    """The command each of our workloads runs: the image's entry point + its args."""
    commands: dict[str, list[str]] = {}
    for workload in of_kind(build("kind"), "Deployment", "Job"):
        (container, *_) = pod_spec(workload)["containers"]
        if container["image"].split(":")[0] == IMAGE:
            assert "command" not in container, "keep the image's entry point"
            commands[workload["metadata"]["name"]] = _entrypoint() + list(container["args"])
    return commands


def test_the_images_entry_points_are_the_commands_dev_up_runs() -> None:
    """./dev up starts `sys.executable -m <name>` for each of devstack's specs."""
    dev_up = {spec.name: ["python", "-m", spec.name] for spec in SPECS}
    commands = _commands()
    for name, command in dev_up.items():
        assert commands.pop(name.replace("_", "-")) == command
    assert commands == {"create-tables": ["python", "-m", "ops.tables"]}


def test_the_cluster_runs_the_image_it_builds() -> None:
    script = CLUSTER.read_text()
    assert f"IMAGE={IMAGE}:dev" in script
    kustomization = (ROOT / "istio" / "base" / "kustomization.yaml").read_text()
    assert f"name: {IMAGE}" in kustomization
    assert "newTag: dev" in kustomization
    pulls: list[Any] = [
        c.get("imagePullPolicy")
        for w in of_kind(build("kind"), "Deployment", "Job")
        for c in pod_spec(w)["containers"]
        if c["image"].startswith(IMAGE)
    ]
    assert set(pulls) == {"IfNotPresent"}  # kind load puts it on the node; never pulled


@pytest.mark.parametrize("script", [CLUSTER, ROOT / "dev"])
def test_the_shell_scripts_are_shellcheck_clean(script: Path) -> None:
    run = subprocess.run(
        [str(BIN / "shellcheck"), str(script)], capture_output=True, text=True, check=False
    )
    assert run.returncode == 0, run.stdout + run.stderr


def test_the_one_command_refuses_politely_without_its_tools(tmp_path: Path) -> None:
    """With only the basic shell tools on PATH it names what is missing and changes
    nothing, whether called itself or as ./dev cluster."""
    tools = tmp_path / "bin"
    tools.mkdir()
    for name in ("bash", "dirname", "cat", "printf", "grep", "date"):
        found = shutil.which(name)
        if found is not None:
            (tools / name).symlink_to(found)
    for argv in (
        *([str(CLUSTER), command] for command in ("up", "smoke", "grpcurl", "down")),
        [str(ROOT / "dev"), "cluster", "up"],
    ):
        run = subprocess.run(
            ["/bin/bash", *argv],
            capture_output=True,
            text=True,
            env={"PATH": str(tools), "HOME": str(tmp_path)},
            timeout=30,
            check=False,
        )
        assert run.returncode == 2, run.stderr
        assert "missing here: docker kind kubectl istioctl" in run.stderr
        assert "Nothing was changed." in run.stderr
    usage = subprocess.run(
        ["/bin/bash", str(CLUSTER)], capture_output=True, text=True, timeout=30, check=False
    )
    assert usage.returncode == 2
    assert "usage: istio/cluster.sh up | smoke | grpcurl ARGS... | down" in usage.stderr


def _runtime_distributions() -> set[str]:
    """requirements.txt and everything it pulls in, as this machine resolved it: what
    the image's virtual environment holds (the build installs only that file)."""
    wanted = [
        Requirement(line.split("#")[0]).name
        for line in (ROOT / "requirements.txt").read_text().splitlines()
        if line.split("#")[0].strip()
    ]
    found: set[str] = set()
    while wanted:
        name = canonicalize_name(wanted.pop())
        if name in found:
            continue
        found.add(name)
        for text in metadata.requires(name) or []:
            requirement = Requirement(text)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                wanted.append(requirement.name)
    return found


@pytest.mark.parametrize("module", [f"{spec.name}.__main__" for spec in SPECS] + ["ops.tables"])
def test_every_package_a_process_imports_comes_from_the_runtime_requirements(
    module: str,
) -> None:
    runtime = _runtime_distributions()
    providers = metadata.packages_distributions()
    generated = {path.name for path in (ROOT / "generated").iterdir() if path.is_dir()}
    outside = set(sys.stdlib_module_names) | generated
    for name in third_party_imports(import_closure(module)) - outside:
        dists = {canonicalize_name(d) for d in providers.get(name, [])}
        assert dists & runtime, f"{module} imports {name}, which requirements.txt lacks"
