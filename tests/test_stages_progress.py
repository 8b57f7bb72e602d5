"""Progress on stderr: plain lines off a TTY, the end-of-run table, unknown cost shown as unknown."""

from __future__ import annotations

import io
from decimal import Decimal

from anvil.providers.types import TextDelta, Usage
from anvil.run.store import RunState
from anvil.ui.progress import NullProgress, PlainProgress, make_progress, print_summary, summary_rows


def test_plain_progress_writes_one_line_per_event_and_ignores_stream_deltas():
    out = io.StringIO()
    ticks = iter([0.0, 1.5, 3.0])
    p = PlainProgress(out, clock=lambda: next(ticks))
    p.stage_started("build")
    p.call_started("build", "m-local", ["m-local", "m-cheap", "m-premium"])
    p.stream("build", TextDelta("streamed words stay off a log"))
    p.call_finished("build", "m-local", Usage(input_tokens=1200, output_tokens=80), Decimal("0.0012"))
    p.spend(Decimal("0.0012"))
    p.note("build", "refused edit to ../x: leaves the repository")
    p.stage_finished("build", "done", "3 edit(s)")
    lines = out.getvalue().splitlines()
    assert lines == [
        "anvil: [build] started",
        "anvil: [build] asking m-local (then m-cheap, m-premium)",
        "anvil: [build] m-local answered: 1,200 in / 80 out tokens, $0.0012",
        "anvil: [build] refused edit to ../x: leaves the repository",
        "anvil: [build] done: 3 edit(s)  [total $0.0012, 1.5s]",
    ]


def test_make_progress_is_plain_off_a_tty_and_silent_when_quiet():
    assert type(make_progress(io.StringIO())) is PlainProgress
    assert type(make_progress(io.StringIO(), quiet=True)) is NullProgress


def test_summary_table_shows_unknown_cost_and_skips_stages_not_reached():
    st = RunState(request="r")
    st.stages["clarify"].status, st.stages["clarify"].attempts = "done", 1
    st.stages["clarify"].model, st.stages["clarify"].tokens = "m", 900
    st.stages["clarify"].cost = Decimal("0.0006")
    st.stages["clarify"].data["elapsed"] = 0.4
    st.stages["plan"].status, st.stages["plan"].attempts, st.stages["plan"].cost = "failed", 1, None
    st.spend = None
    out = io.StringIO()
    print_summary(st, out, title="run X")
    text = out.getvalue()
    assert "$0.0006" in text and "unknown" in text and "$0.0000" not in text
    rows = summary_rows(st)
    assert rows[0]["seconds"] == 0.4 and rows[1]["cost"] is None and rows[2]["attempts"] == 0
