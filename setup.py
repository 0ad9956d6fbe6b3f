"""The one native extension; everything else about the package is in pyproject.toml.

``ledger.records._merkle_native`` builds Merkle trees in C (native/merkle_native.c says why:
bench/merkle_rate.py). A C compiler and Python's headers are needed to install from source;
``make setup`` installs gcc and python3-dev by apt when they are missing.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "ledger.records._merkle_native",
            sources=["native/merkle_native.c"],
            depends=["native/xkcp/KeccakP-1600-opt64.c"],
            extra_compile_args=[
                "-O3",
                "-fvisibility=hidden",
                "-std=c11",
                "-Wall",
                "-Wextra",
                "-Wno-unused-parameter",
                "-Werror=implicit",
            ],
        )
    ]
)
