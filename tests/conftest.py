from pathlib import Path

import pytest
import torch

FIXTURES = Path(__file__).parent / "fixtures"
IAM_MINI = FIXTURES / "iam-hooker-mini"
COPISTE_MINI = FIXTURES / "copiste-mini"
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

# One thread: the tests run beside other work on small machines, where torch's
# spinning OpenMP threads slow everything down.
torch.set_num_threads(1)


def needs_shared(name: str):
    """Skip a test when the full development set ../shared/data/<name> is not present."""
    return pytest.mark.skipif(
        not (SHARED_DATA / name).is_dir(),
        reason=f"full data set {SHARED_DATA / name} not present (only on development machines)",
    )
