/* The pydantic models of the compiled facts, made as facts.fastmodel.construct makes them when
 * every field is given: object.__new__(cls), then __dict__ (the values in declaration order),
 * a fresh __pydantic_fields_set__ of every field, no extra, no private. Nothing is validated,
 * as with construct; the field names here are checked against the models at import
 * (facts.ctrack), and the tests compare every fact with the Python pass's, dump and JSON. */
#include "_ctrack.h"
#include "_pymodel.h"

static const char *CONN_FIELDS[] = {"kind", "id", "capture", "ip_version", "client", "server",
    "roles_inferred", "start", "end", "packets_c2s", "packets_s2c", "bytes_c2s", "bytes_s2c",
    "handshake", "syn_time", "synack_time", "client_isn", "server_isn", "close", "fin_by",
    "rst_count", "largest_idle_gap_s", "largest_idle_gap_at", "client_ttls", "server_ttls",
    "client_ttl_changes", "server_ttl_changes", "largest_segment", "fragments_seen",
    "icmp_too_big_seen", "path_mtu", NULL};
static const char *EP_FIELDS[] = {"ip", "port", NULL};
static const char *RST_FIELDS[] = {"kind", "id", "capture", "frame", "connection_id",
    "connection", "claimed_sender", "time", "flags", "seq", "ack", "ip_version",
    "reserved_bits_set", "rst_payload_len", "ttl", "initial_ttl", "ttl_decrements",
    "tracert_hop", "baseline_ttl_conn", "baseline_ttl_conn_values", "baseline_ttl_host",
    "baseline_initial_ttl", "baseline_decrements", "baseline_source", "ttl_delta",
    "ttl_matches_baseline", "initial_ttl_differs", "baseline_ttl_varies", "ip_id", "ip_id_gap",
    "ip_id_in_sequence", "ip_id_equals_other_last", "ip_id_zero", "ip_id_equals_syn", "window",
    "window_equals_other_last", "seq_position", "seq_offset", "ack_position", "ack_offset",
    "rsts_in_connection", "rst_index_in_connection", "rst_seq_differ", "rst_ack_differ",
    "rst_seq_change", "data_after_rst", "data_after_rst_s", "rst_behind_data",
    "rst_both_directions", "since_syn_s", "since_start_s", "handshake_completed", "syn_seen",
    "synack_seen", "rst_answers_syn", "rst_answers_synack", "synack_after_rst", "idle_before_s",
    "idle_sender_s", "idle_before_trigger_s", "idle_silence_s", "earlier_gap_max_s",
    "idle_silence_ratio", "packets_before", "bytes_c2s_before", "bytes_s2c_before",
    "payload_bytes_before", "trigger_delta_s", "trigger_len", "trigger_excerpt", "trigger_frame",
    "largest_segment_before", "fragments_seen", "icmp_too_big_seen", "path_mtu",
    "challenge_ack_seen", NULL};
static const char **FIELDS[NMODELS] = {CONN_FIELDS, EP_FIELDS, RST_FIELDS};
static const char *MODEL_NAMES[NMODELS] = {"Connection", "Endpoint", "RstEvent"};

static const char *STR_TEXT[NSTR] = {"connection", "rst", "RST", "RST+ACK", "none", "syn",
    "syn_synack", "complete", "open", "fin", "fin_rst", "exact", "in_window", "outside",
    "unknown", "behind", "ahead", "none", "host"};

static PyObject *MCLS[NMODELS], *MKEYS[NMODELS], *MTEMPLATE[NMODELS], *MNAMESET[NMODELS];
PyObject *STR[NSTR];
static PyObject *ATTRS[PM_NATTRS];

PyObject *fact_fields(PyObject *self, PyObject *unused)
{
    (void)self;
    (void)unused;
    return Py_BuildValue("(NNN)", pm_names_tuple(CONN_FIELDS), pm_names_tuple(EP_FIELDS),
                         pm_names_tuple(RST_FIELDS));
}

static int attr_names(void);

int facts_ready(void)
{
    return MCLS[0] != NULL;
}

