"""Give every httpkit server of a process the stdlib request cycle (see bench/stdlib_http.py).

Python imports ``sitecustomize`` at start-up from the path, so ``PYTHONPATH=bench/stdlib_cycle``
swaps the cycle into every service a launcher starts, with no change to the services.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.stdlib_http import use_stdlib_cycle  # noqa: E402  (needs the path above)

use_stdlib_cycle()
