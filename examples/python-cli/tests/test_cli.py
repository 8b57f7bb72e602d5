import pytest

from tasklist.cli import main


@pytest.fixture
def run(tmp_path, capsys):
    path = tmp_path / "tasks.json"

    def _run(*argv):
        code = main(["--file", str(path), *argv])
        out, err = capsys.readouterr()
        return code, out, err

    return _run


def test_add_then_list(run):
    assert run("add", "buy", "milk")[1] == "added 1: buy milk\n"
    run("add", "fix bike", "-p", "high", "-t", "home")
    code, out, _ = run("list")
    assert code == 0
    assert out.splitlines() == ["  2 [ ] ! fix bike  #home", "  1 [ ]   buy milk", "2 open, 0 done"]


def test_done_hides_task_unless_all(run):
    run("add", "a")
    run("add", "b")
    assert run("done", "1")[1] == "done 1: a\n"
    assert "  1 [x]" not in run("list")[1]
    assert "  1 [x]   a" in run("list", "--all")[1]


def test_list_empty(run):
    assert run("list")[1] == "nothing to do\n"


def test_unknown_id_is_an_error(run):
    code, _, err = run("done", "42")
    assert code == 1
    assert "no task with id 42" in err


def test_remove_and_clear(run):
    run("add", "a")
    run("add", "b")
    run("done", "2")
    assert run("clear")[1] == "cleared 1 finished task(s)\n"
    assert run("remove", "1")[1] == "removed 1: a\n"
    assert run("list", "--all")[1] == "nothing to do\n"


def test_tag_filter(run):
    run("add", "a", "-t", "work")
    run("add", "b")
    out = run("list", "--tag", "work")[1]
    assert "a" in out and " b" not in out
