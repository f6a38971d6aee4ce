"""tests/early_jobs.py, which starts the slow subprocess checks early: a job's result is its subprocess's,
whether it was started early or by the test; it gets only the parts the selected tests need; a job past
its timeout, or still running at the end of the session, is stopped with what it started."""
import os
import subprocess
import sys
import time

import pytest

import early_jobs


@pytest.fixture
def jobs(monkeypatch):
    """An empty table of jobs for the test, stopped and removed after it; the session's own restored."""
    monkeypatch.setattr(early_jobs, "_jobs", {})
    yield early_jobs
    early_jobs.stop_all()


def python(code):
    return [sys.executable, "-c", code]


def test_a_job_not_started_early_runs_when_its_result_is_asked_for(jobs, tmp_path):
    jobs.define("hello", lambda folder: {"args": python("import os, sys; print(os.getcwd()); "
                                                         "print('to stderr', file=sys.stderr); sys.exit(3)")},
                seconds=1)
    code, out, err, folder = jobs.result("hello")
    assert (code, out.strip(), err.strip()) == (3, str(folder), "to stderr")
    assert jobs.result("hello")[3] == folder  # once: the second call reads the same outcome


def test_a_job_started_early_is_the_one_its_test_reads_and_runs_once(jobs, tmp_path):
    count = tmp_path / "count"
    jobs.define("once", lambda folder: {"args": python(f"open({str(count)!r}, 'a').write('x')")}, seconds=1)
    jobs.start([("once",), ("once",)]).join()  # two tests marked with it
    assert jobs.result("once")[0] == 0
    assert count.read_text() == "x"


def test_jobs_run_longest_first_and_only_those_marked(jobs, tmp_path):
    order = tmp_path / "order"
    for name, seconds in (("short", 1), ("long", 9), ("unmarked", 5)):
        jobs.define(name, lambda folder, name=name: {"args": python(f"open({str(order)!r}, 'a').write('{name} ')")},
                    seconds=seconds)
    jobs.start([("short",), ("long",)]).join()
    jobs.result("short")
    jobs.result("long")
    assert order.read_text() == "long short "
    assert not jobs._jobs["unmarked"].claimed


def test_a_job_whose_needs_are_missing_is_not_started(jobs):
    jobs.define("needs", lambda folder: {"args": python("")}, seconds=1, needs=("no_such_module_anywhere",))
    jobs.start([("needs",)]).join()
    assert not jobs._jobs["needs"].claimed


def test_a_job_with_parts_is_prepared_with_the_parts_the_marks_name(jobs):
    seen = []

    def prepare(folder, parts):
        seen.append(parts)
        return {"args": python("")}
    jobs.define("pages", prepare, seconds=1, parts=True)
    jobs.start([("pages", "b.md"), ("pages", "a.md"), ("pages", "b.md")]).join()
    jobs.result("pages")
    jobs.define("pages of a test run alone", prepare, seconds=1, parts=True)
    jobs.result("pages of a test run alone")  # not started early: every part
    assert seen == [["a.md", "b.md"], None]


def test_the_environment_is_the_sessions_not_what_a_test_set_meanwhile(jobs, monkeypatch):
    monkeypatch.setenv("EARLY_JOBS_TEST_VARIABLE", "set by a test")
    jobs.define("env", lambda folder: {"args": python("import os; print(os.environ.get('EARLY_JOBS_TEST_VARIABLE'))")},
                seconds=1)
    assert jobs.result("env")[1].strip() == "None"


def test_a_job_past_its_timeout_is_killed_with_what_it_started(jobs, tmp_path):
    pid_file = tmp_path / "child"
    started = (f"import subprocess, sys, time; p = subprocess.Popen([sys.executable, '-c', 'import time; "
               f"time.sleep(60)']); open({str(pid_file)!r}, 'w').write(str(p.pid)); time.sleep(60)")
    jobs.define("slow", lambda folder: {"args": python(started)}, seconds=1, timeout=5)
    with pytest.raises(subprocess.TimeoutExpired):
        jobs.result("slow")
    assert not alive(int(pid_file.read_text()))


def test_the_end_of_the_session_stops_a_running_job_and_removes_its_folder(jobs, tmp_path):
    marker = tmp_path / "running"
    jobs.define("forever", lambda folder: {"args": python(f"import time; open({str(marker)!r}, 'w'); "
                                                          "time.sleep(60)")}, seconds=1)
    jobs.start([("forever",)])
    deadline = time.time() + 30
    while not marker.exists() and time.time() < deadline:
        time.sleep(0.05)
    job = jobs._jobs["forever"]
    jobs.stop_all()
    assert job.done.is_set() and job.outcome[0] == -9  # SIGKILL
    assert not os.path.exists(job.folder)


def alive(pid):
    """True while the process exists and is not a zombie (a killed child its parent has not reaped yet)."""
    time.sleep(0.2)
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False
