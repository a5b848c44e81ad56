"""scripts/compare_reports.py: two models' `eval --report` files compared line by line, pages resampled."""

import json
import subprocess
import sys

from conftest import FIXTURES

from handwrite.cli import ReportFormat, _report
from handwrite.metrics import ErrorCounts, Evaluation, LineResult, cer

SCRIPT = FIXTURES.parents[1] / "scripts" / "compare_reports.py"
REFS = {"a01-000u-00": "hello world", "a01-000u-01": "abc", "pairs/x": "xyz"}


def _write(path, hyps: dict[str, str]) -> None:
    lines = [LineResult(i, REFS[i], hyps[i], cer(REFS[i], hyps[i])) for i in REFS]
    path.write_text(_report(Evaluation(ErrorCounts(), lines), ReportFormat.tsv), encoding="utf-8")


def _compare(folder, pattern_a: str = "A-*.tsv", pattern_b: str = "B-*.tsv") -> subprocess.CompletedProcess:
    """The script run on two patterns in ``folder``."""
    args = [sys.executable, str(SCRIPT), str(folder / pattern_a), str(folder / pattern_b)]
    return subprocess.run(args, capture_output=True, text=True)


def test_counts_lines_better_and_worse_and_resamples_pages(tmp_path):
    _write(tmp_path / "A-set.tsv", {"a01-000u-00": "hello warld", "a01-000u-01": "abc", "pairs/x": "xy"})
    _write(tmp_path / "B-set.tsv", {"a01-000u-00": "hello world", "a01-000u-01": "abd", "pairs/x": "x"})
    done = _compare(tmp_path)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert (out["a"], out["b"], out["b_minus_a"]) == (2, 3, 1)
    assert (out["lines_b_better"], out["lines_b_worse"]) == (1, 2)
    # Two pages: the IAM form a01-000u (B - A = 0) and the folder pairs (+1): every resample sums 0 to +2.
    assert out["pages"] == 2
    assert 0 <= out["interval_95"][0] <= out["interval_95"][1] <= 2


def test_files_that_do_not_pair_up_are_refused(tmp_path):
    _write(tmp_path / "A-one.tsv", dict(REFS))
    _write(tmp_path / "B-two.tsv", dict(REFS))
    done = _compare(tmp_path)
    assert done.returncode == 1 and "do not pair up" in done.stderr


def test_a_pattern_with_other_wildcards_is_refused_in_one_line(tmp_path):
    _write(tmp_path / "A-one.tsv", dict(REFS))
    _write(tmp_path / "B-one.tsv", dict(REFS))
    done = _compare(tmp_path, "A-[o]*.tsv", "B-[o]*.tsv")
    # It once matched the files by glob and then failed to pair them by its own pattern: a traceback.
    assert done.returncode == 1 and "no other wildcard" in done.stderr and "Traceback" not in done.stderr
