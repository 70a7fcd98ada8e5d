/* engine._resetout: the report entries of many resets (engine.reset_entry.reset_out) in one
 * call, for the common case.
 *
 * A report on a big capture builds thousands of ResetOut entries; in Python each took about
 * 55 µs (a fifth of analyze on the 1M benchmark). This builds the same objects, field for
 * field, sharing what reset_out shares through the same cache dict and the same keys.
 * Everything that is decided once per run class, per fix plan, per distinct fix values or
 * per second of capture time is asked of Python through the context's callbacks, and kept:
 * the class's origin, confidence, pattern, diagnoses, fired rules and evidence rows; the
 * fixes; the ISO text of a whole second. A reset whose facts hold anything else than the
 * readers' types (reset_entry.reset_outs lists them) is built by the Python reset_out, through
 * ``slow``. The tests compare both passes on every shipped and corpus capture, on the
 * benchmark and on random evidence.
 *
 * setup(models: dict[name, (cls, field names)]) -> None
 *     the report models; False when their fields are not the ones written here.
 * fields() -> dict[name, field names]: what this file writes.
 * build(jobs, inferences, ctx) -> list[ResetOut]
 *     jobs: [(side, rst, evidence, dual)]; ctx: (cache, classes, plans, peer_ids,
 *     applications, class_info, plan_of, fix_of, iso_second, slow) (reset_entry.reset_outs)
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <string.h>

#include "../facts/_pymodel.h"

enum { M_RESET, M_CONN, M_EP, M_SOURCE, M_BASE, M_TRIGGER, M_DUAL, M_REASONING, M_EVIDENCE, NM };

static const char *MODEL_NAMES[NM] = {"ResetOut", "ConnectionRef", "EndpointRef", "RstSource",
                                      "Baseline", "Trigger", "DualOut", "Reasoning",
                                      "EvidenceItem"};
static const char *RESET_F[] = {"id", "capture", "frame", "connection", "observed_at",
    "claimed_sender", "time", "time_iso", "flags", "origin", "origin_confidence", "pattern",
    "rst_source", "baseline", "idle_before_s", "measured_idle_s", "idle_matches", "trigger",
    "dual", "diagnoses", "fixes", "evidence", "wireshark_filter", "reasoning", NULL};
static const char *CONN_F[] = {"id", "client", "server", "ip_version", "handshake", "start",
    "end", "application", "peer_connection_id", NULL};
static const char *EP_F[] = {"ip", "port", NULL};
static const char *SOURCE_F[] = {"ttl", "initial_ttl", "decrements", "tracert_hop",
    "tracert_address", "tracert_name", NULL};
static const char *BASE_F[] = {"ttl", "initial_ttl", "decrements", "source", "values", NULL};
static const char *TRIGGER_F[] = {"frame", "length", "delta_s", "excerpt", NULL};
static const char *DUAL_F[] = {"peer_saw_connection", "peer_sent_rst", "peer_received_rst",
    "clock_offset_s", "nat_between", "verdict", NULL};
static const char *REASONING_F[] = {"finding", "fired", NULL};
static const char *EVIDENCE_F[] = {"field", "value", "text", NULL};
static const char **FIELDS[NM] = {RESET_F, CONN_F, EP_F, SOURCE_F, BASE_F, TRIGGER_F, DUAL_F,
                                  REASONING_F, EVIDENCE_F};

static PyObject *MCLS[NM], *MKEYS[NM], *MTEMPLATE[NM], *MSET[NM];
static PyObject *ATTRS[PM_NATTRS], *A_RUN_CLASS, *A_EVIDENCE, *EMPTY_TUPLE, *EMPTY_STR,
    *S_UNKNOWN, *S_CLIENT, *S_SERVER;

/* The facts' fields read here, in this order (reset_entry.reset_outs checks the facts have them). */
enum { R_ID, R_CAPTURE, R_FRAME, R_CONNECTION, R_CLAIMED, R_TIME, R_FLAGS, R_TTL, R_INITIAL,
       R_DECREMENTS, R_HOP, R_B_CONN, R_B_VALUES, R_B_HOST, R_B_INITIAL, R_B_DECREMENTS,
       R_B_SOURCE, R_IDLE, R_IDLE_TRIGGER, R_T_LEN, R_T_FRAME, R_T_DELTA, R_T_EXCERPT,
       C_ID, C_CLIENT, C_SERVER, C_IPV, C_HANDSHAKE, C_START, C_END, E_IP, E_PORT,
       D_AVAILABLE, D_FROM_HOST, D_SAW, D_SENT, D_RECEIVED, D_OFFSET, D_NAT, S_INDEX, S_ROLE,
       V_MATCHED, NNAMES };
static const char *NAME_TEXT[NNAMES] = {"id", "capture", "frame", "connection",
    "claimed_sender", "time", "flags", "ttl", "initial_ttl", "ttl_decrements", "tracert_hop",
    "baseline_ttl_conn", "baseline_ttl_conn_values", "baseline_ttl_host",
    "baseline_initial_ttl", "baseline_decrements", "baseline_source", "idle_before_s",
    "idle_before_trigger_s", "trigger_len", "trigger_frame", "trigger_delta_s",
    "trigger_excerpt", "id", "client", "server", "ip_version", "handshake", "start", "end", "ip",
    "port", "dual_available", "rst_from_capture_host", "dual_peer_saw_connection",
    "dual_peer_sent_rst", "dual_peer_received_rst", "dual_clock_offset_s", "dual_nat_between",
    "index", "role", "cross_matched_devices"};
