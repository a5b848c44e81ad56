"""Make a shippable copy of a trained checkpoint: weights stored as float16, training state dropped.

    python scripts/package_model.py runs/hooker/best.pt models/hooker-small/model.pt

Half-precision storage halves the file (and every later re-ship in git history);
loading copies the weights into the float32 network, so inference is unchanged
apart from rounding (the model card reports the evaluated accuracy of the
packaged file itself).
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from handwrite import checkpoint  # noqa: E402


def main(src: str, dst: str) -> None:
    state = checkpoint.load_state(Path(src))
    keep = {k: state[k] for k in ("format", "version", "model_config", "alphabet")}
    keep["model"] = {k: v.half() if v.is_floating_point() else v for k, v in state["model"].items()}
    keep["val_cer"] = state.get("val_cer")
    keep["train_config"] = state.get("train_config")
    checkpoint.write_state(Path(dst), keep)
    print(f"{dst}: {Path(dst).stat().st_size / 2**20:.1f} MiB")


if __name__ == "__main__":
    main(*sys.argv[1:])
