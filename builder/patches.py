"""Patch series (patches/<series>/): load, pin, apply with `git am --3way`, verify."""

from __future__ import annotations

import email
import email.header
import email.policy
import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from . import git
from . import tomlfile as tf
from .errors import CommandError, PatchError, SpecError, UserError

KEYS = ("description", "upstream", "status", "applies-to", "bench", "requires", "notes", "sha256")
STATUSES = ("local", "draft", "proposed", "submitted", "merged", "rejected")
Say = Callable[[str], None]


@dataclass(frozen=True)
class PatchFile:
    path: Path
    sha256: str
    subject: str
    author: str


@dataclass(frozen=True)
class Series:
    name: str
    dir: Path
    description: str
    upstream: str | None
    status: str
    applies_to: tuple[str, ...]
    bench: tuple[str, ...]
    requires: tuple[str, ...]
    patches: tuple[PatchFile, ...]


def available(patches_dir: Path) -> list[str]:
    return (
        sorted(p.name for p in patches_dir.iterdir() if (p / "series.toml").is_file())
        if patches_dir.is_dir()
        else []
    )


def _header(msg: email.message.Message, name: str) -> str:
    raw = msg.get(name, "")
    text = str(email.header.make_header(email.header.decode_header(raw)))
    return " ".join(text.split())


def read_patch(path: Path) -> PatchFile:
    data = path.read_bytes()
    msg = email.message_from_bytes(data, policy=email.policy.compat32)
    subject = re.sub(r"^\[PATCH[^\]]*\]\s*", "", _header(msg, "Subject"))
    author = _header(msg, "From")
    if not subject or not author:
        raise UserError(f"{path}: not a `git format-patch` file (no From:/Subject: header)")
    return PatchFile(path=path, sha256=hashlib.sha256(data).hexdigest(), subject=subject, author=author)


def patch_files(series_dir: Path, source: str) -> list[Path]:
    """A series may hold one folder per code base (llama.cpp/, bitnet/, ...)."""
    per_base = series_dir / source
    folder = per_base if per_base.is_dir() else series_dir
    return sorted(folder.glob("*.patch"))


def load(patches_dir: Path, name: str, source: str, *, referenced_from: Path, key: str) -> Series:
    sdir = patches_dir / name
    path = sdir / "series.toml"
    if not path.is_file():
        raise SpecError(
            referenced_from, key, f'unknown patch series "{name}"' + tf.suggest(name, available(patches_dir))
        )
    data = tf.load(path)
    tf.check_keys(path, data, KEYS)
    applies_to = tf.get_str_list(path, data, "applies-to") or ()
    if applies_to and source not in applies_to:
        raise SpecError(
            referenced_from,
            key,
            f'series "{name}" applies to {", ".join(applies_to)}, not to source "{source}"',
        )
    files = patch_files(sdir, source)
    if not files:
        raise SpecError(path, None, f"no *.patch files in {sdir} (or {sdir / source})")
    patches = tuple(read_patch(f) for f in files)
    pins = tf.get_table(path, data, "sha256")
    if pins:
        _check_pins(path, pins, patches)
    return Series(
        name=name,
        dir=sdir,
        description=tf.get_str(path, data, "description") or "",
        upstream=tf.get_str(path, data, "upstream"),
        status=tf.get_enum(path, data, "status", STATUSES) or "local",
        applies_to=applies_to,
        bench=tf.get_str_list(path, data, "bench") or (),
        requires=tf.get_str_list(path, data, "requires") or (),
        patches=patches,
    )


def _check_pins(path: Path, pins: dict[str, object], patches: tuple[PatchFile, ...]) -> None:
    by_name = {p.path.name: p for p in patches}
    for fname, pinned in pins.items():
        if fname not in by_name:
            raise SpecError(
                path,
                f"sha256.{fname}",
                "pinned, but there is no such patch file" + tf.suggest(fname, by_name),
            )
        got = by_name[fname].sha256
        if pinned != got:
            raise SpecError(
                path,
                f"sha256.{fname}",
                f"the patch changed since it was pinned (pinned {pinned}, file has {got}); "
                "review it and run `variant patch pin`",
            )
    for fname in by_name:
        if fname not in pins:
            raise SpecError(path, "sha256", f"{fname} is not pinned; run `variant patch pin`")


def pin(series_dir: Path, source: str) -> dict[str, str]:
    """Rewrite series.toml's [sha256] table (kept last in the file) from the patch files."""
    path = series_dir / "series.toml"
    text = path.read_text()
    text = re.split(r"(?m)^\[sha256\]", text)[0].rstrip() + "\n"
    pins = {f.name: read_patch(f).sha256 for f in patch_files(series_dir, source)}
    text += "\n[sha256]  # written by `variant patch pin`; a patch that changes must be re-pinned\n"
    text += "".join(f'"{n}" = "{s}"\n' for n, s in pins.items())
    path.write_text(text)
    return pins