static PyObject *NAME[NNAMES];

static const char *VERDICT_TEXT[] = {"no_peer_capture", "sent_by_capture_host",
    "blocked_before_peer", "endpoint_sent", "both_ends_reset", "middle_injected",
    "inconclusive"};
enum { V_NO_PEER, V_HOST, V_BLOCKED, V_ENDPOINT, V_BOTH, V_MIDDLE, V_INCONCLUSIVE, NVERDICTS };
static PyObject *VERDICT[NVERDICTS];

static int interned(PyObject **slot, const char *text)
{
    return *slot || (*slot = PyUnicode_InternFromString(text)) ? 0 : -1;
}

static int init_names(void)
{
    if (pm_attr_names(ATTRS) < 0 || interned(&A_RUN_CLASS, "run_class") < 0 || interned(&A_EVIDENCE, "evidence") < 0
        || interned(&EMPTY_STR, "") < 0
        || interned(&S_UNKNOWN, "unknown") < 0 || interned(&S_CLIENT, "client") < 0
        || interned(&S_SERVER, "server") < 0)
        return -1;
    for (int i = 0; i < NNAMES; i++)
        if (interned(&NAME[i], NAME_TEXT[i]) < 0)
            return -1;
    for (int i = 0; i < NVERDICTS; i++)
        if (interned(&VERDICT[i], VERDICT_TEXT[i]) < 0)
            return -1;
    if (!EMPTY_TUPLE && !(EMPTY_TUPLE = PyTuple_New(0)))
        return -1;
    return 0;
}

/* A model of kind m from its values in declaration order, as fastmodel.construct makes it
 * with every field given; steals every v[i] (a NULL one: an error is set). */
static PyObject *model(int m, PyObject **v)
{
    PyObject *d = pm_filled(MTEMPLATE[m], MKEYS[m], v, PyTuple_GET_SIZE(MKEYS[m]));
    PyObject *fs = NULL, *o = NULL;
    /* a set's table is copied as it is: no hashing, no resizing */
    if (d && (fs = PySet_New(MSET[m])))
        o = pm_adopt(MCLS[m], d, fs, ATTRS, EMPTY_TUPLE);
    Py_XDECREF(d);
    Py_XDECREF(fs);
    return o;
}

static PyObject *ro_fields(PyObject *self, PyObject *unused)
{
    (void)self;
    (void)unused;
    PyObject *out = PyDict_New();
    for (int m = 0; out && m < NM; m++) {
        PyObject *t = pm_names_tuple(FIELDS[m]);
        if (!t || PyDict_SetItemString(out, MODEL_NAMES[m], t) < 0)
            Py_CLEAR(out);
        Py_XDECREF(t);
    }
    return out;
}

static PyObject *ro_setup(PyObject *self, PyObject *models)
{
    (void)self;
    if (!PyDict_Check(models) || init_names() < 0) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_TypeError, "setup: models must be a dict");
        return NULL;
    }
    for (int m = 0; m < NM; m++) {
        PyObject *entry = PyDict_GetItemString(models, MODEL_NAMES[m]);
        PyObject *keys = pm_names_tuple(FIELDS[m]);
        if (!keys)
            return NULL;
        int eq = 0;
        if (entry && PyTuple_Check(entry) && PyTuple_GET_SIZE(entry) == 2
            && PyType_Check(PyTuple_GET_ITEM(entry, 0)))
            eq = PyObject_RichCompareBool(PyTuple_GET_ITEM(entry, 1), keys, Py_EQ);
        if (eq <= 0) {
            Py_DECREF(keys);
            if (eq < 0)
                return NULL;
            Py_RETURN_FALSE;
        }
        PyObject *tmpl = PyDict_New(), *set = PySet_New(keys);
        for (Py_ssize_t i = 0; tmpl && i < PyTuple_GET_SIZE(keys); i++)
            if (PyDict_SetItem(tmpl, PyTuple_GET_ITEM(keys, i), Py_None) < 0)
                Py_CLEAR(tmpl);
        if (!tmpl || !set) {
            Py_XDECREF(tmpl);
            Py_XDECREF(set);
            Py_DECREF(keys);
            return NULL;
        }
        Py_INCREF(PyTuple_GET_ITEM(entry, 0));
        Py_XSETREF(MCLS[m], PyTuple_GET_ITEM(entry, 0));
        Py_XSETREF(MKEYS[m], keys);
        Py_XSETREF(MTEMPLATE[m], tmpl);
        Py_XSETREF(MSET[m], set);
    }
    Py_RETURN_TRUE;
}

/* ---- one reset ---------------------------------------------------------------------- */

typedef struct {
    PyObject *cache, *classes, *plans, *peer_ids, *applications;
    PyObject *class_info, *plan_of, *fix_of, *iso_second, *slow;
} Ctx;

#define DECLINE 1 /* not this pass's case: reset_out builds it */

