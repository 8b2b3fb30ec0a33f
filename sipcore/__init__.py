"""sipcore: Vidare's own SIP stack (sans-IO core, thin asyncio layer in ``sipcore.aio``)."""

from __future__ import annotations


def _refuse_stale_native_modules() -> None:
    # tools/build_native.py compiles these modules with mypyc; Python imports a compiled module
    # in preference to its source, so an edited source must never hide behind an older build.
    import sysconfig
    from pathlib import Path

    suffix = sysconfig.get_config_var("EXT_SUFFIX") or ".so"
    here = Path(__file__).parent
    for compiled in here.rglob(f"*{suffix}"):
        source = compiled.with_name(compiled.name[: -len(suffix)] + ".py")
        if source.exists() and source.stat().st_mtime > compiled.stat().st_mtime:
            raise ImportError(
                f"sipcore: {compiled.relative_to(here.parent)} is older than its source; "
                "run `make native` to rebuild (or `make clean-native` to run pure Python)"
            )


_refuse_stale_native_modules()
