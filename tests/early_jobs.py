"""Slow checks that run in a subprocess of their own start as soon as the tests are collected.

The test process runs on one core (one BLAS thread). A check whose work is all in a subprocess (a
notebook's Jupyter kernel, the README's snippet in a plain `python -c`) can train on another core
meanwhile, instead of leaving the test process waiting when its test comes up. So:

- a test module defines the subprocess as a job: `define(NAME, prepare, seconds=S, needs=(MODULE, ...))`,
  where `prepare(folder)` sets up a fresh folder and returns Popen's keywords (args; env, built from
  ENVIRON; cwd, the folder unless given);
- a test that reads the job's result is marked `@pytest.mark.early_job(NAME)` and calls `result(NAME)`:
  (exit code, stdout, stderr, folder), waiting for the job if it is still running; a job defined with
  `parts=True` is prepared as `prepare(folder, parts)`, the parts being the marks' further arguments
  (`early_job(NAME, PAGE)`: only the pages of the selected tests; None, all of them, when run unmarked);
- conftest.py starts, when collection ends, the jobs of the tests that will run, one at a time, longest
  (`seconds`) first, on a background thread (so the test process and one job: two busy processes, as many
  as a 2-core machine has cores), and moves the marked tests to the end of the session, so that the jobs
  have the whole session to run. A job whose `needs` are not installed is not started (its test skips);
  a job no selected test needs never runs; `result` runs a job itself if no one has started it yet (the
  test process got there first: it would only wait otherwise). A job still running at the end of the
  session (after -x or Ctrl-C) is killed with its whole process group (a kernel included).

What each test checks is unchanged: the same command, in the same kind of folder, with the same
environment (the session's, as it started); only when it runs has moved.
"""
import importlib.util
import os
import pathlib
import re
import shutil
import signal
import subprocess
import tempfile
import threading

# The environment the session started with: a job's prepare() builds its subprocess's environment from this,
# not from os.environ, which a test running meanwhile may have changed for itself (monkeypatch.setenv).
ENVIRON = dict(os.environ)
_jobs = {}      # name -> _Job
_lock = threading.Lock()


class _Job:
    def __init__(self, name, prepare, seconds, needs, timeout, parts):
        self.name, self.prepare, self.seconds, self.needs = name, prepare, seconds, tuple(needs)
        self.timeout = timeout
        self.parts = set() if parts else None  # what the selected tests need of it (parts=True)
        self.claimed = False          # started (or being started) by the background thread or a test
        self.done = threading.Event()
        self.process = None
        self.outcome = None           # (exit code, stdout, stderr, folder), or the exception preparing it raised
        self.folder = None

    def installed(self):
        return all(importlib.util.find_spec(module) is not None for module in self.needs)

    def claim(self):
        with _lock:
            if self.claimed:
                return False
            self.claimed = True
            return True

    def run(self):
        try:
            self.folder = tempfile.mkdtemp(prefix="early-" + re.sub(r"\W+", "-", self.name) + "-")
            folder = pathlib.Path(self.folder)
            prepared = self.prepare(folder) if self.parts is None else \
                self.prepare(folder, sorted(self.parts) if self.parts else None)
            options = {"cwd": folder, "env": ENVIRON, **prepared}
            # a session of its own, so that stopping it stops what it started too (a notebook's kernel)
            self.process = subprocess.Popen(stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                            start_new_session=True, **options)
            try:
                out, err = self.process.communicate(timeout=self.timeout)
            except BaseException:  # past the timeout, or Ctrl-C while a test waited here
                _kill(self.process)
                raise
            self.outcome = (self.process.returncode, out, err, folder)
        except BaseException as error:  # reported by result(), in the test that needs the job
            self.outcome = error
        finally:
            self.done.set()


def define(name, prepare, seconds, needs=(), timeout=None, parts=False):
    """Declare a job (at a test module's import); defining the same name again replaces it. `seconds`
    is about how long it takes (the longest start first); past `timeout` seconds it is killed and its
    test fails with subprocess.TimeoutExpired."""
    _jobs[name] = _Job(name, prepare, seconds, needs, timeout, parts)


def result(name):
    """(exit code, stdout, stderr, folder) of the job: started early, or run now if it was not."""
    job = _jobs[name]
    if job.claim():
        job.run()
    job.done.wait()
    if isinstance(job.outcome, BaseException):
        raise job.outcome
    return job.outcome


def start(marks):
    """Run the jobs that the marks' arguments (NAME, *PARTS) name, longest first, one at a time, on a
    background thread (returned)."""
    names = set()
    for name, *parts in marks:
        if name in _jobs:
            names.add(name)
            if _jobs[name].parts is not None:
                _jobs[name].parts.update(parts)
    queue = sorted((_jobs[n] for n in names if _jobs[n].installed()), key=lambda job: -job.seconds)

    def work():
        for job in queue:
            if job.claim():
                job.run()
    thread = threading.Thread(target=work, name="early jobs", daemon=True)
    thread.start()
    return thread


def _kill(process):
    """Kill the job's process group (SIGKILL: the runner's commands catch SIGTERM to stop a run cleanly and
    go on) and reap the job's process."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()


def stop_all():
    """Stop every job still running (its process group) and remove the jobs' folders."""
    for job in _jobs.values():
        with _lock:
            job.claimed = True  # nothing starts after this
        if job.process is not None and job.process.poll() is None:
            _kill(job.process)
        if job.folder:
            job.done.wait(timeout=30)
            shutil.rmtree(job.folder, ignore_errors=True)