/* The instance dict of a model or dataclass (new reference), NULL with no error: decline. */
static PyObject *dict_of(PyObject *o)
{
    PyObject *d = PyObject_GenericGetDict(o, NULL);
    if (d && !PyDict_CheckExact(d))
        Py_CLEAR(d);
    if (!d)
        PyErr_Clear();
    return d;
}

/* Borrowed field value; NULL with no error when absent. */
static PyObject *get(PyObject *d, int name)
{
    return PyDict_GetItemWithError(d, NAME[name]);
}

static int is_int(PyObject *v) { return Py_TYPE(v) == &PyLong_Type; }
static int is_float(PyObject *v) { return Py_TYPE(v) == &PyFloat_Type; }
static int is_str(PyObject *v) { return Py_TYPE(v) == &PyUnicode_Type; }
static int int_or_none(PyObject *v) { return v == Py_None || is_int(v); }

/* cache[key] or, when absent, made() stored there; steals key. NULL: error. */
static PyObject *shared(PyObject *cache, PyObject *key, int m, PyObject **v)
{
    if (!key) {
        for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(MKEYS[m]); i++)
            Py_XDECREF(v[i]);
        return NULL;
    }
    PyObject *found = PyDict_GetItemWithError(cache, key);
    int keep = 1;
    if (!found && PyErr_ExceptionMatches(PyExc_TypeError)) {
        PyErr_Clear(); /* an unhashable value: not shared (reset_entry._shared) */
        keep = 0;
    }
    if (found || PyErr_Occurred()) {
        for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(MKEYS[m]); i++)
            Py_XDECREF(v[i]);
        Py_DECREF(key);
        Py_XINCREF(found);
        return found;
    }
    PyObject *o = model(m, v);
    if (o && keep && PyDict_SetItem(cache, key, o) < 0)
        Py_CLEAR(o);
    Py_DECREF(key);
    return o;
}

/* reset_entry.iso_time(t, cache): the whole second's text from the cache (iso_second
 * makes and keeps it), the microseconds rounded half to even as Python's round. */
static PyObject *iso_time(const Ctx *x, double t, int *declined)
{
    double whole, frac = modf(t, &whole);
    double us = nearbyint(frac * 1e6);
    if (us >= 1000000.0) {
        us -= 1000000.0;
        whole += 1.0;
    } else if (us < 0.0) {
        us += 1000000.0;
        whole -= 1.0;
    }
    PyObject *key = PyFloat_FromDouble(whole);
    if (!key)
        return NULL;
    PyObject *text = PyDict_GetItemWithError(x->cache, key);
    if (text)
        Py_INCREF(text);
    else if (!PyErr_Occurred())
        text = PyObject_CallOneArg(x->iso_second, key);
    Py_DECREF(key);
    if (!text)
        return NULL;
    Py_ssize_t n = is_str(text) ? PyUnicode_GET_LENGTH(text) : 0;
    if (n < 6 || n > 64 || !PyUnicode_IS_ASCII(text)) {
        Py_DECREF(text);
        *declined = 1;
        return NULL;
    }
    char buf[80];
    const char *s = (const char *)PyUnicode_DATA(text);
    memcpy(buf, s, (size_t)(n - 6));
    int k = snprintf(buf + n - 6, 9, ".%06ld", (long)us);
    memcpy(buf + n - 6 + k, s + n - 6, 6);
    Py_DECREF(text);
    return PyUnicode_FromStringAndSize(buf, n + k);
}

/* (ConnectionRef, Wireshark filter prefix) of the reset's connection, once per connection:
 * reset_entry._connection_ref. Borrowed from the cache. */
