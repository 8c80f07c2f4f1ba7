"""Regenerate the gRPC and protobuf stubs of `pipeline/corrections/corrections.proto`.

    python -m pipeline.corrections.gen          # rewrite corrections_pb2*.py(i) beside it
    python -m pipeline.corrections.gen --check  # exit 1 when the committed stubs differ

With the stubs missing, `python pipeline/corrections/gen.py` does the same (the package
imports them). The stubs are committed, so the stack needs no code generation at run
time, and a unit test regenerates them into a temporary directory and compares, so they
cannot drift from the .proto. grpcio-tools' bundled protoc writes the `.py` files,
mypy-protobuf the `.pyi` files that `mypy --strict` reads. Generated files get a header
that keeps ruff off them.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Final

ROOT: Final = Path(__file__).resolve().parents[2]
PROTO: Final = "pipeline/corrections/corrections.proto"
OUTPUTS: Final = (
    "pipeline/corrections/corrections_pb2.py",
    "pipeline/corrections/corrections_pb2.pyi",
    "pipeline/corrections/corrections_pb2_grpc.py",
    "pipeline/corrections/corrections_pb2_grpc.pyi",
)
HEADER: Final = (
    "# Generated from pipeline/corrections/corrections.proto"
    " by `python -m pipeline.corrections.gen`.\n"
    "# Do not edit; edit the .proto and regenerate.\n"
    "# ruff: noqa\n"
    "# fmt: off\n"
)


def _plugin(name: str) -> str:
    """A protoc plugin installed next to this interpreter (the venv's bin/)."""
    found = Path(sys.executable).parent / name
    if found.exists():
        return str(found)
    on_path = shutil.which(name)
    if on_path is None:
        raise SystemExit(f"{name} not found: install mypy-protobuf (it is pinned in pyproject)")
    return on_path


def generate(out: Path) -> dict[str, str]:
    """Run protoc on the .proto into `out`; returns each output's text, header added."""
    # Imported here: only this command needs grpcio-tools (which ships no type hints).
    from grpc_tools import protoc  # type: ignore[import-untyped]

    args = [
        "grpc_tools.protoc",
        f"-I{ROOT}",
        f"--python_out={out}",
        f"--grpc_python_out={out}",
        f"--mypy_out={out}",
        f"--mypy_grpc_out={out}",
        f"--plugin=protoc-gen-mypy={_plugin('protoc-gen-mypy')}",
        f"--plugin=protoc-gen-mypy_grpc={_plugin('protoc-gen-mypy_grpc')}",
        str(ROOT / PROTO),
    ]
    if protoc.main(args) != 0:
        raise SystemExit(f"protoc failed on {PROTO}")
    return {name: _finish((out / name).read_text(encoding="utf-8")) for name in OUTPUTS}


def _finish(text: str) -> str:
    """The header, and mypy-protobuf's flake8-pyi pragmas dropped (ruff reads `Y015` as an
    unknown rule code even under a file-wide `ruff: noqa`)."""
    return HEADER + text.replace("  # noqa: Y015", "")


def stale() -> list[str]:
    """The committed outputs that differ from a fresh generation."""
    with tempfile.TemporaryDirectory() as tmp:
        fresh = generate(Path(tmp))
    return [
        name
        for name, text in fresh.items()
        if not (ROOT / name).exists() or (ROOT / name).read_text(encoding="utf-8") != text
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.corrections.gen")
    parser.add_argument("--check", action="store_true", help="exit 1 when the stubs are stale")
    args = parser.parse_args(argv)
    if args.check:
        differ = stale()
        for name in differ:
            print(f"{name} is stale: run python -m pipeline.corrections.gen", file=sys.stderr)
        return 1 if differ else 0
    with tempfile.TemporaryDirectory() as tmp:
        for name, text in generate(Path(tmp)).items():
            (ROOT / name).write_text(text, encoding="utf-8")
            print(f"wrote {name}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
