"""Make a big repository out of a real one: N distinct copies of its tracked files, committed.

    python benchmarks/make_copies.py SOURCE_REPO DEST --copies 10

Each copy lives under ``copyK/`` and every file of copy K gets one line
appended ("copy K of <name>"), so no two copies share a file's content: the
index cannot chunk a copy once and reuse it, as it could for identical files.
The vocabulary stays the source's (a big repository repeats its words too).
DEST becomes a fresh git repository with one commit, its index fresh (what a
clone looks like).
"""

from __future__ import annotations

import argparse
import io
import subprocess
import sys
import tarfile
from pathlib import Path


def git(cwd: Path, *args: str, data: bytes | None = None) -> bytes:
    return subprocess.run(["git", *args], cwd=cwd, input=data, check=True, capture_output=True).stdout


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("source", type=Path, help="a git work tree (its HEAD is copied)")
    ap.add_argument("dest", type=Path)
    ap.add_argument("--copies", type=int, default=10)
    args = ap.parse_args()
    if args.dest.exists() and any(args.dest.iterdir()):
        sys.exit(f"error: {args.dest} exists and is not empty")
    archive = git(args.source, "archive", "--format=tar", "HEAD")
    name = args.source.resolve().name
    args.dest.mkdir(parents=True, exist_ok=True)
    git(args.dest, "init", "-q")
    for k in range(args.copies):
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            for member in tar.getmembers():
                target = args.dest / f"copy{k}" / member.name
                if member.isdir():
                    target.mkdir(parents=True, exist_ok=True)
                elif member.isfile():
                    target.parent.mkdir(parents=True, exist_ok=True)
                    fh = tar.extractfile(member)
                    data = fh.read() if fh else b""
                    target.write_bytes(data + f"\ncopy {k} of {name}\n".encode())
                elif member.issym():
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.symlink_to(member.linkname)
    git(args.dest, "add", "-A")
    git(args.dest, "-c", "user.email=bench@example.invalid", "-c", "user.name=bench", "commit", "-q", "-m",
        f"{args.copies} copies of {name}")
    n = len(git(args.dest, "ls-files", "-z").split(b"\0")) - 1
    print(f"{args.dest}: {n} files in {args.copies} copies of {name}")


if __name__ == "__main__":
    main()
