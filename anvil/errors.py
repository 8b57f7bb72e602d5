"""User-facing errors and the exit codes they map to.

The CLI prints an `AnvilError` as one clean line on stderr (plus a hint), never
a traceback: a bad policy, a missing key or a spent budget is the user's to fix,
not a crash.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_USER = 2  # bad config, bad arguments, not a git repo
EXIT_CHAIN_EXHAUSTED = 3  # no model could answer: none usable (no key, no server) or every one failed
EXIT_STAGE_EXHAUSTED = 4  # a stage spent its retry budget
EXIT_BUDGET = 5  # the run budget stopped the run
EXIT_INTERRUPTED = 130
EXIT_NO_MODEL = EXIT_CHAIN_EXHAUSTED  # one condition, "no model answered", one code: from run, ask and doctor

# Every code anvil exits with, for the README and `anvil --help` readers (a test keeps them in step).
EXIT_CODES = {
    EXIT_OK: "success",
    EXIT_INTERNAL: "internal error (a bug in anvil; the traceback is in the run's events.jsonl)",
    EXIT_USER: "user error: bad arguments or config, not a git repo, unknown run, missing --pr remote/token",
    EXIT_CHAIN_EXHAUSTED: "no usable model: none usable for a stage (no key, no server) or every one failed",
    EXIT_STAGE_EXHAUSTED: "a stage spent its retry budget",
    EXIT_BUDGET: "the dollar budget stopped the run",
    EXIT_INTERRUPTED: "interrupted (Ctrl-C or SIGTERM); `anvil resume RUN` continues",
}


class AnvilError(Exception):
    """An error the user can act on. `hint` says what to do next."""

    exit_code: int = EXIT_USER
    # set when the command already printed its --json result (a run's), so the CLI adds no error object
    json_printed: bool = False

    def __init__(self, message: str, *, hint: str | None = None, exit_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        if exit_code is not None:
            self.exit_code = exit_code


class UserError(AnvilError):
    exit_code = EXIT_USER


class NoUsableModel(AnvilError):
    """No model of a stage's chain is usable (exit 3, the same from every command)."""

    exit_code = EXIT_NO_MODEL


class NotARepoError(UserError):
    def __init__(self, what: str = "this command") -> None:
        super().__init__(
            f"{what} must be run inside a git work tree",
            hint="cd into your repository (or run `git init` first)",
        )
