/* The module facts.capture._etlwalk: walk, merge, fold and records (see _etlwalk.h). */
#include "_etlwalk.h"

static PyMethodDef methods[] = {
    {"walk", walk, METH_VARARGS,
     "walk(body, p, last_group, last_number, last_app, pktmon_guid, ndis_guid, size_at_4"
     "[, extra[, max_items]])"
     " -> (items, p, last_group, last_number, last_app, pktmon_events, ndis_events)"},
    {"fold", fold, METH_VARARGS,
     "fold(items, i, frame, live, older, generation_start, window, dirs)"
     " -> (kept, i, frame, live, older, generation_start)"},
    {"records", records, METH_VARARGS,
     "records(kept, frame, ctx, cap) -> iterator of the records of the items fold kept"
     " (frames frame+1 on; ctx as _ctrack.track_frame_batches reads it)"},
    {"merge", merge, METH_O,
     "merge(streams) -> iterator of lists: the streams' lists of events (tuples, int64"
     " timestamp first) merged by time exactly as etl_buffers.merge_streams merges them"},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_etlwalk",
                                    "Compiled event stepping for etl_fast.", -1, methods,
                                    NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__etlwalk(void)
{
    if (PyType_Ready(&MergerType) < 0 || PyType_Ready(&RecordsType) < 0)
        return NULL;
    return PyModule_Create(&module);
}
