import json

import pytest

from tasklist.model import Task, format_task
from tasklist.store import TaskNotFound, TaskStore


@pytest.fixture
def store(tmp_path):
    return TaskStore(tmp_path / "tasks.json")


def test_add_assigns_increasing_ids(store):
    a = store.add("buy milk")
    b = store.add("call mum", priority="high")
    assert (a.id, b.id) == (1, 2)
    assert b.priority == "high"


def test_save_and_reload(store):
    store.add("write report", tags=["Work", "#urgent"])
    store.save()
    again = TaskStore(store.path)
    assert [t.title for t in again.tasks] == ["write report"]
    assert again.tasks[0].tags == ["urgent", "work"]
    assert json.loads(store.path.read_text())[0]["title"] == "write report"


def test_query_orders_open_tasks_by_priority(store):
    store.add("low one", priority="low")
    store.add("normal one")
    store.add("high one", priority="high")
    store.complete(2)
    assert [t.title for t in store.query()] == ["high one", "low one"]
    assert [t.title for t in store.query(include_done=True)] == ["high one", "low one", "normal one"]


def test_query_by_tag(store):
    store.add("a", tags=["home"])
    store.add("b", tags=["work"])
    assert [t.title for t in store.query(tag="#HOME")] == ["a"]


def test_remove_and_clear(store):
    store.add("a")
    store.add("b")
    store.complete(1)
    assert store.clear_done() == 1
    store.remove(2)
    assert store.tasks == []
    with pytest.raises(TaskNotFound):
        store.remove(9)


def test_task_validation():
    with pytest.raises(ValueError):
        Task(id=1, title="   ")
    with pytest.raises(ValueError):
        Task(id=1, title="x", priority="urgent")


def test_format_task():
    task = Task(id=3, title="ship it", priority="high", tags=["work"], done=True)
    assert format_task(task) == "  3 [x] ! ship it  #work"