static PyObject *connection_ref(const Ctx *x, PyObject *index, PyObject *conn, int *declined)
{
    PyObject *cd = dict_of(conn), *cid = cd ? get(cd, C_ID) : NULL;
    if (!cid) {
        Py_XDECREF(cd);
        if (!PyErr_Occurred())
            *declined = 1;
        return NULL;
    }
    PyObject *items[2] = {index, cid};
    PyObject *key = pm_tuple_of(2, items), *found = NULL;
    if (key)
        found = PyDict_GetItemWithError(x->cache, key);
    if (found || !key || PyErr_Occurred()) {
        Py_XDECREF(key);
        Py_DECREF(cd);
        return found;
    }
    PyObject *ends[2] = {NULL, NULL}, *ips[2] = {NULL, NULL}, *ports[2] = {NULL, NULL};
    int ok = 1;
    for (int e = 0; e < 2 && ok; e++) {
        PyObject *ep = get(cd, e ? C_SERVER : C_CLIENT);
        PyObject *ed = ep ? dict_of(ep) : NULL;
        ips[e] = ed ? get(ed, E_IP) : NULL;
        ports[e] = ed ? get(ed, E_PORT) : NULL;
        ok = ips[e] && ports[e] && is_str(ips[e]) && is_int(ports[e]);
        if (ok) {
            PyObject *v[2] = {Py_NewRef(ips[e]), Py_NewRef(ports[e])};
            ends[e] = model(M_EP, v);
            ok = ends[e] != NULL;
        }
        Py_XDECREF(ed); /* ips and ports stay alive through the connection's endpoints */
    }
    PyObject *ipv = get(cd, C_IPV), *app = NULL, *peer = NULL, *ref = NULL;
    ok = ok && ipv && is_int(ipv) && get(cd, C_HANDSHAKE) && get(cd, C_START) && get(cd, C_END);
    if (ok) {
        app = PyDict_GetItemWithError(x->applications, ports[1]);
        app = app ? Py_NewRef(app) : PyErr_Occurred() ? NULL : PyUnicode_FromFormat("TCP/%S", ports[1]);
        peer = PyDict_GetItemWithError(x->peer_ids, cid);
        peer = peer ? Py_NewRef(peer) : PyErr_Occurred() ? NULL : Py_NewRef(Py_None);
    }
    if (ok && app && peer) {
        PyObject *v[9] = {Py_NewRef(cid), Py_NewRef(ends[0]), Py_NewRef(ends[1]),
                          Py_NewRef(ipv), Py_NewRef(get(cd, C_HANDSHAKE)),
                          Py_NewRef(get(cd, C_START)), Py_NewRef(get(cd, C_END)),
                          Py_NewRef(app), Py_NewRef(peer)};
        ref = model(M_CONN, v);
    }
    PyObject *pair = NULL;
    if (ref) {
        const char *addr = PyLong_AsLong(ipv) == 4 ? "ip.addr" : "ipv6.addr";
        PyObject *prefix = PyUnicode_FromFormat(
            "%s==%U && %s==%U && tcp.port==%S && tcp.port==%S && (tcp.flags.reset==1 || "
            "tcp.flags.syn==1 || ", addr, ips[0], addr, ips[1], ports[0], ports[1]);
        if (prefix) {
            pair = PyTuple_Pack(2, ref, prefix);
            Py_DECREF(prefix);
        }
    }
    if (pair && PyDict_SetItem(x->cache, key, pair) < 0)
        Py_CLEAR(pair);
    if (!ok && !PyErr_Occurred())
        *declined = 1;
    Py_XDECREF(ends[0]);
    Py_XDECREF(ends[1]);
    Py_XDECREF(app);
    Py_XDECREF(peer);
    Py_XDECREF(ref);
    Py_DECREF(key);
    Py_DECREF(cd);
    Py_XDECREF(pair); /* the cache holds it */
    return pair;
}

/* reset_entry._dual_verdict */
static PyObject *dual_verdict(PyObject *dd, int *declined)
{
    PyObject *avail = get(dd, D_AVAILABLE), *host = get(dd, D_FROM_HOST), *saw = get(dd, D_SAW),
             *sent = get(dd, D_SENT), *recv = get(dd, D_RECEIVED);
    if (!avail || !host || !saw || !sent || !recv) {
        if (!PyErr_Occurred())
            *declined = 1;
        return NULL;
    }
    int t = PyObject_IsTrue(avail);
    if (t < 0)
        return NULL;
    if (!t)
        return VERDICT[V_NO_PEER];
    if ((t = PyObject_IsTrue(host)) != 0)
        return t < 0 ? NULL : VERDICT[V_HOST];
    if (saw == Py_False)
        return VERDICT[V_BLOCKED];
    if (sent == Py_True)
        return VERDICT[V_ENDPOINT];
    if (sent == Py_False) {
        if ((t = PyObject_IsTrue(recv)) < 0)
            return NULL;
        return t ? VERDICT[V_BOTH] : VERDICT[V_MIDDLE];
    }
    return VERDICT[V_INCONCLUSIVE];
}

static PyObject *dual_out(const Ctx *x, PyObject *dual, int *declined)
{
    PyObject *dd = dict_of(dual);
    if (!dd) {
        *declined = 1;
        return NULL;
    }
    PyObject *verdict = dual_verdict(dd, declined), *out = NULL;
    PyObject *vals[6] = {get(dd, D_SAW), get(dd, D_SENT), get(dd, D_RECEIVED),
                         get(dd, D_OFFSET), get(dd, D_NAT), verdict};
    int ok = verdict != NULL;
    for (int i = 0; i < 6 && ok; i++)
        ok = vals[i] != NULL;
    if (ok) {
        PyObject *items[7] = {MCLS[M_DUAL], vals[0], vals[1], vals[2], vals[3], vals[4], vals[5]};
        PyObject *v[6];
        for (int i = 0; i < 6; i++)
            v[i] = Py_NewRef(vals[i]);
        out = shared(x->cache, pm_tuple_of(7, items), M_DUAL, v);
    } else if (verdict && !PyErr_Occurred()) {
        *declined = 1;
    }
    Py_DECREF(dd);
    return out;
}

/* The class's (origin, origin_confidence, pattern, diagnoses, fired, evidence rows, the
 * inference, which keeps the class's id from being reused): once per run class, from
 * class_info. Borrowed. */
static PyObject *class_of(const Ctx *x, PyObject *inf, PyObject **cid)
{
    PyObject *run = PyObject_GetAttr(inf, A_RUN_CLASS);
    if (!run)
        return NULL;
    *cid = PyLong_FromVoidPtr(run != Py_None ? run : inf);
    Py_DECREF(run);
    if (!*cid)
        return NULL;
    PyObject *found = PyDict_GetItemWithError(x->classes, *cid);
    if (found || PyErr_Occurred())
        return found;
    PyObject *made = PyObject_CallOneArg(x->class_info, inf);
    if (!made)
        return NULL;
    if (!PyTuple_CheckExact(made) || PyTuple_GET_SIZE(made) != 7
        || !PyList_CheckExact(PyTuple_GET_ITEM(made, 5))) {
        Py_DECREF(made);
        PyErr_SetString(PyExc_TypeError, "class_info must return a 7-tuple, rows a list");
        return NULL;
    }
    int rc = PyDict_SetItem(x->classes, *cid, made);
    Py_DECREF(made);
    return rc < 0 ? NULL : made;
}

