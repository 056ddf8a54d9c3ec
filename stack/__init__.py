"""The embedded-stack launcher: PostgreSQL and the Temporal dev server for a laptop or CI run.

Modules: `embedded` (EmbeddedStack, the entry point), `postgres`, `temporal`, `processes`
(process identity, locks, ports), `errors` (StackError), `search_attributes` (imported by
workflows, so this package's __init__ imports nothing).

Files in the data folder (`BILLING_DATA_DIR`, default `.billing/`):
  postgres/              the PostgreSQL cluster (its log is postgres/log)
  postgres.owner.json    pid + start time of the process that will stop PostgreSQL
  temporal.sqlite        Temporal's state: workflow history survives restarts
  temporal.log           the dev server's output of the current run
  temporal.json          the dev server's pid, ports and owner while it runs
  stack.lock             serialises starting between programs using the same folder

What happens when `billing up` (or any program using EmbeddedStack) ...
  ends normally, raises, gets Ctrl-C, SIGTERM or SIGHUP: it stops the Temporal server (SIGTERM to
    its process group, SIGKILL after 10 s) and PostgreSQL (`pg_ctl stop -m fast`), if it started them.
  is killed with SIGKILL: on Linux the Temporal server gets SIGTERM from the kernel
    (PR_SET_PDEATHSIG) and exits within a couple of seconds. PostgreSQL is a daemon and keeps
    running; the next program on the same folder finds it, sees its owner is dead, reuses it as it
    is (no restart, no data loss) and stops it when it ends. A Temporal server that outlived its
    owner (no PDEATHSIG: not Linux, or started from a non-main thread) is stopped and restarted.
  finds servers of its folder whose owner is alive (a second program on the same folder, e.g.
    `billing migrate` while `billing up` runs): it joins them and leaves them running; the owner
    stops them when it ends.
  is interrupted during the very first initdb: the half-made cluster (no data yet) is removed so
    the next run initialises it again.
"""
