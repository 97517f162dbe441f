"""Trainer throughput: training tokens per second on this machine, tiny and demo-sized models.

Builds the test fixture's real shards in a temp dir, trains a few steps per configuration and prints
tokens/s (non-padding positions per second of optimizer step, loader excluded) and the loss drop.
There is no fixed target on CPU; on a GPU run the demo config on the demo shards and report it.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from duplexloom.trainer.config import load_config
from duplexloom.trainer.train import resolve_device, train
from tests.trainer.conftest import write_shards

ROOT = Path(__file__).resolve().parents[2] / "trainer" / "configs"


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        shards = Path(tmp) / "shards"
        write_shards(shards, 4, 16, seed=0)
        runs = (
            ("tiny", ROOT / "tiny.yaml", ["optim.max_steps=30"]),
            ("demo-size", ROOT / "demo.yaml", ["optim.max_steps=6", "data.num_workers=0", "run.log_every=3",
                                                "codec.codebook_size=64", "run.eval_every=0", "run.progress=false"]),
        )  # fmt: skip
        print(f"device: {resolve_device('auto')}")
        for name, path, extra in runs:
            cfg = load_config(path, [f"data.shards={shards}/*.tar", *extra])
            s = train(cfg, Path(tmp) / name)
            print(
                f"{name:<10} params={s['n_params']:>9,d} steps={s['step']:>3} "
                f"tokens/s={s['tok_per_s']:>9.0f} final loss={float(s['final']['loss']):.3f}  (target: report only)"
            )


if __name__ == "__main__":
    main()