/* Each evidence row's item: reset_entry.evidence_from_template, bool/int/str values shared
 * through the cache under the same keys. */
static PyObject *evidence(const Ctx *x, PyObject *rows, PyObject *ev)
{
    Py_ssize_t n = PyList_GET_SIZE(rows);
    PyObject *out = PyList_New(n);
    for (Py_ssize_t i = 0; out && i < n; i++) {
        PyObject *row = PyList_GET_ITEM(rows, i); /* (field, before, after, tag) */
        PyObject *field = PyTuple_GET_ITEM(row, 0), *tag = PyTuple_GET_ITEM(row, 3);
        PyObject *actual = PyDict_GetItemWithError(ev, field), *item = NULL;
        if (!actual && PyErr_Occurred()) {
            Py_CLEAR(out);
            break;
        }
        if (!actual)
            actual = S_UNKNOWN;
        PyTypeObject *kind = Py_TYPE(actual);
        int share = kind == &PyBool_Type || kind == &PyLong_Type || kind == &PyUnicode_Type;
        PyObject *key = NULL;
        if (share) {
            PyObject *items[3] = {tag, (PyObject *)kind, actual};
            key = pm_tuple_of(3, items);
            item = key ? PyDict_GetItemWithError(x->cache, key) : NULL;
            Py_XINCREF(item);
        }
        if (!item && !PyErr_Occurred() && (key || !share)) {
            PyObject *r = PyObject_Repr(actual), *text = NULL;
            if (r)
                text = PyUnicode_FromFormat("%U%U%U", PyTuple_GET_ITEM(row, 1), r,
                                            PyTuple_GET_ITEM(row, 2));
            Py_XDECREF(r);
            PyObject *v[3] = {Py_NewRef(field), Py_NewRef(actual), text};
            item = model(M_EVIDENCE, v);
            if (item && key && PyDict_SetItem(x->cache, key, item) < 0)
                Py_CLEAR(item);
        }
        Py_XDECREF(key);
        if (!item)
            Py_CLEAR(out);
        else
            PyList_SET_ITEM(out, i, item);
    }
    return out;
}

/* compute's idle_s (fixparams): the longer of the two silences that are finite, not
 * negative floats, rounded half to even; None when neither is. 0: not a case for this key
 * (an int, or another type): the fixes are then made without the cache. */
static int idle_seconds(PyObject *ev, PyObject **idle)
{
    double best = -1.0;
    int have = 0;
    for (int k = 0; k < 2; k++) {
        PyObject *v = PyDict_GetItemWithError(ev, NAME[k ? R_IDLE_TRIGGER : R_IDLE]);
        if (!v) {
            if (PyErr_Occurred())
                return -1;
            continue;
        }
        if (v == Py_None || Py_TYPE(v) == &PyBool_Type)
            continue;
        if (!is_float(v))
            return 0;
        double d = PyFloat_AS_DOUBLE(v);
        if (isfinite(d) && d >= 0 && (!have || d > best)) {
            best = d;
            have = 1;
        }
    }
    if (have && best > 9.0e15)
        return 0;
    *idle = have ? PyLong_FromDouble(nearbyint(best)) : Py_NewRef(Py_None);
    return *idle ? 1 : -1;
}

/* One fix of the plan (spec: its token, whether it needs idle_s, its other inputs, and what
 * fix_of renders it from): once per distinct value of what its placeholders are computed
 * from (fixparams.PARAM_INPUTS), else by fix_of. New reference. */
