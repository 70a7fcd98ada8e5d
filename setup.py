from setuptools import Extension, setup

setup(ext_modules=[
    Extension("facts.capture._etlwalk", ["facts/capture/_etlwalk.c"], optional=True),
    # -ffp-contract=off: timestamps and gaps must round exactly as Python's float arithmetic.
    Extension("facts._ctrack", ["facts/_ctrack.c"], optional=True,
              extra_compile_args=["-ffp-contract=off"]),
])
