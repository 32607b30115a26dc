"""``python -m klaviyo_emulator``: serve a demo Klaviyo account until SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from types import FrameType

from .auth import DEMO_API_KEY
from .data import SIZES
from .server import Emulator, EmulatorConfig


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m klaviyo_emulator", description="Offline Klaviyo API emulator")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--size", default="demo", choices=sorted(SIZES))
    parser.add_argument("--rate-limit-scale", type=float, default=1.0)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--latency-jitter-ms", type=float, default=0.0)
    parser.add_argument("--fault-rate", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--empty", action="store_true", help="an empty account (to write into)")
    parser.add_argument("--job-delay-s", type=float, default=2.0, help="seconds before a bulk job completes")
    args = parser.parse_args(argv)
    config = EmulatorConfig(
        host=args.host,
        port=args.port,
        size=args.size,
        seed=args.seed,
        rate_limit_scale=args.rate_limit_scale,
        latency_ms=args.latency_ms,
        latency_jitter_ms=args.latency_jitter_ms,
        fault_rate=args.fault_rate,
        empty=args.empty,
        job_delay_s=args.job_delay_s,
    )
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    emulator = Emulator(config).start()
    print(f"Klaviyo emulator on {emulator.base_url} (api_key={DEMO_API_KEY})", flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        emulator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
