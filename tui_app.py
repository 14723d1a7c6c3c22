"""ResLab entry point: no arguments opens the TUI; subcommands (train, resume, stop, runs, show, eval) run headless."""
from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    import os

    # before torch loads: CUDA then numbers the GPUs in PCI bus order, as NVML and nvidia-smi do (the devices panel,
    # --devices, the scheduler's CUDA_VISIBLE_DEVICES); its default numbers the fastest first
    os.environ["CUDA_DEVICE_ORDER"] = "PCI_BUS_ID"
    from cli.main import main as cli_main

    return cli_main(sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    sys.exit(main())
