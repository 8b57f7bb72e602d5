"""The `tasks` command: add, list, done, remove, clear."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tasklist import __version__
from tasklist.model import PRIORITIES, format_task
from tasklist.store import TaskNotFound, TaskStore


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tasks", description="A small to-do list for the terminal.")
    parser.add_argument("--file", type=Path, help="task file (default: $TASKS_FILE or ~/.tasks.json)")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    add = sub.add_parser("add", help="add a task")
    add.add_argument("title", nargs="+", help="what to do")
    add.add_argument("-p", "--priority", choices=PRIORITIES, default="normal")
    add.add_argument("-t", "--tag", action="append", default=[], help="a tag (repeatable)")

    ls = sub.add_parser("list", help="show tasks")
    ls.add_argument("-a", "--all", action="store_true", help="include finished tasks")
    ls.add_argument("-t", "--tag", help="only tasks with this tag")

    done = sub.add_parser("done", help="mark tasks finished")
    done.add_argument("ids", nargs="+", type=int)

    rm = sub.add_parser("remove", help="delete tasks")
    rm.add_argument("ids", nargs="+", type=int)

    sub.add_parser("clear", help="delete every finished task")
    return parser


def cmd_add(store: TaskStore, args: argparse.Namespace) -> int:
    task = store.add(" ".join(args.title), priority=args.priority, tags=args.tag)
    store.save()
    print(f"added {task.id}: {task.title}")
    return 0


def cmd_list(store: TaskStore, args: argparse.Namespace) -> int:
    tasks = store.query(include_done=args.all, tag=args.tag)
    if not tasks:
        print("nothing to do")
        return 0
    for task in tasks:
        print(format_task(task))
    open_count = sum(1 for t in tasks if not t.done)
    print(f"{open_count} open, {len(tasks) - open_count} done")
    return 0


def cmd_done(store: TaskStore, args: argparse.Namespace) -> int:
    for task_id in args.ids:
        task = store.complete(task_id)
        print(f"done {task.id}: {task.title}")
    store.save()
    return 0


def cmd_remove(store: TaskStore, args: argparse.Namespace) -> int:
    for task_id in args.ids:
        task = store.remove(task_id)
        print(f"removed {task.id}: {task.title}")
    store.save()
    return 0


def cmd_clear(store: TaskStore, args: argparse.Namespace) -> int:
    n = store.clear_done()
    store.save()
    print(f"cleared {n} finished task(s)")
    return 0


COMMANDS = {"add": cmd_add, "list": cmd_list, "done": cmd_done, "remove": cmd_remove, "clear": cmd_clear}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        store = TaskStore(args.file)
        return COMMANDS[args.command](store, args)
    except (TaskNotFound, ValueError) as exc:
        print(f"tasks: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
