from setuptools import Extension, setup

# One extension, split by concern (facts/_ctrack.h lists what each file does).
CTRACK = ["module", "table", "tracker", "pyin", "decode", "pcap", "pyout", "pytracker",
          "models", "baseline", "facts", "frames", "pcapng", "cross"]

setup(ext_modules=[
    # One extension, split by concern (facts/capture/_etlwalk.h lists what each file does).
    # -ffp-contract=off: records' timestamps must round exactly as Python's float arithmetic.
    Extension("facts.capture._etlwalk",
              [f"facts/capture/_etlwalk_{name}.c"
               for name in ("walk", "merge", "fold", "records", "module")],
              optional=True, depends=["facts/capture/_etlwalk.h", "facts/_etl_item.h"],
              extra_compile_args=["-ffp-contract=off", "-fvisibility=hidden"]),
    # normalize_evidence's and Reasoner.run_key's common case (engine/_evkey.c).
    Extension("engine._evkey", ["engine/_evkey.c"], optional=True,
              extra_compile_args=["-fvisibility=hidden"]),
    # The JSON report's entries, each shared object written once (engine/_jsonw.c).
    Extension("engine._jsonw", ["engine/_jsonw.c"], optional=True,
              extra_compile_args=["-fvisibility=hidden"]),
    # reset_entry.reset_out of many resets at once (engine/_resetout.c).
    Extension("engine._resetout", ["engine/_resetout.c"], optional=True,
              depends=["facts/_pymodel.h"],
              extra_compile_args=["-ffp-contract=off", "-fvisibility=hidden"]),
    # -ffp-contract=off: timestamps and gaps must round exactly as Python's float arithmetic.
    Extension("facts._ctrack", [f"facts/_ctrack_{name}.c" for name in CTRACK], optional=True,
              depends=["facts/_ctrack.h", "facts/_etl_item.h", "facts/_pymodel.h"],
              extra_compile_args=["-ffp-contract=off", "-fvisibility=hidden"]),
])
