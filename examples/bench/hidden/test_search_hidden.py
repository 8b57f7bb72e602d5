"""The bench's hidden check of the search task: the run never sees this file."""

from tasklist.cli import main


def run(tmp_path, capsys, *argv):
    code = main(["--file", str(tmp_path / "tasks.json"), *argv])
    return code, capsys.readouterr().out


def test_search_matches_a_word_in_any_case(tmp_path, capsys):
    run(tmp_path, capsys, "add", "Water the PLANTS")
    run(tmp_path, capsys, "add", "call mum")
    code, out = run(tmp_path, capsys, "search", "plants")
    assert code == 0
    assert "Water the PLANTS" in out and "call mum" not in out


def test_search_says_no_match(tmp_path, capsys):
    run(tmp_path, capsys, "add", "call mum")
    assert run(tmp_path, capsys, "search", "plants") == (0, "no match\n")
