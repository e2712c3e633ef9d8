"""Generate Python code from protos/, and run buf lint and buf breaking offline.

    python scripts/protos.py gen         # rewrite generated/
    python scripts/protos.py gen --out D # write into D instead (the staleness test)
    python scripts/protos.py lint        # buf lint
    python scripts/protos.py breaking    # buf breaking against the previous commit

google/api/*.proto come from the googleapis-common-protos wheel: they are copied at
run time into a git-ignored folder that buf.yaml names as a second module, so neither
protoc nor buf ever reaches the network.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import google.api
import grpc_tools

ROOT = Path(__file__).resolve().parent.parent
PROTOS = ROOT / "protos"
GENERATED = ROOT / "generated"
DEPS = ROOT / ".build" / "protodeps"
BIN = Path(sys.executable).parent
GOOGLE_API_PROTOS = ("annotations.proto", "http.proto")


def proto_files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*.proto"))


def googleapis_root() -> Path:
    # google.api is a namespace-free package inside the wheel: its parent's
    # parent is the include root that holds google/api/*.proto.
    return Path(next(iter(google.api.__path__))).parent.parent


def generate(out: Path) -> None:
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    well_known = Path(next(iter(grpc_tools.__path__))) / "_proto"
    cmd = [
        sys.executable,
        "-m",
        "grpc_tools.protoc",
        f"-I{PROTOS}",
        f"-I{googleapis_root()}",
        f"-I{well_known}",
        f"--python_out={out}",
        f"--mypy_out={out}",
        f"--grpc_python_out={out}",
        f"--mypy_grpc_out={out}",
        f"--plugin=protoc-gen-mypy={BIN / 'protoc-gen-mypy'}",
        f"--plugin=protoc-gen-mypy_grpc={BIN / 'protoc-gen-mypy_grpc'}",
        *proto_files(PROTOS),
    ]
    subprocess.run(cmd, check=True)
    for folder in {p.parent for p in out.rglob("*_pb2.py")}:
        while folder != out:
            (folder / "__init__.py").touch()
            folder = folder.parent
    (out / "py.typed").touch()


def materialize_deps(target: Path) -> None:
    api = target / "google" / "api"
    api.mkdir(parents=True, exist_ok=True)
    for name in GOOGLE_API_PROTOS:
        shutil.copyfile(googleapis_root() / "google" / "api" / name, api / name)


def buf(*args: str, cwd: Path = ROOT) -> int:
    return subprocess.run([str(BIN / "buf"), *args], cwd=cwd).returncode


def lint() -> int:
    materialize_deps(DEPS)
    return buf("lint")


def breaking(against: str) -> int:
    """Compare protos/ with the same folder at git revision `against`."""
    materialize_deps(DEPS)
    listed = subprocess.run(
        ["git", "ls-tree", "-r", "--name-only", against, "--", "protos", "buf.yaml"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    if listed.returncode != 0 or "buf.yaml" not in listed.stdout.split():
        print(f"buf breaking: {against} has no buf module yet; nothing to compare")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        old = Path(tmp)
        for name in listed.stdout.split():
            blob = subprocess.run(
                ["git", "show", f"{against}:{name}"], cwd=ROOT, capture_output=True, check=True
            ).stdout
            (old / name).parent.mkdir(parents=True, exist_ok=True)
            (old / name).write_bytes(blob)
        materialize_deps(old / ".build" / "protodeps")
        # Both sides as single images: a workspace input would be one image a module.
        previous, current = old / "previous.binpb", old / "current.binpb"
        if buf("build", "-o", str(previous), cwd=old) or buf("build", "-o", str(current)):
            return 1
        return buf("breaking", str(current), "--against", str(previous))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    gen = sub.add_parser("gen")
    gen.add_argument("--out", type=Path, default=GENERATED)
    sub.add_parser("lint")
    brk = sub.add_parser("breaking")
    brk.add_argument("--against", default="HEAD~1")
    args = parser.parse_args()
    if args.command == "gen":
        generate(args.out)
        return 0
    if args.command == "lint":
        return lint()
    return breaking(args.against)


if __name__ == "__main__":
    sys.exit(main())
