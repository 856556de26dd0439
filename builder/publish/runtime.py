"""What the binaries need at run time: files published beside them, and environment pointing at them.

T-MAC's fork reads its kernel configuration (kcfg.ini, in the dependency's
prefix) from TMAC_KCFG_FILE first (its compiled-in default is set to plain
kcfg.ini by sources.toml, so that no path of this machine is in the binary):
the file is published to dist/<variant>/share/ and the variable points there.
[NAME.runtime] in sources.toml: files = ["{dep:t-mac}/lib/kcfg.ini"],
env = { TMAC_KCFG_FILE = "{share}/kcfg.ini" }; the manifest records both.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import BuildError
from ..plan.plan import Plan


def files(plan: Plan) -> dict[str, Path]:
    """share/<name> -> the file to publish there."""
    prefixes = {f"{{dep:{d.name}}}": d.prefix for d in plan.deps}
    out: dict[str, Path] = {}
    for template in plan.source.runtime_files:
        path = template
        for key, prefix in prefixes.items():
            path = path.replace(key, str(prefix))
        if "{" in path:
            raise BuildError(
                f"{plan.source.file}: {plan.source.name}.runtime.files: {template} names no dependency of it"
            )
        found = Path(path)
        if not found.is_file():
            raise BuildError(f"{plan.name}: {found} (runtime file of {plan.source.name}) was not produced")
        out[f"share/{found.name}"] = found
    return out


def env(templates: dict[str, str], folder: Path) -> dict[str, str]:
    """The runtime environment for a published folder ({share} is its share/)."""
    return {k: v.replace("{share}", str(folder / "share")) for k, v in templates.items()}