# --- applying ------------------------------------------------------------------

_FAILED_AT = re.compile(r"error: patch failed: (?P<file>\S+):(?P<line>\d+)")
_CONFLICT = re.compile(r"CONFLICT \([^)]*\): Merge conflict in (?P<file>\S+)")
_MISSING = re.compile(r"error: (?P<file>\S+): does not exist in index")


def describe_failure(output: str) -> str:
    files = []
    for m in _FAILED_AT.finditer(output):
        files.append(f"{m['file']} (hunk at line {m['line']})")
    for rx in (_CONFLICT, _MISSING):
        files += [m["file"] for m in rx.finditer(output) if not any(f.startswith(m["file"]) for f in files)]
    return ", ".join(dict.fromkeys(files)) or "(git am gave no file name)"


def _state_file(wt: Path) -> Path:
    return wt.parent / "patch-state.json"


def _desired(base: str, series: tuple[Series, ...]) -> dict[str, object]:
    return {"base": base, "patches": [[s.name, p.path.name, p.sha256] for s in series for p in s.patches]}


def is_current(wt: Path, base: str, series: tuple[Series, ...]) -> bool:
    """True if the worktree is exactly base + these patches, with no local changes."""
    state = _state_file(wt)
    if not state.is_file():
        return False
    recorded = json.loads(state.read_text())
    if {k: recorded.get(k) for k in ("base", "patches")} != _desired(base, series):
        return False
    head = git.git("rev-parse", "HEAD", cwd=wt, check=False).stdout.strip()
    if head != recorded.get("head"):
        return False
    dirty = git.git("status", "--porcelain", "--untracked-files=no", cwd=wt).stdout.strip()
    return not dirty


def apply(wt: Path, branch: str, base: str, series: tuple[Series, ...], say: Say) -> str:
    """Put the worktree at base + every patch, one commit each; return HEAD.

    The committer date is the author date and the committer is fixed, so the
    same base and patches always give the same commits. If a patch does not
    apply, the worktree goes back to where it was and PatchError names it.
    """
    if is_current(wt, base, series):
        return git.out("rev-parse", "HEAD", cwd=wt)
    dirty = git.git("status", "--porcelain", "--untracked-files=no", cwd=wt).stdout.strip()
    if dirty:
        raise UserError(
            f"{wt} has local changes; the build worktree is managed by the tool. "
            "Use `variant patch edit` to hack on a series, or discard them with "
            f"`git -C {wt} reset --hard`"
        )
    before = git.out("rev-parse", "HEAD", cwd=wt)
    _state_file(wt).unlink(missing_ok=True)
    git.git("checkout", "--quiet", "-B", branch, base, cwd=wt)
    env = dict(git.TOOL_IDENTITY)
    for s in series:
        for p in s.patches:
            say(f"applying {s.name}/{p.path.name}")
            try:
                git.git("am", "--3way", "--quiet", "--committer-date-is-author-date", p.path, cwd=wt, env=env)
            except CommandError as exc:
                output = exc.tail
                git.git("am", "--abort", cwd=wt, check=False)
                git.git("checkout", "--quiet", "-B", branch, before, cwd=wt, check=False)
                git.git("reset", "--quiet", "--hard", before, cwd=wt, check=False)
                raise PatchError(
                    f"series {s.name}: patch {p.path.name} ({p.subject!r}) does not apply "
                    f"to {base[:12]}: {describe_failure(output)}\n"
                    + "\n".join("  | " + ln for ln in output.splitlines()[-12:])
                    + f"\nthe worktree {wt} was left as it was"
                ) from exc
    head = git.out("rev-parse", "HEAD", cwd=wt)
    _state_file(wt).write_text(json.dumps({**_desired(base, series), "head": head}, indent=1))
    return head


def applied_patch_ids(wt: Path, base: str) -> list[str]:
    """Stable patch-ids of the commits base..HEAD, oldest first."""
    revs = git.out("rev-list", "--reverse", f"{base}..HEAD", cwd=wt).split()
    return [_patch_id(git.out("show", "--format=", "--patch", r, cwd=wt), wt) for r in revs]


def file_patch_id(p: PatchFile, wt: Path) -> str:
    return _patch_id(p.path.read_text(errors="replace"), wt)


def _patch_id(diff: str, wt: Path) -> str:
    out = git.git("patch-id", "--stable", cwd=wt, input=diff).stdout.split()
    return out[0] if out else ""
