"""``rstsleuth lab``: reproduce middle-device resets in network namespaces (root).

``rstsleuth lab list`` and ``rstsleuth lab run SCENARIO --out DIR``; the lab itself lives in
``examples/lab`` (also runnable as ``python -m examples.lab``)."""
from __future__ import annotations


def register(subparsers) -> None:
    from examples.lab.cli import add_arguments
    parser = subparsers.add_parser(
        "lab", help="Reproduce middle-device resets with network namespaces (needs root)",
        description="Build client, middle-device and server network namespaces, reproduce a "
                    "reset scenario with real kernels and netfilter, and capture both ends.")
    add_arguments(parser)
