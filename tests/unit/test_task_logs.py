"""The console of an embedded run: a summary per task; each task's log file keeps its executor input."""

import io

from hyperrec.pipelines.task_logs import TaskLogStream

# what kfp.local prints for one task (its streamed lines are indented by 4 spaces)
STREAM = """09:02:42.876 - INFO - Executing task \x1b[96m'fine-tune'\x1b[0m
09:02:42.876 - INFO - Streamed logs:

    [KFP Executor 2026-12-02 09:02:45,499 INFO]: Got executor_input:
    {
        "inputs": {
            "parameterValues": {
                "config_yaml": "{\\"seed\\": 42}"
            }
        }
    }
    [KFP Executor 2026-12-02 09:02:45,499 INFO]: trained next_item_lm in 3.0 s
09:02:45.575 - INFO - Task \x1b[96m'fine-tune'\x1b[0m finished with status SUCCESS
"""


def test_console_drops_the_executor_input_and_the_task_log_keeps_everything(tmp_path):
    console = io.StringIO()
    stream = TaskLogStream(console, tmp_path)
    for chunk in (STREAM[:100], STREAM[100:333], STREAM[333:]):  # writes need not end at line ends
        stream.write(chunk)
    stream.close_files()

    shown = console.getvalue()
    assert "config_yaml" not in shown and "parameterValues" not in shown
    assert f"executor input in {tmp_path / 'fine-tune'}.log" in shown
    assert "trained next_item_lm in 3.0 s" in shown and "finished with status SUCCESS" in shown
    assert (tmp_path / "fine-tune.log").read_text() == STREAM
