"""Compile the SIP core with mypyc: ``python -m tools.build_native [--clean]``.

The call path (parser, messages, transactions, dialogs, the B2BUA's calls and the server glue)
is plain typed Python; mypyc turns the same source into C extensions next to the ``.py`` files,
which makes a call about a third cheaper (``python -m bench.callpath``, README "Performance").
Nothing else changes: the sources stay the truth, ``mypy --strict`` already checks what mypyc
needs, and without a C compiler Vidare runs the same modules as pure Python.

``make native`` (a dependency of ``make run``, ``make test`` and ``make bench``) rebuilds when a
source changed. ``sipcore/__init__.py`` refuses to import a compiled module older than its
source, so an edit is never silently shadowed by a stale build.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "sipcore"
BUILD = ROOT / "build" / "native"
# Modules that stay interpreted: asyncio protocol subclasses and start-up helpers (no hot path).
INTERPRETED = {"aio/transport.py", "aio/runtime.py", "aio/logconfig.py"}
GROUP = "sipcore._native"  # the shared runtime library lives inside the package


def sources() -> list[str]:
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        if path.name == "__init__.py" or rel in INTERPRETED:
            continue
        out.append(path.relative_to(ROOT).as_posix())
    return out


def built() -> list[Path]:
    suffix = sysconfig.get_config_var("EXT_SUFFIX") or ".so"
    return sorted(p for p in PACKAGE.rglob(f"*{suffix}"))


def clean() -> None:
    for path in built():
        path.unlink()
    shutil.rmtree(BUILD, ignore_errors=True)


def build() -> int:
    compiler = sysconfig.get_config_var("CC") or "cc"
    if shutil.which(compiler.split()[0]) is None:
        print(f"build_native: no C compiler ({compiler}); the SIP core runs as pure Python", file=sys.stderr)
        clean()
        return 0
    import warnings

    from mypyc.build import mypycify
    from setuptools import setup  # type: ignore[import-untyped]

    warnings.filterwarnings("ignore", message=".*tool.setuptools.*")  # it reads our pyproject.toml

    os.chdir(ROOT)
    clean()
    setup(
        name="vidare-native",
        ext_modules=mypycify(sources(), group_name=GROUP, opt_level="3", debug_level="0"),
        script_args=["-q", "build_ext", "--inplace", "--build-temp", str(BUILD), "--parallel", "2"],
    )
    # Each module's .so is a shim into the shared library and is left as it was when only the
    # code changed: stamp them all, so that sipcore's staleness check compares with this build.
    for path in built():
        path.touch()
    print(f"build_native: {len(built()) - 1} modules of sipcore compiled with mypyc")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tools.build_native", description=__doc__.split("\n")[0])
    ap.add_argument("--clean", action="store_true", help="remove the compiled modules (back to pure Python)")
    args = ap.parse_args(argv)
    if args.clean:
        clean()
        return 0
    return build()


if __name__ == "__main__":
    raise SystemExit(main())