static PyObject *one_fix(const Ctx *x, PyObject *spec, Py_ssize_t i, PyObject *ev)
{
    PyObject *token = PyTuple_GET_ITEM(spec, 0), *inputs = PyTuple_GET_ITEM(spec, 2);
    PyObject *idle = Py_None, *key = NULL, *found = NULL;
    Py_ssize_t n = PyTuple_GET_SIZE(inputs);
    int keyed = 1, wants_idle = PyObject_IsTrue(PyTuple_GET_ITEM(spec, 1));
    if (wants_idle < 0)
        return NULL;
    if (wants_idle)
        keyed = idle_seconds(ev, &idle);
    else
        Py_INCREF(idle);
    if (keyed < 0)
        return NULL;
    if (keyed && !(key = PyTuple_New(2 + 2 * n))) {
        Py_DECREF(idle);
        return NULL;
    }
    if (key) {
        PyTuple_SET_ITEM(key, 0, Py_NewRef(token));
        PyTuple_SET_ITEM(key, 1, idle);
        for (Py_ssize_t j = 0; j < n; j++) {
            PyObject *v = PyDict_GetItemWithError(ev, PyTuple_GET_ITEM(inputs, j));
            if (!v && PyErr_Occurred()) {
                Py_DECREF(key);
                return NULL;
            }
            v = v ? v : Py_None;
            PyTuple_SET_ITEM(key, 3 + 2 * j, Py_NewRef((PyObject *)Py_TYPE(v)));
            /* a list (the matched devices) keys by its items */
            v = PyList_CheckExact(v) ? PyList_AsTuple(v) : Py_NewRef(v);
            if (!v) {
                Py_DECREF(key);
                return NULL;
            }
            PyTuple_SET_ITEM(key, 2 + 2 * j, v);
        }
        found = PyDict_GetItemWithError(x->cache, key);
        if (found) {
            Py_DECREF(key);
            return Py_NewRef(found);
        }
        if (!PyErr_ExceptionMatches(PyExc_TypeError)) {
            if (PyErr_Occurred()) {
                Py_DECREF(key);
                return NULL;
            }
        } else {
            PyErr_Clear(); /* an unhashable value: made for this reset alone */
            Py_CLEAR(key);
        }
    }
    PyObject *pos = PyLong_FromSsize_t(i), *made = NULL;
    if (pos)
        made = PyObject_CallFunctionObjArgs(x->fix_of, pos, PyTuple_GET_ITEM(spec, 3),
                                            PyTuple_GET_ITEM(spec, 4), PyTuple_GET_ITEM(spec, 5),
                                            NULL);
    Py_XDECREF(pos);
    if (made && key && PyDict_SetItem(x->cache, key, made) < 0)
        Py_CLEAR(made);
    Py_XDECREF(key);
    return made;
}

/* The fixes of the reset's plan (its class and port), each from one_fix: a new list. */
static PyObject *fixes(const Ctx *x, PyObject *cid, PyObject *port, PyObject *inf, Py_ssize_t i,
                       PyObject *ev)
{
    PyObject *pk[2] = {cid, port};
    PyObject *pkey = pm_tuple_of(2, pk), *plan = NULL;
    if (!pkey)
        return NULL;
    plan = PyDict_GetItemWithError(x->plans, pkey);
    if (!plan && !PyErr_Occurred()) {
        plan = PyObject_CallFunctionObjArgs(x->plan_of, inf, port, NULL);
        int ok = plan && PyTuple_CheckExact(plan);
        for (Py_ssize_t k = 0; ok && k < PyTuple_GET_SIZE(plan); k++) {
            PyObject *spec = PyTuple_GET_ITEM(plan, k);
            ok = PyTuple_CheckExact(spec) && PyTuple_GET_SIZE(spec) == 6
                 && PyTuple_CheckExact(PyTuple_GET_ITEM(spec, 2));
        }
        if (plan && !ok) {
            Py_CLEAR(plan);
            PyErr_SetString(PyExc_TypeError,
                            "plan_of must return ((token, idle, inputs, fix, names, wanted), ...)");
        }
        if (plan && PyDict_SetItem(x->plans, pkey, plan) < 0)
            Py_CLEAR(plan);
        Py_XDECREF(plan); /* the plans dict holds it */
    }
    Py_DECREF(pkey);
    if (!plan)
        return NULL;
    Py_ssize_t n = PyTuple_GET_SIZE(plan);
    PyObject *out = PyList_New(n);
    for (Py_ssize_t k = 0; out && k < n; k++) {
        PyObject *fix = one_fix(x, PyTuple_GET_ITEM(plan, k), i, ev);
        if (!fix)
            Py_CLEAR(out);
        else
            PyList_SET_ITEM(out, k, fix);
    }
    return out;
}

/* reset_entry._wireshark_filter: the prefix, then the RST's and its trigger's frames. */
static PyObject *wireshark_filter(PyObject *prefix, PyObject *frame, PyObject *trigger)
{
    int a = PyObject_IsTrue(frame), b = PyObject_IsTrue(trigger);
    if (a < 0 || b < 0)
        return NULL;
    if (a && b) {
        int c = PyObject_RichCompareBool(frame, trigger, Py_EQ);
        if (c < 0)
            return NULL;
        if (c)
            b = 0;
        else if ((c = PyObject_RichCompareBool(trigger, frame, Py_LT)) < 0)
            return NULL;
        else if (c)
            return PyUnicode_FromFormat("%Uframe.number in {%S %S})", prefix, trigger, frame);
        else
            return PyUnicode_FromFormat("%Uframe.number in {%S %S})", prefix, frame, trigger);
    }
    if (a || b)
        return PyUnicode_FromFormat("%Uframe.number in {%S})", prefix, a ? frame : trigger);
    return PyUnicode_FromFormat("%Uframe.number in {})", prefix);
}


/* The server port of the reset's connection (borrowed), NULL with no error: decline. */
static PyObject *server_port(PyObject *conn)
{
    PyObject *cd = dict_of(conn), *port = NULL;
    PyObject *server = cd ? get(cd, C_SERVER) : NULL;
    PyObject *sd = server ? dict_of(server) : NULL;
    if (sd) {
        port = get(sd, E_PORT); /* owned by the endpoint, which the connection holds */
        Py_DECREF(sd);
    }
    Py_XDECREF(cd);
    return port && is_int(port) ? port : NULL;
}

#define STEP(k, expr)                \
    do {                             \
        if (ok) {                    \
            v[k] = (expr);           \
            ok = v[k] != NULL;       \
        }                            \
    } while (0)

