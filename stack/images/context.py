"""Build context and input hash of one Dockerfile: the Dockerfile plus exactly the files it COPYs/ADDs.

    python3 stack/images/context.py REPO_DIR DOCKERFILE [--into DIR]

Prints a sha256 over the Dockerfile's content and every source file's relative path, exec bit and
content (byte caches and egg-info left out, as they are from the context). With --into, also
copies those files (and the Dockerfile, at its own relative path) into DIR, so the builder sees a
small context instead of the repository with its virtualenvs and caches.
"""
from __future__ import annotations

import argparse
import glob
import hashlib
import json
import os
import shlex
import shutil
import sys
from pathlib import Path

SKIP_DIRS = {"__pycache__", ".pytest_cache", ".mypy_cache"}
SKIP_SUFFIXES = (".pyc", ".pyo")


def instructions(text: str) -> list[tuple[str, str]]:
    """(KEYWORD, arguments) of each instruction, continuation lines joined, comments dropped."""
    out, buf = [], ""
    for raw in text.splitlines():
        line = raw.strip()
        if not buf and (not line or line.startswith("#")):
            continue
        if buf and line.startswith("#"):
            continue
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        buf += line
        keyword, _, args = buf.strip().partition(" ")
        out.append((keyword.upper(), args.strip()))
        buf = ""
    return out


def copy_sources(text: str) -> list[str]:
    """Context paths (possibly globs) named by COPY/ADD; COPY --from=<stage> and URLs are not context."""
    sources: list[str] = []
    for keyword, args in instructions(text):
        if keyword not in ("COPY", "ADD"):
            continue
        words = json.loads(args) if args.startswith("[") else shlex.split(args)
        flags = [w for w in words if w.startswith("--")]
        if any(f.startswith("--from") for f in flags):
            continue
        paths = [w for w in words if not w.startswith("--")][:-1]
        sources += [p for p in paths if "://" not in p]
    return sources


def skipped(rel: Path) -> bool:
    return any(part in SKIP_DIRS or part.endswith(".egg-info") for part in rel.parts) or rel.name.endswith(SKIP_SUFFIXES)


def source_files(repo: Path, sources: list[str]) -> list[Path]:
    files: set[Path] = set()
    for src in sources:
        matches = glob.glob(str(repo / src.lstrip("/")))
        if not matches:
            sys.exit(f"context: COPY source {src!r} not found under {repo}")
        for m in map(Path, matches):
            candidates = [m] if m.is_file() else [p for p in m.rglob("*") if p.is_file()]
            for p in candidates:
                rel = p.relative_to(repo)
                if not skipped(rel):
                    files.add(rel)
    return sorted(files)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("repo")
    ap.add_argument("dockerfile", help="path relative to REPO")
    ap.add_argument("--into", help="copy the context into this (new or empty) folder")
    a = ap.parse_args()
    repo = Path(a.repo).resolve()
    dockerfile = repo / a.dockerfile
    text = dockerfile.read_text()
    files = source_files(repo, copy_sources(text))

    h = hashlib.sha256()
    h.update(b"dockerfile\0" + dockerfile.read_bytes() + b"\0")
    for rel in files:
        p = repo / rel
        h.update(f"{rel}\0{int(os.access(p, os.X_OK))}\0".encode())
        h.update(hashlib.sha256(p.read_bytes()).digest())
    if a.into:
        into = Path(a.into)
        for rel in [Path(a.dockerfile), *files]:
            (into / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(repo / rel, into / rel)
    print(h.hexdigest())


if __name__ == "__main__":
    main()
