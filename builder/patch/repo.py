"""Reading repository state with GitPython: the commits of a series branch, their messages,
authors and trailers, refs (edit branches, revision refs) and ancestry.

GitPython reads objects through one long-lived `git cat-file --batch` and reads
refs from the files themselves, so listing a series' commits, their messages
and trailers costs no process per question. What writes or merges (am,
worktree, format-patch, range-diff, patch-id) stays on the git command line
through builder/git.py.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import git as gitpython
from gitdb.exc import BadName, BadObject  # type: ignore[import-untyped]

from ..errors import UserError

TRAILER_KEYS = ("Signed-off-by", "Co-authored-by", "Reviewed-by", "Tested-by", "Acked-by", "Link", "Fixes")


@dataclass(frozen=True)
class CommitInfo:
    sha: str
    subject: str
    body: str  # the message after the subject, trailers included
    author: str  # "Name <email>"
    authored: int  # seconds since the epoch
    parents: tuple[str, ...]
    files: tuple[str, ...]
    trailers: tuple[tuple[str, str], ...]

    @property
    def prose(self) -> str:
        """The body without its trailer block (Signed-off-by: and friends)."""
        lines = self.body.rstrip().splitlines()
        keys = {k for k, _ in self.trailers} | set(TRAILER_KEYS)
        while lines and (not lines[-1].strip() or lines[-1].split(":", 1)[0] in keys):
            lines.pop()
        return "\n".join(lines).strip()


@contextlib.contextmanager
def opened(path: Path) -> Iterator[gitpython.Repo]:
    """A GitPython repo for a worktree or a bare mirror; its cat-file processes end with the block."""
    try:
        repo = gitpython.Repo(path)
    except (gitpython.InvalidGitRepositoryError, gitpython.NoSuchPathError) as exc:
        raise UserError(f"{path}: not a git repository or worktree") from exc
    try:
        yield repo
    finally:
        repo.close()


def _info(c: gitpython.Commit) -> CommitInfo:
    message = c.message if isinstance(c.message, str) else c.message.decode(errors="replace")
    subject, _, body = message.partition("\n")
    return CommitInfo(
        sha=c.hexsha,
        subject=subject.strip(),
        body=body.strip("\n"),
        author=f"{c.author.name} <{c.author.email}>",
        authored=c.authored_date,
        parents=tuple(p.hexsha for p in c.parents),
        files=tuple(sorted(str(f) for f in c.stats.files)),
        trailers=tuple(c.trailers_list),
    )


def resolve(path: Path, rev: str) -> str | None:
    """The full commit id of rev in the repository at path, or None if it has no such commit."""
    with opened(path) as repo:
        try:
            return str(repo.commit(rev).hexsha)
        except (BadName, BadObject, ValueError, gitpython.GitCommandError):
            return None


def commits(path: Path, base: str, head: str = "HEAD") -> list[CommitInfo]:
    """The commits base..head, oldest first; a merge commit is refused (a series is a line)."""
    with opened(path) as repo:
        if not repo.is_ancestor(repo.commit(base), repo.commit(head)):
            raise UserError(f"{path}: {head} is not based on {base[:12]} (was the branch rebased by hand?)")
        found = [_info(c) for c in repo.iter_commits(f"{base}..{head}", reverse=True)]
    for c in found:
        if len(c.parents) != 1:
            raise UserError(f"{path}: {c.sha[:12]} ({c.subject!r}) is a merge; a series is a line of commits")
    return found


def commit(path: Path, rev: str) -> CommitInfo:
    with opened(path) as repo:
        return _info(repo.commit(rev))


def is_ancestor(path: Path, ancestor: str, rev: str) -> bool:
    with opened(path) as repo:
        return bool(repo.is_ancestor(repo.commit(ancestor), repo.commit(rev)))


def ref(path: Path, name: str) -> str | None:
    """The commit a full ref name (refs/...) points at, or None."""
    with opened(path) as repo:
        try:
            return str(gitpython.Reference(repo, name).commit.hexsha)
        except (ValueError, BadName, BadObject):
            return None


def set_ref(path: Path, name: str, sha: str) -> None:
    with opened(path) as repo:
        gitpython.Reference.create(repo, name, sha, force=True, logmsg="llama-variants")


def refs(path: Path, prefix: str) -> dict[str, str]:
    """Every ref under prefix (e.g. refs/series/llama.cpp/NAME/) -> its commit."""
    with opened(path) as repo:
        out = {}
        for r in repo.references:
            if r.path.startswith(prefix):
                with contextlib.suppress(ValueError):
                    out[r.path] = r.commit.hexsha
        return out


def in_progress(worktree: Path) -> str | None:
    """ "am" or "rebase" when one stopped half-way in this worktree (a conflict), else None."""
    with opened(worktree) as repo:
        gd = Path(repo.git_dir)
    if (gd / "rebase-apply" / "applying").exists():
        return "am"
    if (gd / "rebase-apply").is_dir() or (gd / "rebase-merge").is_dir():
        return "rebase"
    return None


def dirty(worktree: Path) -> bool:
    with opened(worktree) as repo:
        return bool(repo.is_dirty(index=True, working_tree=True, untracked_files=False))
