"""Builds the optional compiled modules; the rest is pyproject.toml.

app/records/_speedups.pyx (encoders, parser, record batches), tables/_fixedcore.pyx
(tumbling and hopping windows, C++), tables/_eventcore.pyx (sliding windows and
sessions, C++) and tables/_dedupecore.pyx (the duplicate check). Without a compiler the
build goes on without them (``optional=True``) and txstream uses its Python code, which
gives the same results.
"""

from setuptools import Extension, setup

try:
    from Cython.Build import cythonize
except ImportError:  # Cython is a build requirement; a plain sdist build may lack it
    extensions = []
else:
    extensions = cythonize(
        [Extension("app.records._speedups", ["app/records/_speedups.pyx"], optional=True),
         Extension("tables._fixedcore", ["tables/_fixedcore.pyx"], language="c++",
                   optional=True),
         Extension("tables._eventcore", ["tables/_eventcore.pyx"], language="c++",
                   optional=True),
         Extension("tables._dedupecore", ["tables/_dedupecore.pyx"], optional=True)],
        compiler_directives={"language_level": "3"}, quiet=True)

setup(ext_modules=extensions)
