"""Build hook of steward-client: generates the gRPC stubs from Steward's protos.

`build_py` runs `grpc_tools.protoc` over `proto/steward/**/*.proto` into the build directory
(into the source tree for editable installs), so `pip install ./clients/python` is one step.
The protos are looked up in `$STEWARD_PROTO_DIR`, then `proto/` beside this file (where an
sdist keeps them), then the repository's `proto/` two levels up.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.command.sdist import sdist

HERE = Path(__file__).resolve().parent


def proto_dir() -> Path:
    candidates = [os.environ.get("STEWARD_PROTO_DIR"), HERE / "proto", HERE.parent.parent / "proto"]
    for c in candidates:
        if c and (Path(c) / "steward").is_dir():
            return Path(c).resolve()
    raise SystemExit(
        "steward-client: Steward's protos not found (looked for proto/steward in "
        f"{', '.join(str(c) for c in candidates if c)}); set STEWARD_PROTO_DIR to the "
        "repository's proto/ directory"
    )


def generate(out: Path) -> None:
    """Generates the stubs of every steward/**/*.proto into `out` (the package root's parent)."""
    root, out = proto_dir(), out.resolve()
    protos = sorted(p.relative_to(root).as_posix() for p in (root / "steward").rglob("*.proto"))
    out.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", "-I.",
         f"--python_out={out}", f"--pyi_out={out}", f"--grpc_python_out={out}", *protos],
        cwd=root,
        check=True,
    )
    # Every generated directory below steward/ becomes a regular package; steward/__init__.py
    # itself is the hand-written client.
    for proto in protos:
        d = (out / proto).parent
        while d != out / "steward":
            (d / "__init__.py").touch()
            d = d.parent


class BuildPy(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            generate(HERE)
            return
        # Stubs of protos removed since an earlier build must not linger in build/lib.
        for d in (Path(self.build_lib) / "steward").iterdir():
            if d.is_dir():
                shutil.rmtree(d)
        generate(Path(self.build_lib))


class Sdist(sdist):
    def make_release_tree(self, base_dir: str, files: list) -> None:
        super().make_release_tree(base_dir, files)
        shutil.copytree(proto_dir() / "steward", Path(base_dir) / "proto" / "steward")


setup(cmdclass={"build_py": BuildPy, "sdist": Sdist})