int facts_setup(PyObject *classes)
{
    for (int m = 0; m < NMODELS; m++) {
        PyObject *cls = PyDict_GetItemString(classes, MODEL_NAMES[m]);
        if (!cls || !PyType_Check(cls)) {
            PyErr_Format(PyExc_TypeError, "setup: class %s missing", MODEL_NAMES[m]);
            return -1;
        }
        PyObject *keys = pm_names_tuple(FIELDS[m]), *tmpl = PyDict_New(), *set = NULL;
        for (Py_ssize_t i = 0; keys && tmpl && i < PyTuple_GET_SIZE(keys); i++)
            if (PyDict_SetItem(tmpl, PyTuple_GET_ITEM(keys, i), Py_None) < 0)
                Py_CLEAR(tmpl);
        if (keys && tmpl)
            set = PyFrozenSet_New(keys);
        if (!set) {
            Py_XDECREF(keys);
            Py_XDECREF(tmpl);
            return -1;
        }
        Py_INCREF(cls);
        Py_XSETREF(MCLS[m], cls);
        Py_XSETREF(MKEYS[m], keys);
        Py_XSETREF(MTEMPLATE[m], tmpl);
        Py_XSETREF(MNAMESET[m], set);
    }
    for (int i = 0; i < NSTR; i++)
        if (!STR[i] && !(STR[i] = PyUnicode_InternFromString(STR_TEXT[i])))
            return -1;
    return attr_names();
}

static int attr_names(void)
{
    return pm_attr_names(ATTRS);
}

static PyObject *adopted(PyObject *cls, PyObject *d, PyObject *fs)
{
    return pm_adopt(cls, d, fs, ATTRS, EMPTY);
}

/* A model of ``cls`` around ``d`` (its fields in declaration order) with ``fs`` its fields
 * set, for the other files' models (facts/_ctrack_cross.c). */
PyObject *adopt_dict(PyObject *cls, PyObject *d, PyObject *fs)
{
    return attr_names() < 0 ? NULL : adopted(cls, d, fs);
}

/* adopt_exact(cls, names, data): fastmodel.construct's common case, every field given in
 * declaration order (``names``): ``data`` itself becomes the model's __dict__ and a set of
 * its keys the fields set. None when the keys are not exactly ``names`` (Python then
 * builds the model). Only for the plain models fastmodel checks. */
PyObject *adopt_exact(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *cls, *names, *data, *k, *v;
    if (!PyArg_ParseTuple(args, "O!O!O!", &PyType_Type, &cls, &PyTuple_Type, &names,
                          &PyDict_Type, &data))
        return NULL;
    if (PyDict_GET_SIZE(data) != PyTuple_GET_SIZE(names))
        Py_RETURN_NONE;
    Py_ssize_t pos = 0, i = 0;
    while (PyDict_Next(data, &pos, &k, &v)) {
        PyObject *want = PyTuple_GET_ITEM(names, i++);
        if (k != want) {
            int eq = PyObject_RichCompareBool(k, want, Py_EQ);
            if (eq < 0)
                return NULL;
            if (!eq)
                Py_RETURN_NONE;
        }
    }
    if (attr_names() < 0)
        return NULL;
    PyObject *fs = PySet_New(data);
    if (!fs)
        return NULL;
    PyObject *o = adopted(cls, data, fs);
    Py_DECREF(fs);
    return o;
}

/* A model of kind m from its field values in declaration order; steals every v[i] (NULL: an
 * error is set). What fastmodel.construct(cls, **all_fields) builds. */
PyObject *model(int m, PyObject **v, int n)
{
    PyObject *keys = MKEYS[m];
    if (n != PyTuple_GET_SIZE(keys)) {
        PyErr_Format(PyExc_SystemError, "%s: %d values", MODEL_NAMES[m], n);
        for (int i = 0; i < n; i++)
            Py_XDECREF(v[i]);
        return NULL;
    }
    PyObject *d = pm_filled(MTEMPLATE[m], keys, v, n), *fs = NULL, *o = NULL;
    if (d && (fs = PySet_New(MNAMESET[m])))
        o = adopted(MCLS[m], d, fs);
    Py_XDECREF(fs);
    Py_XDECREF(d);
    return o;
}

PyObject *fact_id(char c, int64_t n)
{
    char buf[32];
    int len = snprintf(buf, sizeof buf, "%c%lld", c, (long long)n);
    return PyUnicode_FromStringAndSize(buf, len);
}

