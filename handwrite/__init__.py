"""handwrite: offline handwritten text-line recognition (CNN + BiLSTM + CTC)."""

import os

# torch's OpenMP threads spin while they wait; on a shared small machine that
# burns the cores other work needs (2 busy-waiting threads were seen 10-16x
# slower than 1). Passive waiting must be chosen before torch is first imported.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
