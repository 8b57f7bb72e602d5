"""Open a pull request for a shipped branch: GitHub REST API with GITHUB_TOKEN, else `gh`.

The API base URL is a setting (`github_api_url` in `.anvil/config.yaml`), so
GitHub Enterprise works and tests point it at a loopback server. The token is
sent only in the Authorization header and never appears in an error message.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from anvil.errors import UserError
from anvil.workspace.gitops import push, remote_url

if TYPE_CHECKING:
    from httpx import BaseTransport, Response

DEFAULT_API_URL = "https://api.github.com"
PR_TIMEOUT = 30.0

_GITHUB_URL = re.compile(r"github\.com[:/]+([\w.-]+)/([\w.-]+?)(?:\.git)?/?$")


@dataclass(frozen=True)
class PullRequest:
    url: str
    number: int | None
    via: str  # "api" or "gh"
    existed: bool = False  # a PR for this branch was already open


def github_repo_from_url(url: str | None) -> str | None:
    """`owner/repo` from a GitHub remote URL (https, ssh or scp-style), else None."""
    if not url:
        return None
    m = _GITHUB_URL.search(url.strip())
    return f"{m.group(1)}/{m.group(2)}" if m else None


def _money(value: Decimal | None) -> str:
    if value is None:
        return "unpriced"
    return f"${value:.4f}" if value < 1 else f"${value:.2f}"


def pr_body(summary: str, test_result: str, cost_rows: Sequence[Mapping[str, Any]], *,
            total: Decimal | None = None, run_id: str | None = None) -> str:
    """The PR description: summary, test result, and the cost per stage.

    `cost_rows`: one mapping per stage with `stage`, `model`, `tokens`, `cost`
    (Decimal, or None when a call could not be priced).
    """
    lines = ["## Summary", "", summary.strip() or "(no summary)", "", "## Tests", "",
             test_result.strip() or "(not run)", "", "## Cost", "",
             "| stage | model | tokens | cost |", "| --- | --- | ---: | ---: |"]
    unknown = False
    for row in cost_rows:
        cost = row.get("cost")
        unknown |= cost is None
        tokens = row.get("tokens")
        lines.append(f"| {row.get('stage', '')} | {row.get('model') or '-'} | "
                     f"{tokens if tokens is not None else '-'} | {_money(cost)} |")
    if total is None and cost_rows and not unknown:
        total = sum((r["cost"] for r in cost_rows), Decimal("0"))
    total_text = _money(total) + (" (+ unpriced calls)" if unknown and total is not None else "")
    lines.append(f"| **total** | | | **{total_text}** |")
    lines += ["", f"_Built by anvil, run `{run_id}`._" if run_id else "_Built by anvil._"]
    return "\n".join(lines) + "\n"


def open_pull_request(*, repo: str | None, head: str, base: str, title: str, body: str,
                      token: str | None = None, api_url: str = DEFAULT_API_URL, cwd: Path | None = None,
                      draft: bool = False, transport: BaseTransport | None = None, timeout: float = PR_TIMEOUT,
                      env: Mapping[str, str] | None = None, use_gh: bool | None = None) -> PullRequest:
    """Open (or find the already open) PR `head` -> `base` on `repo` (`owner/name`).

    With a token, the REST API is used; without one, the `gh` CLI if it is
    installed (it has its own login); otherwise a clear error.
    """
    env = os.environ if env is None else env
    token = token if token is not None else env.get("GITHUB_TOKEN") or env.get("GH_TOKEN")
    if token:
        if not repo:
            raise UserError("cannot tell which GitHub repository to open the pull request on",
                            hint="push to a github.com remote, or set the repository explicitly")
        return _open_via_api(repo, head, base, title, body, token, api_url, draft, transport, timeout)
    if use_gh is not False and shutil.which("gh", path=env.get("PATH")):
        return _open_via_gh(repo, head, base, title, body, draft, cwd, env, timeout)
    raise UserError("cannot open a pull request: GITHUB_TOKEN is not set and the `gh` CLI is not installed",
                    hint="export GITHUB_TOKEN=... (a token with pull-request write access), or install gh "
                         "and `gh auth login`; the branch was pushed")


def _open_via_api(repo: str, head: str, base: str, title: str, body: str, token: str, api_url: str,
                  draft: bool, transport: BaseTransport | None, timeout: float) -> PullRequest:
    import httpx

    headers = {
        "Authorization": f"Bearer {token}",
        "Accept": "application/vnd.github+json",
        "X-GitHub-Api-Version": "2022-11-28",
        "User-Agent": "anvil",
    }
    base_url = api_url.rstrip("/")
    owner = repo.split("/", 1)[0]
    try:
        with httpx.Client(base_url=base_url, headers=headers, timeout=timeout, transport=transport) as client:
            resp = client.post(f"/repos/{repo}/pulls",
                               json={"title": title, "head": head, "base": base, "body": body, "draft": draft})
            if resp.status_code == 201:
                data = resp.json()
                return PullRequest(data.get("html_url") or data.get("url", ""), data.get("number"), "api")
            if resp.status_code == 422 and "already exists" in resp.text:
                found = client.get(f"/repos/{repo}/pulls", params={"head": f"{owner}:{head}", "state": "open"})
                if found.status_code == 200 and found.json():
                    pr = found.json()[0]
                    return PullRequest(pr.get("html_url", ""), pr.get("number"), "api", existed=True)
    except httpx.HTTPError as exc:
        raise UserError(f"could not reach the GitHub API at {base_url}: {type(exc).__name__}",
                        hint="check github_api_url in .anvil/config.yaml and your network; "
                             "the branch was pushed") from None
    raise UserError(f"GitHub refused the pull request ({resp.status_code}): {_api_message(resp)}",
                    hint=_api_hint(resp.status_code))


def _api_message(resp: Response) -> str:
    try:
        data = resp.json()
    except (json.JSONDecodeError, ValueError):
        return resp.text[:200].strip() or resp.reason_phrase
    msg = str(data.get("message", ""))
    errs = [e.get("message") or e.get("code") for e in data.get("errors", []) if isinstance(e, dict)]
    return "; ".join([msg, *[e for e in errs if e]]) or resp.reason_phrase


def _api_hint(status: int) -> str:
    if status == 401:
        return "GITHUB_TOKEN was rejected: create a new token"
    if status in (403, 404):
        return "the token needs pull-request write access to this repository"
    return "the branch was pushed; you can open the pull request by hand"


def _open_via_gh(repo: str | None, head: str, base: str, title: str, body: str, draft: bool, cwd: Path | None,
                 env: Mapping[str, str], timeout: float) -> PullRequest:
    args = ["gh", "pr", "create", "--head", head, "--base", base, "--title", title, "--body-file", "-"]
    if repo:
        args += ["--repo", repo]
    if draft:
        args.append("--draft")
    try:
        p = subprocess.run(args, cwd=cwd, input=body, capture_output=True, text=True, timeout=timeout,
                           env={**env, "GH_PROMPT_DISABLED": "1"})
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise UserError(f"`gh pr create` failed: {type(exc).__name__}") from None
    if p.returncode != 0:
        last = (p.stderr.strip().splitlines() or ["unknown error"])[-1]
        raise UserError(f"`gh pr create` failed: {last}", hint="run `gh auth status`; the branch was pushed")
    url = p.stdout.strip().splitlines()[-1] if p.stdout.strip() else ""
    m = re.search(r"/pull/(\d+)", url)
    return PullRequest(url, int(m.group(1)) if m else None, "gh")


def push_and_open_pr(
    *,
    worktree: Path,
    repo_root: Path,
    branch: str,
    base: str,
    remote: str,
    title: str,
    body: str,
    repo: str | None = None,
    api_url: str = DEFAULT_API_URL,
    token: str | None = None,
    env: Mapping[str, str] | None = None,
    transport: BaseTransport | None = None,
    draft: bool = False,
) -> PullRequest:
    """Ship with `--pr`: push `branch` to `remote`, then open the PR on the remote's GitHub repository.

    `repo` (`owner/name`) overrides what the remote URL says (a mirror, a
    local bare repository in tests).
    """
    push(worktree, remote, branch)
    slug = repo or github_repo_from_url(remote_url(repo_root, remote) or remote)
    return open_pull_request(repo=slug, head=branch, base=base, title=title, body=body, token=token,
                             api_url=api_url, cwd=worktree, draft=draft, transport=transport, env=env)
