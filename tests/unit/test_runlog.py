"""A stage's process that ends without the interpreter's teardown (foundation.runlog.exit_without_teardown)
still leaves every line of its log and standard streams behind, and exits with status 0."""

import subprocess
import sys

STAGE = """
import sys
from alignedreid.foundation.runlog import exit_without_teardown, stage_logging
out = sys.argv[1] + "/out.txt"
with stage_logging(sys.argv[1] + "/stage.log", "demo", [out]) as log:
    open(out, "w").write("done")
    print("printed inside the stage")
    log.info("logged inside the stage")
sys.stdout.write("after the stage, unflushed")
sys.stderr.write("to stderr, unflushed")
exit_without_teardown()
print("never")
"""


def test_exit_without_teardown_keeps_every_line_and_exits_0(tmp_path):
    proc = subprocess.run([sys.executable, "-c", STAGE, str(tmp_path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "after the stage, unflushed"  # a pipe is block-buffered: only the flush writes it
    assert proc.stderr.endswith("to stderr, unflushed")
    log = (tmp_path / "stage.log").read_text()
    assert "printed inside the stage" in log and "logged inside the stage" in log
    assert "outputs: 4 bytes in 1 files" in log


def test_a_failing_stage_never_reaches_it(tmp_path):
    failing = STAGE.replace('open(out, "w").write("done")', "raise RuntimeError('broken')")
    proc = subprocess.run([sys.executable, "-c", failing, str(tmp_path)], capture_output=True, text=True)
    assert proc.returncode == 1
    assert "never" not in proc.stdout and "unflushed" not in proc.stdout
    assert "broken" in (tmp_path / "stage.log").read_text()
