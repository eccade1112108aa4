"""Builds the optional compiled encoders (app/records/_speedups.pyx); the rest is pyproject.toml.

Without a C compiler the build goes on without them (``optional=True``) and txstream uses
its Python encoders, which write the same bytes.
"""

from setuptools import Extension, setup

try:
    from Cython.Build import cythonize
except ImportError:  # Cython is a build requirement; a plain sdist build may lack it
    extensions = []
else:
    extensions = cythonize(
        [Extension("app.records._speedups", ["app/records/_speedups.pyx"], optional=True)],
        compiler_directives={"language_level": "3"}, quiet=True)

setup(ext_modules=extensions)
