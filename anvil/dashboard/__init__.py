"""`anvil dashboard`: a read-only local web view of runs, their stages and what they cost.

`data` gathers runs (each repository's `.anvil/runs/`) and the ledger, `charts`
draws inline SVG on the server, `pages` renders plain HTML, `app` is the
Starlette application (token check, routes, server-sent events). Starlette and
uvicorn are imported only here, so no other command pays for them.
"""
