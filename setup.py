from setuptools import Extension, setup

setup(ext_modules=[Extension("facts.capture._etlwalk", ["facts/capture/_etlwalk.c"], optional=True)])
