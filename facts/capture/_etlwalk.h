/* facts.capture._etlwalk: the internal interface between its source files.
 *
 * The hot loops of the compiled .etl reader (etl_fastc): the event walk of a buffer, the time
 * merge of processor streams, the pktmon fold and the records of what it kept. Python keeps
 * the hand-overs to the general code (etl_events.walk_buffer, EtlCapture.fold_records) and
 * building the packets; each function here mirrors Python code exactly (tests compare them,
 * also on random and damaged bytes). Every read is bounds-checked.
 *
 * _etlwalk_walk.c    walk(): the event walk of one decompressed buffer body and the items
 *                    (with their fold keys and extras) it returns
 * _etlwalk_merge.c   merge(): the time merge of processor streams (the Merger iterator)
 * _etlwalk_fold.c    fold(): the pktmon fold of a list of walk items
 * _etlwalk_records.c records(): the records of a list the fold kept, one at a time
 * _etlwalk_module.c  the method table and the module
 *
 * Each function is described where it is defined.
 */
#ifndef RSTSLEUTH_ETLWALK_H
#define RSTSLEUTH_ETLWALK_H
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <limits.h>
#include <string.h>

PyObject *walk(PyObject *self, PyObject *args);        /* _etlwalk_walk.c */
PyObject *merge(PyObject *self, PyObject *streams);    /* _etlwalk_merge.c */
extern PyTypeObject MergerType;                         /* _etlwalk_merge.c */
PyObject *fold(PyObject *self, PyObject *args);        /* _etlwalk_fold.c */
PyObject *records(PyObject *self, PyObject *args);     /* _etlwalk_records.c */
extern PyTypeObject RecordsType;                        /* _etlwalk_records.c */

/* An int64 from a Python int. PyLong_AsLongLong goes through a byte array for ints of more
 * than one digit (every timestamp); the overflow variant reads the digits directly.
 * Here (inline) because merge and fold call it once per item. */
static inline int as_int64(PyObject *v, long long *out)
{
    int ovf;
    long long x = PyLong_AsLongLongAndOverflow(v, &ovf);
    if (ovf) {
        PyErr_SetString(PyExc_OverflowError, "timestamp out of int64 range");
        return -1;
    }
    if (x == -1 && PyErr_Occurred())
        return -1;
    *out = x;
    return 0;
}

#endif