/* One entry from the reset's, side's fields (rd, sd); NULL with *declined set: reset_out's
 * case, NULL without: an error. */
static PyObject *entry_from(const Ctx *x, PyObject *sd, PyObject *rd, PyObject *ev,
                            PyObject *dual, PyObject *inf, Py_ssize_t i, int *declined)
{
    PyObject *f[NNAMES] = {NULL};
    int ok = 1;
    for (int k = R_ID; ok && k <= R_T_EXCERPT; k++)
        ok = (f[k] = get(rd, k)) != NULL;
    if (ok) {
        f[S_INDEX] = get(sd, S_INDEX);
        f[S_ROLE] = get(sd, S_ROLE);
        ok = f[S_INDEX] && f[S_ROLE] && is_int(f[S_INDEX]) && is_str(f[S_ROLE])
             && is_str(f[R_ID]) && is_float(f[R_TIME]) && int_or_none(f[R_FRAME])
             && int_or_none(f[R_T_FRAME])
             && (f[R_B_VALUES] == Py_None || PyList_CheckExact(f[R_B_VALUES]));
    }
    PyObject *port = ok ? server_port(f[R_CONNECTION]) : NULL;
    if (!port) {
        if (!PyErr_Occurred())
            *declined = 1;
        return NULL;
    }
    PyObject *cid = NULL, *cls = class_of(x, inf, &cid);
    PyObject *pair = cls ? connection_ref(x, f[S_INDEX], f[R_CONNECTION], declined) : NULL;
    if (pair && (!PyTuple_CheckExact(pair) || PyTuple_GET_SIZE(pair) != 2
                 || !is_str(PyTuple_GET_ITEM(pair, 1)))) {
        pair = NULL;
        *declined = 1;
    }
    if (!pair) {
        Py_XDECREF(cid);
        return NULL;
    }
    PyObject *v[24] = {NULL}, *role = f[S_ROLE], *observed = S_UNKNOWN;
    if (PyUnicode_Compare(role, S_CLIENT) == 0 || PyUnicode_Compare(role, S_SERVER) == 0)
        observed = role;
    STEP(0, PyUnicode_FromFormat("%S:%U", f[S_INDEX], f[R_ID]));
    STEP(1, Py_NewRef(f[R_CAPTURE]));
    STEP(2, Py_NewRef(f[R_FRAME]));
    STEP(3, Py_NewRef(PyTuple_GET_ITEM(pair, 0)));
    STEP(4, Py_NewRef(observed));
    STEP(5, Py_NewRef(f[R_CLAIMED]));
    STEP(6, Py_NewRef(f[R_TIME]));
    STEP(7, iso_time(x, PyFloat_AS_DOUBLE(f[R_TIME]), declined));
    STEP(8, Py_NewRef(f[R_FLAGS]));
    STEP(9, Py_NewRef(PyTuple_GET_ITEM(cls, 0)));
    STEP(10, Py_NewRef(PyTuple_GET_ITEM(cls, 1)));
    STEP(11, Py_NewRef(PyTuple_GET_ITEM(cls, 2)));
    if (ok) {
        PyObject *items[7] = {MCLS[M_SOURCE], f[R_TTL], f[R_INITIAL], f[R_DECREMENTS], f[R_HOP],
                              Py_None, Py_None};
        PyObject *s[6] = {Py_NewRef(f[R_TTL]), Py_NewRef(f[R_INITIAL]),
                          Py_NewRef(f[R_DECREMENTS]), Py_NewRef(f[R_HOP]), Py_NewRef(Py_None),
                          Py_NewRef(Py_None)};
        STEP(12, shared(x->cache, pm_tuple_of(7, items), M_SOURCE, s));
    }
    if (ok) {
        PyObject *ttl = f[R_B_CONN] != Py_None ? f[R_B_CONN] : f[R_B_HOST];
        PyObject *values = f[R_B_VALUES] == Py_None ? Py_NewRef(Py_None)
                                                    : PyList_AsTuple(f[R_B_VALUES]);
        ok = values != NULL;
        if (ok) {
            PyObject *items[6] = {MCLS[M_BASE], ttl, f[R_B_INITIAL], f[R_B_DECREMENTS],
                                  f[R_B_SOURCE], values};
            PyObject *b[5] = {Py_NewRef(ttl), Py_NewRef(f[R_B_INITIAL]),
                              Py_NewRef(f[R_B_DECREMENTS]), Py_NewRef(f[R_B_SOURCE]),
                              Py_NewRef(f[R_B_VALUES])};
            STEP(13, shared(x->cache, pm_tuple_of(6, items), M_BASE, b));
            Py_DECREF(values);
        }
    }
    STEP(14, Py_NewRef(f[R_IDLE]));
    if (ok) { /* facts.cross.measured_idle */
        PyObject *before = f[R_IDLE], *trigger = f[R_IDLE_TRIGGER];
        if (before == Py_None || trigger == Py_None) {
            STEP(15, Py_NewRef(before == Py_None ? trigger : before));
        } else {
            int gt = PyObject_RichCompareBool(trigger, before, Py_GT);
            STEP(15, gt < 0 ? NULL : Py_NewRef(gt ? trigger : before));
        }
    }
    if (ok) {
        PyObject *matched = PyDict_GetItemWithError(ev, NAME[V_MATCHED]);
        int truthy = matched ? PyObject_IsTrue(matched) : PyErr_Occurred() ? -1 : 0;
        STEP(16, truthy < 0 ? NULL : truthy ? PySequence_List(matched) : PyList_New(0));
    }
    if (ok) {
        int truthy = PyObject_IsTrue(f[R_T_LEN]);
        if (truthy > 0) {
            PyObject *t[4] = {Py_NewRef(f[R_T_FRAME]), Py_NewRef(f[R_T_LEN]),
                              Py_NewRef(f[R_T_DELTA]), Py_NewRef(f[R_T_EXCERPT])};
            STEP(17, model(M_TRIGGER, t));
        } else {
            STEP(17, truthy < 0 ? NULL : Py_NewRef(Py_None));
        }
    }
    STEP(18, dual_out(x, dual, declined));
    STEP(19, Py_NewRef(PyTuple_GET_ITEM(cls, 3)));
    STEP(20, fixes(x, cid, port, inf, i, ev));
    if (ok) { /* the items show what the inference read (reset_out: inf.evidence) */
        PyObject *read = PyObject_GetAttr(inf, A_EVIDENCE);
        if (read && !PyDict_CheckExact(read)) {
            Py_CLEAR(read);
            PyErr_SetString(PyExc_TypeError, "an inference's evidence is not a dict");
        }
        STEP(21, read ? evidence(x, PyTuple_GET_ITEM(cls, 5), read) : NULL);
        Py_XDECREF(read);
    }
    STEP(22, wireshark_filter(PyTuple_GET_ITEM(pair, 1), f[R_FRAME], f[R_T_FRAME]));
    if (ok) {
        PyObject *r[2] = {Py_NewRef(EMPTY_STR), Py_NewRef(PyTuple_GET_ITEM(cls, 4))};
        STEP(23, model(M_REASONING, r));
    }
    Py_DECREF(cid);
    if (ok)
        return model(M_RESET, v);
    for (int k = 0; k < 24; k++)
        Py_XDECREF(v[k]);
    return NULL;
}

