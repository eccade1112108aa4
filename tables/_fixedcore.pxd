# cython: language_level=3
"""What tables/_fixedcore.pyx shares with tables/_eventcore.pyx: the packed result rows."""

from libc.stdint cimport int64_t
from libcpp.vector cimport vector


cdef class PackedRows:
    cdef vector[int64_t] values
    #: Integers per row, and whether a row reads as one flat tuple.
    cdef Py_ssize_t width
    cdef bint flat
    cdef Py_ssize_t shape[1]
    cdef Py_ssize_t strides[1]
