/* The pydantic model objects the compiled modules build (facts._ctrack's facts and cross
 * evidence, engine._resetout's report entries), made as facts.fastmodel.construct makes a
 * model with every field given: object.__new__(cls), then its __dict__ (the values in
 * declaration order), a fresh __pydantic_fields_set__, no extra, no private. Header-only:
 * the modules are separate extensions. */
#ifndef RSTSLEUTH_PYMODEL_H
#define RSTSLEUTH_PYMODEL_H

#include <Python.h>

/* __dict__, __pydantic_fields_set__, __pydantic_extra__, __pydantic_private__ */
enum { PM_DICT, PM_FSET, PM_EXTRA, PM_PRIV, PM_NATTRS };

/* Interns the attribute names into attrs once; -1 on error. */
static inline int pm_attr_names(PyObject **attrs)
{
    static const char *text[PM_NATTRS] = {"__dict__", "__pydantic_fields_set__",
                                          "__pydantic_extra__", "__pydantic_private__"};
    for (int i = 0; i < PM_NATTRS; i++)
        if (!attrs[i] && !(attrs[i] = PyUnicode_InternFromString(text[i])))
            return -1;
    return 0;
}

/* A tuple of the interned names (a NULL-terminated list). */
static inline PyObject *pm_names_tuple(const char **names)
{
    Py_ssize_t n = 0;
    while (names[n])
        n++;
    PyObject *t = PyTuple_New(n);
    for (Py_ssize_t i = 0; t && i < n; i++) {
        PyObject *s = PyUnicode_InternFromString(names[i]);
        if (!s) {
            Py_CLEAR(t);
            break;
        }
        PyTuple_SET_ITEM(t, i, s);
    }
    return t;
}

/* A tuple of borrowed items. */
static inline PyObject *pm_tuple_of(Py_ssize_t n, PyObject **items)
{
    PyObject *t = PyTuple_New(n);
    for (Py_ssize_t i = 0; t && i < n; i++) {
        Py_INCREF(items[i]);
        PyTuple_SET_ITEM(t, i, items[i]);
    }
    return t;
}

/* A copy of tmpl (keys[i] -> None, in order) with v[i] under keys[i]: no resizing. Steals
 * every v[i]; a NULL one (its error set) gives NULL. */
static inline PyObject *pm_filled(PyObject *tmpl, PyObject *keys, PyObject **v, Py_ssize_t n)
{
    int ok = 1;
    for (Py_ssize_t i = 0; i < n; i++)
        ok = ok && v[i];
    PyObject *d = ok ? PyDict_Copy(tmpl) : NULL;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (d && PyDict_SetItem(d, PyTuple_GET_ITEM(keys, i), v[i]) < 0)
            Py_CLEAR(d);
        Py_XDECREF(v[i]);
    }
    return d;
}

/* object.__new__(cls) around d as its __dict__, fs its fields set (fastmodel._adopt);
 * attrs: pm_attr_names's, empty: an empty tuple. */
static inline PyObject *pm_adopt(PyObject *cls, PyObject *d, PyObject *fs, PyObject **attrs,
                                 PyObject *empty)
{
    PyObject *o = PyBaseObject_Type.tp_new((PyTypeObject *)cls, empty, NULL);
    if (o && (PyObject_GenericSetAttr(o, attrs[PM_DICT], d) < 0
              || PyObject_GenericSetAttr(o, attrs[PM_FSET], fs) < 0
              || PyObject_GenericSetAttr(o, attrs[PM_EXTRA], Py_None) < 0
              || PyObject_GenericSetAttr(o, attrs[PM_PRIV], Py_None) < 0))
        Py_CLEAR(o);
    return o;
}

#endif
