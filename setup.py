from setuptools import Extension, setup

# One extension, split by concern (facts/_ctrack.h lists what each file does).
CTRACK = ["module", "table", "tracker", "pyin", "decode", "pcap", "pyout", "pytracker",
          "models", "baseline", "facts"]

setup(ext_modules=[
    Extension("facts.capture._etlwalk", ["facts/capture/_etlwalk.c"], optional=True),
    # -ffp-contract=off: timestamps and gaps must round exactly as Python's float arithmetic.
    Extension("facts._ctrack", [f"facts/_ctrack_{name}.c" for name in CTRACK], optional=True,
              depends=["facts/_ctrack.h"],
              extra_compile_args=["-ffp-contract=off", "-fvisibility=hidden"]),
])