static PyObject *entry(const Ctx *x, PyObject *job, PyObject *inf, Py_ssize_t i, int *declined)
{
    if (!PyTuple_CheckExact(job) || PyTuple_GET_SIZE(job) != 4
        || !PyDict_CheckExact(PyTuple_GET_ITEM(job, 2))) {
        *declined = 1;
        return NULL;
    }
    PyObject *sd = dict_of(PyTuple_GET_ITEM(job, 0)), *rd = dict_of(PyTuple_GET_ITEM(job, 1));
    PyObject *out = NULL;
    if (sd && rd)
        out = entry_from(x, sd, rd, PyTuple_GET_ITEM(job, 2), PyTuple_GET_ITEM(job, 3), inf, i,
                         declined);
    else
        *declined = 1;
    Py_XDECREF(sd);
    Py_XDECREF(rd);
    return out;
}

static PyObject *ro_build(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *jobs, *infs;
    Ctx x;
    if (!PyArg_ParseTuple(args, "O!O!(O!O!O!O!O!OOOOO)", &PyList_Type, &jobs, &PyList_Type,
                          &infs, &PyDict_Type, &x.cache, &PyDict_Type, &x.classes, &PyDict_Type,
                          &x.plans, &PyDict_Type, &x.peer_ids, &PyDict_Type, &x.applications,
                          &x.class_info, &x.plan_of, &x.fix_of, &x.iso_second, &x.slow))
        return NULL;
    if (!MCLS[0]) {
        PyErr_SetString(PyExc_RuntimeError, "build: setup() has not accepted the models");
        return NULL;
    }
    Py_ssize_t n = PyList_GET_SIZE(jobs);
    if (PyList_GET_SIZE(infs) != n) {
        PyErr_SetString(PyExc_ValueError, "build: one inference per job");
        return NULL;
    }
    PyObject *out = PyList_New(n);
    for (Py_ssize_t i = 0; out && i < n; i++) {
        int declined = 0;
        PyObject *made = entry(&x, PyList_GET_ITEM(jobs, i), PyList_GET_ITEM(infs, i), i,
                               &declined);
        if (!made && declined && !PyErr_Occurred()) {
            PyObject *pos = PyLong_FromSsize_t(i);
            made = pos ? PyObject_CallOneArg(x.slow, pos) : NULL;
            Py_XDECREF(pos);
        }
        if (!made)
            Py_CLEAR(out);
        else
            PyList_SET_ITEM(out, i, made);
    }
    return out;
}

static PyMethodDef methods[] = {
    {"setup", ro_setup, METH_O,
     "setup(models) -> bool: the report models {name: (cls, field names)}; False (and "
     "nothing kept) when their fields are not the ones written here"},
    {"fields", ro_fields, METH_NOARGS, "fields() -> {model name: the field names written here}"},
    {"build", ro_build, METH_VARARGS,
     "build(jobs, inferences, ctx) -> [ResetOut]: reset_entry.reset_out of each job"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_resetout", NULL, -1, methods};

PyMODINIT_FUNC PyInit__resetout(void)
{
    return PyModule_Create(&module);
}
