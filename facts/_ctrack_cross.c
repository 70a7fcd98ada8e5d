/* facts.cross.analyse in C (cross_analyse): the same CrossEvidence per RST id from the same
 * pass over the connections and RSTs, decision for decision (facts/cross.py says why each
 * pattern is computed the way it is).
 *
 * Only inputs of the types the readers give are taken: str ids and addresses, int ports,
 * counts and TTLs, finite float times, dict TTL histograms, bool flags. Anything else (an
 * int time, a NaN, an object without those fields) returns None and facts/cross.py runs its
 * Python code, so no Python code runs in here and borrowed references stay valid. The tests
 * compare both on generated captures, the corpus and edge cases made by hand. */
#include "_ctrack.h"
#include "_pymodel.h"
#include <math.h>

enum { K_ID, K_CLIENT, K_SERVER, K_IP, K_PORT, K_SYN_TIME, K_START, K_END, K_HANDSHAKE,
       K_PC2S, K_PS2C, K_CTTLS, K_STTLS, K_CCHG, K_SCHG, K_CONN_ID, K_CONN, K_TIME,
       K_IDLE_BEFORE, K_IDLE_TRIGGER, K_ANSWERS_SYN, NKEYS };
static const char *KEY_TEXT[NKEYS] = {"id", "client", "server", "ip", "port", "syn_time",
    "start", "end", "handshake", "packets_c2s", "packets_s2c", "client_ttls", "server_ttls",
    "client_ttl_changes", "server_ttl_changes", "connection_id", "connection", "time",
    "idle_before_s", "idle_before_trigger_s", "rst_answers_syn"};
/* CrossEvidence's fields in declaration order (checked against the names the caller gives) */
#define NOUT 11
static const char *OUT_TEXT[NOUT] = {"cross_reconnect_cycle", "cross_cycle_period_s",
    "cross_resets_same_second", "cross_port_syn_rejects", "cross_port_syn_accepts",
    "cross_rejects_above_rate", "cross_source_port_exhaustion", "cross_ttl_shift",
    "cross_one_sided_flow", "cross_idle_matches_default", "cross_matched_devices"};
static PyObject *KEY[NKEYS], *OUT_NAMES;

typedef struct {               /* facts/cross.py's constants, read by the caller each time */
    Py_ssize_t cycle_min_resets, reuses_for_exhaustion;
    double cycle_tolerance, cycle_min_period, burst_window, rate_window, exhaustion_ports,
        reuse_window;
} Consts;

typedef struct {               /* one Connection; references borrowed from its __dict__ */
    PyObject *id, *cip, *cport, *sip, *sport, *end_obj, *ttls[2], *changes[2];
    double syn, start, end;
    char has_syn, hs_ok, one_sided;
} CC;

typedef struct {               /* one RstEvent */
    PyObject *id, *cid, *conn;
    CC c;                      /* its own connection field */
    double time, idle;
    char has_idle, answers_syn;
    Py_ssize_t first;          /* index of its connection's first RST */
} CR;

typedef struct { double v; Py_ssize_t i; } Keyed;

/* Where each key sat in the last dict that had it: the facts' dicts all have their fields
 * in declaration order, so reading the entry at that place (PyDict_Next from it) finds the
 * key without hashing into the table, a cache miss fewer per field on 20 000 connections. */
static Py_ssize_t HINT[NKEYS];
static int hints_ready;

static int keys_ready(void)
{
    if (!hints_ready) {
        for (int i = 0; i < NKEYS; i++)
            HINT[i] = -1;
        hints_ready = 1;
    }
    for (int i = 0; i < NKEYS; i++)
        if (!KEY[i] && !(KEY[i] = PyUnicode_InternFromString(KEY_TEXT[i])))
            return -1;
    if (!OUT_NAMES) {
        PyObject *t = PyTuple_New(NOUT);
        for (int i = 0; t && i < NOUT; i++) {
            PyObject *s = PyUnicode_InternFromString(OUT_TEXT[i]);
            if (!s)
                Py_CLEAR(t);
            else
                PyTuple_SET_ITEM(t, i, s);
        }
        if (!t)
            return -1;
        OUT_NAMES = t;
    }
    return 0;
}

/* The object's __dict__ (borrowed: the object keeps it), or NULL without an error. */
static PyObject *fields_of(PyObject *o)
{
    PyObject *d = PyObject_GenericGetDict(o, NULL);
    if (!d) {
        PyErr_Clear();
        return NULL;
    }
    Py_DECREF(d);
    return PyDict_CheckExact(d) ? d : NULL;
}

static int same_key(PyObject *key, int k)
{
    return key == KEY[k] || (PyUnicode_CheckExact(key) && PyObject_Hash(key) == PyObject_Hash(KEY[k])
                             && !PyUnicode_Compare(key, KEY[k]));
}

static PyObject *item(PyObject *d, int k)
{
    Py_ssize_t pos = HINT[k];
    PyObject *key, *v;
    if (pos >= 0 && PyDict_Next(d, &pos, &key, &v) && same_key(key, k))
        return v;
    v = PyDict_GetItemWithError(d, KEY[k]);   /* str keys: no error can be set */
    if (v)
        for (Py_ssize_t at = 0, next = 0; PyDict_Next(d, &next, &key, &v); at = next)
            if (same_key(key, k)) {
                HINT[k] = at;
                break;
            }
    return v;
}

static int finite_float(PyObject *v, double *out)
{
    if (!v || !PyFloat_CheckExact(v))
        return 0;
    *out = PyFloat_AS_DOUBLE(v);
    return isfinite(*out);
}

static int opt_finite_float(PyObject *v, double *out, char *has)
{
    if (!v)
        return 0;
    *has = v != Py_None;
    return !*has || finite_float(v, out);
}

static int endpoint(PyObject *o, PyObject **ip, PyObject **port)
{
    PyObject *d = o ? fields_of(o) : NULL;
    if (!d)
        return 0;
    *ip = item(d, K_IP);
    *port = item(d, K_PORT);
    return *ip && PyUnicode_CheckExact(*ip) && *port && PyLong_CheckExact(*port);
}

static int is_zero(PyObject *v)
{
    return PyObject_Not(v);   /* an exact int: never fails */
}

static int parse_conn(PyObject *o, CC *c)
{
    PyObject *d = fields_of(o), *v, *a, *b;
    if (!d)
        return 0;
    c->id = item(d, K_ID);
    if (!c->id || !PyUnicode_CheckExact(c->id) || !endpoint(item(d, K_CLIENT), &c->cip, &c->cport)
        || !endpoint(item(d, K_SERVER), &c->sip, &c->sport)
        || !opt_finite_float(item(d, K_SYN_TIME), &c->syn, &c->has_syn)
        || !finite_float(item(d, K_START), &c->start) || !finite_float(c->end_obj = item(d, K_END), &c->end))
        return 0;
    v = item(d, K_HANDSHAKE);
    if (!v || !PyUnicode_CheckExact(v))
        return 0;
    c->hs_ok = !PyUnicode_CompareWithASCIIString(v, "syn_synack")
               || !PyUnicode_CompareWithASCIIString(v, "complete");
    a = item(d, K_PC2S);
    b = item(d, K_PS2C);
    if (!a || !b || !PyLong_CheckExact(a) || !PyLong_CheckExact(b))
        return 0;
    c->one_sided = is_zero(a) != is_zero(b);
    c->ttls[0] = item(d, K_CTTLS);
    c->ttls[1] = item(d, K_STTLS);
    c->changes[0] = item(d, K_CCHG);
    c->changes[1] = item(d, K_SCHG);
    for (int s = 0; s < 2; s++)
        if (!c->ttls[s] || !PyDict_CheckExact(c->ttls[s]) || !c->changes[s]
            || !PyLong_CheckExact(c->changes[s]))
            return 0;
    return 1;
}

static int parse_rst(PyObject *o, CR *r)
{
    PyObject *d = fields_of(o), *v;
    double before = 0, trigger = 0;
    char has_before = 0, has_trigger = 0;
    if (!d)
        return 0;
    r->id = item(d, K_ID);
    r->cid = item(d, K_CONN_ID);
    v = item(d, K_ANSWERS_SYN);
    if (!r->id || !PyUnicode_CheckExact(r->id) || !r->cid || !PyUnicode_CheckExact(r->cid)
        || !v || !PyBool_Check(v) || !finite_float(item(d, K_TIME), &r->time)
        || !opt_finite_float(item(d, K_IDLE_BEFORE), &before, &has_before)
        || !opt_finite_float(item(d, K_IDLE_TRIGGER), &trigger, &has_trigger))
        return 0;
    r->answers_syn = v == Py_True;
    /* measured_idle: the longer silence, either one when the other is None */
    r->has_idle = has_before || has_trigger;
    r->idle = !has_before ? trigger : !has_trigger ? before : (trigger > before ? trigger : before);
    r->conn = item(d, K_CONN);
    return r->conn != NULL;
}

/* models.initial_ttl of an exact int, or -1 for another key */
static int initial_ttl_of(PyObject *k)
{
    int overflow;
    if (!PyLong_CheckExact(k))
        return -1;
    long long t = PyLong_AsLongLongAndOverflow(k, &overflow);
    if (overflow)
        return overflow > 0 ? 255 : 32;
    return t <= 32 ? 32 : t <= 64 ? 64 : t <= 128 ? 128 : 255;
}

/* cross._ttl_shift: 1, 0, or -1 when a TTL key is not an int (the Python code then runs) */
static int ttl_shift(const CC *c)
{
    for (int s = 0; s < 2; s++) {
        int overflow;
        if (PyLong_AsLongLongAndOverflow(c->changes[s], &overflow) != 1 || overflow
            || PyDict_GET_SIZE(c->ttls[s]) != 2)
            continue;
        Py_ssize_t pos = 0;
        PyObject *k, *v;
        int first = 0;
        while (PyDict_Next(c->ttls[s], &pos, &k, &v)) {
            int i = initial_ttl_of(k);
            if (i < 0)
                return -1;
            if (!first)
                first = i;
            else if (i == first)
                return 1;
        }
    }
    return 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* stable order by value: the index breaks ties */
static int cmp_keyed(const void *a, const void *b)
{
    const Keyed *x = a, *y = b;
    if (x->v != y->v)
        return x->v < y->v ? -1 : 1;
    return (x->i > y->i) - (x->i < y->i);
}

/* statistics.median of n sorted values */
static double median_sorted(const double *v, Py_ssize_t n)
{
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* cross._cycle of n values (sorted here): 1 and *period when they share one period */
static int cycle(double *v, Py_ssize_t n, const Consts *k, double *period)
{
    if (n < k->cycle_min_resets)
        return 0;
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    double med = median_sorted(v, n), rel = k->cycle_tolerance * med;
    double tolerance = rel > 2.0 ? rel : 2.0;
    if (med < k->cycle_min_period)
        return 0;
    for (Py_ssize_t i = 0; i < n; i++)
        if (!(fabs(v[i] - med) <= tolerance))
            return 0;
    *period = med;
    return 1;
}

static Py_ssize_t bisect_left(const double *a, Py_ssize_t n, double x)
{
    Py_ssize_t lo = 0, hi = n;
    while (lo < hi) {
        Py_ssize_t mid = (lo + hi) / 2;
        if (a[mid] < x)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static Py_ssize_t bisect_right(const double *a, Py_ssize_t n, double x)
{
    Py_ssize_t lo = 0, hi = n;
    while (lo < hi) {
        Py_ssize_t mid = (lo + hi) / 2;
        if (x < a[mid])
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

/* key -> its small int index in dict d; absent: a new index (*fresh set) when add, else -1;
 * -2 on an error */
static Py_ssize_t index_of(PyObject *d, PyObject *key, int add, int *fresh)
{
    PyObject *v = PyDict_GetItemWithError(d, key);
    *fresh = 0;
    if (v)
        return PyLong_AsSsize_t(v);
    if (PyErr_Occurred() || !add)
        return PyErr_Occurred() ? -2 : -1;
    PyObject *n = PyLong_FromSsize_t(PyDict_GET_SIZE(d));
    if (!n || PyDict_SetItem(d, key, n) < 0) {
        Py_XDECREF(n);
        return -2;
    }
    Py_DECREF(n);
    *fresh = 1;
    return PyDict_GET_SIZE(d) - 1;
}

/* The group of the key made of n parts in d, a new one when absent (counted in *ngroups);
 * -1 on an error. */
static Py_ssize_t group_of_key(PyObject *d, PyObject **parts, int n, Py_ssize_t *ngroups)
{
    PyObject *key = pm_tuple_of(n, parts);
    int fresh;
    Py_ssize_t g = key ? index_of(d, key, 1, &fresh) : -2;
    Py_XDECREF(key);
    if (g < 0)
        return -1;
    *ngroups += fresh;
    return g;
}

typedef struct { Py_ssize_t rejects, accepts; int above; } PortStat;   /* above: -1 None */

typedef struct {               /* everything the pass allocates, freed in one place */
    CC *conns;
    CR *rsts;
    Py_ssize_t *firsts, *group_of, *port_of, *members, *burst;
    double *scratch, *stamps, *syns, *period, *tol_seconds, *tol_limit;
    char *has_period, *exhausted;
    Keyed *keyed;
    PortStat *ports;
    Py_ssize_t *reuse;
    PyObject *conn_at, *first_at, *groups, *port_at, *client_at, *last_use, *shifted, *sets;
    PyObject *template, *out;
} Pass;

static void pass_free(Pass *p)
{
    free(p->conns); free(p->rsts); free(p->firsts); free(p->group_of); free(p->port_of);
    free(p->members); free(p->burst); free(p->scratch); free(p->stamps); free(p->syns);
    free(p->period); free(p->tol_seconds); free(p->tol_limit); free(p->has_period);
    free(p->exhausted); free(p->keyed); free(p->ports); free(p->reuse);
    Py_XDECREF(p->conn_at); Py_XDECREF(p->first_at); Py_XDECREF(p->groups);
    Py_XDECREF(p->port_at); Py_XDECREF(p->client_at); Py_XDECREF(p->last_use);
    Py_XDECREF(p->shifted); Py_XDECREF(p->sets); Py_XDECREF(p->template); Py_XDECREF(p->out);
}

/* a number as a double: a float, or an int a double holds exactly */
static int number(PyObject *v, double *out)
{
    if (PyFloat_CheckExact(v)) {
        *out = PyFloat_AS_DOUBLE(v);
        return 1;
    }
    if (!PyLong_CheckExact(v))
        return 0;
    int overflow;
    long long n = PyLong_AsLongLongAndOverflow(v, &overflow);
    if (overflow || n > (1LL << 53) || n < -(1LL << 53))
        return 0;
    *out = (double)n;
    return 1;
}

/* Members of each group, in input order: counting sort of group_of[0..n) into members;
 * start[g] .. start[g + 1] indexes members. */
static Py_ssize_t *grouped(const Py_ssize_t *group_of, Py_ssize_t n, Py_ssize_t ngroups,
                           Py_ssize_t *members)
{
    Py_ssize_t *start = calloc((size_t)ngroups + 2, sizeof *start);
    if (!start)
        return NULL;
    for (Py_ssize_t i = 0; i < n; i++)
        if (group_of[i] >= 0)
            start[group_of[i] + 2]++;
    for (Py_ssize_t g = 0; g < ngroups; g++)
        start[g + 2] += start[g + 1];
    for (Py_ssize_t i = 0; i < n; i++)
        if (group_of[i] >= 0)
            members[start[group_of[i] + 1]++] = i;
    return start;   /* start[g] .. start[g + 1]: group g */
}

/* Reconnect cycles: per (client, server, port), over the connections' first RSTs. */
static int cycles(Pass *p, Py_ssize_t nfirst, const Consts *k)
{
    Py_ssize_t ngroups = 0;
    for (Py_ssize_t f = 0; f < nfirst; f++) {
        CC *c = &p->rsts[p->firsts[f]].c;
        PyObject *parts[3] = {c->cip, c->sip, c->sport};
        if ((p->group_of[f] = group_of_key(p->groups, parts, 3, &ngroups)) < 0)
            return -1;
    }
    Py_ssize_t *start = grouped(p->group_of, nfirst, ngroups, p->members);
    if (!start)
        return -1;
    for (Py_ssize_t g = 0; g < ngroups; g++) {
        Py_ssize_t lo = start[g], n = start[g + 1] - lo, idles = 0;
        double found = 0;
        int have = 0;
        if (n < k->cycle_min_resets)
            continue;
        for (Py_ssize_t i = 0; i < n; i++) {
            CR *r = &p->rsts[p->firsts[p->members[lo + i]]];
            if (r->has_idle)
                p->scratch[idles++] = r->idle;
        }
        if (idles == n)
            have = cycle(p->scratch, n, k, &found);
        if (!have || found == 0) {
            for (Py_ssize_t i = 0; i < n; i++) {
                CR *r = &p->rsts[p->firsts[p->members[lo + i]]];
                p->scratch[i] = r->time - r->c.start;
            }
            have = cycle(p->scratch, n, k, &found);
        }
        if (have && found != 0)
            for (Py_ssize_t i = 0; i < n; i++) {
                Py_ssize_t j = p->firsts[p->members[lo + i]];
                p->period[j] = found;
                p->has_period[j] = 1;
            }
    }
    free(start);
    return 0;
}

/* cross._rates of one member: the SYNs within the window up to and including its own */
static Py_ssize_t rate(const double *syns, Py_ssize_t n, double t, double window)
{
    return bisect_right(syns, n, t) - bisect_left(syns, n, t - window);
}

/* SYN rejection per server port, and whether it only happens above a rate. */
static int port_stats(Pass *p, Py_ssize_t n, const Consts *k)
{
    Py_ssize_t nports = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        CC *c = &p->conns[i];
        p->port_of[i] = -1;
        if (!c->has_syn)
            continue;
        PyObject *parts[2] = {c->sip, c->sport};
        if ((p->port_of[i] = group_of_key(p->port_at, parts, 2, &nports)) < 0)
            return -1;
    }
    Py_ssize_t *start = grouped(p->port_of, n, nports, p->members);
    if (!start || !(p->ports = calloc((size_t)nports + 1, sizeof *p->ports))) {
        free(start);
        return -1;
    }
    for (Py_ssize_t g = 0; g < nports; g++) {
        Py_ssize_t lo = start[g], m = start[g + 1] - lo, nrej = 0, nacc = 0, least = 0;
        for (Py_ssize_t i = 0; i < m; i++) {
            p->keyed[i].i = p->members[lo + i];
            p->keyed[i].v = p->conns[p->keyed[i].i].syn;
        }
        qsort(p->keyed, (size_t)m, sizeof *p->keyed, cmp_keyed);   /* members.sort(key=syn) */
        for (Py_ssize_t i = 0; i < m; i++)
            p->syns[i] = p->keyed[i].v;
        for (Py_ssize_t i = 0; i < m; i++) {
            CC *c = &p->conns[p->keyed[i].i];
            PyObject *f = PyDict_GetItemWithError(p->first_at, c->id);
            if (f && p->rsts[PyLong_AsSsize_t(f)].answers_syn) {
                Py_ssize_t r = rate(p->syns, m, c->syn, k->rate_window);
                least = nrej++ ? (r < least ? r : least) : r;
            }
            if (c->hs_ok)
                p->scratch[nacc++] = (double)rate(p->syns, m, c->syn, k->rate_window);
        }
        PortStat *s = &p->ports[g];
        s->rejects = nrej;
        s->accepts = nacc;
        s->above = -1;
        if (nrej && nacc) {
            qsort(p->scratch, (size_t)nacc, sizeof *p->scratch, cmp_double);
            s->above = (double)least > median_sorted(p->scratch, nacc);
        }
    }
    free(start);
    return 0;
}

/* Source-port use per client address, counted in order of start. */
static int exhaustion(Pass *p, Py_ssize_t n, const Consts *k)
{
    Py_ssize_t nclients = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        p->keyed[i].v = p->conns[i].start;
        p->keyed[i].i = i;
    }
    qsort(p->keyed, (size_t)n, sizeof *p->keyed, cmp_keyed);
    if (!(p->reuse = calloc((size_t)n + 1, sizeof *p->reuse)))
        return -1;
    for (Py_ssize_t o = 0; o < n; o++) {
        CC *c = &p->conns[p->keyed[o].i];
        int fresh;
        Py_ssize_t ci = index_of(p->client_at, c->cip, 1, &fresh);
        if (ci < 0)
            return -1;
        if (fresh) {
            PyObject *set = PySet_New(NULL);
            if (!set || PyList_Append(p->sets, set) < 0) {
                Py_XDECREF(set);
                return -1;
            }
            Py_DECREF(set);
            nclients++;
        }
        if (PySet_Add(PyList_GET_ITEM(p->sets, ci), c->cport) < 0)
            return -1;
        PyObject *parts[4] = {c->cip, c->cport, c->sip, c->sport};
        PyObject *key = pm_tuple_of(4, parts);
        if (!key)
            return -1;
        PyObject *last = PyDict_GetItemWithError(p->last_use, key);
        if (last && c->start - PyFloat_AS_DOUBLE(last) <= k->reuse_window)
            p->reuse[ci]++;
        int bad = PyDict_SetItem(p->last_use, key, c->end_obj);
        Py_DECREF(key);
        if (bad < 0)
            return -1;
    }
    if (!(p->exhausted = calloc((size_t)nclients + 1, 1)))
        return -1;
    for (Py_ssize_t ci = 0; ci < nclients; ci++)
        p->exhausted[ci] = (double)PySet_GET_SIZE(PyList_GET_ITEM(p->sets, ci))
                           >= k->exhaustion_ports || p->reuse[ci] >= k->reuses_for_exhaustion;
    return 0;
}

/* One RST's CrossEvidence (fastmodel.construct with every field: a model around its dict). */
static PyObject *evidence(Pass *p, PyObject *cls, PyObject **values)
{
    PyObject *d = pm_filled(p->template, OUT_NAMES, values, NOUT), *fs = NULL, *o = NULL;
    if (d && (fs = PySet_New(OUT_NAMES)))
        o = adopt_dict(cls, d, fs);
    Py_XDECREF(d);
    Py_XDECREF(fs);
    return o;
}

static PyObject *flag(int v)
{
    return Py_NewRef(v ? Py_True : Py_False);
}

/* The output loop: 1, 0 when the Python code must run (a TTL key that is no int), -1. */
static int per_rst(Pass *p, Py_ssize_t m, Py_ssize_t ntol, PyObject *tolerances, PyObject *cls,
                   Py_ssize_t nstamps, const Consts *k)
{
    for (Py_ssize_t j = 0; j < m; j++) {
        CR *r = &p->rsts[j];
        PyObject *at = PyDict_GetItemWithError(p->conn_at, r->cid);
        CC *c = at ? &p->conns[PyLong_AsSsize_t(at)] : &r->c;
        PortStat none = {0, 0, -1}, *ps = &none;
        PyObject *parts[2] = {c->sip, c->sport}, *key = pm_tuple_of(2, parts), *g;
        if (!key)
            return -1;
        g = PyDict_GetItemWithError(p->port_at, key);
        Py_DECREF(key);
        if (g)
            ps = &p->ports[PyLong_AsSsize_t(g)];
        PyObject *matched = PyList_New(0), *shift = PyDict_GetItemWithError(p->shifted, c->id);
        if (!matched)
            return -1;
        if (r->has_idle && !(r->idle <= 0))
            for (Py_ssize_t t = 0; t < ntol; t++)
                if (fabs(r->idle - p->tol_seconds[t]) <= p->tol_limit[t]
                    && PyList_Append(matched, PyTuple_GET_ITEM(PyTuple_GET_ITEM(tolerances, t), 0)) < 0) {
                    Py_DECREF(matched);
                    return -1;
                }
        if (!shift) {
            int s = ttl_shift(c);
            if (s < 0) {
                Py_DECREF(matched);
                return 0;
            }
            shift = s ? Py_True : Py_False;
            if (PyDict_SetItem(p->shifted, c->id, shift) < 0) {
                Py_DECREF(matched);
                return -1;
            }
        }
        Py_ssize_t f = r->first;
        if (p->burst[f] < 0) {
            double t = p->rsts[f].time, half = k->burst_window / 2;
            p->burst[f] = bisect_right(p->stamps, nstamps, t + half)
                          - bisect_left(p->stamps, nstamps, t - half);
        }
        PyObject *ci = PyDict_GetItemWithError(p->client_at, c->cip);
        PyObject *values[NOUT] = {
            flag(p->has_period[f]),
            p->has_period[f] ? PyFloat_FromDouble(p->period[f]) : Py_NewRef(Py_None),
            PyLong_FromSsize_t(p->burst[f]),
            PyLong_FromSsize_t(ps->rejects),
            PyLong_FromSsize_t(ps->accepts),
            ps->above < 0 ? Py_NewRef(Py_None) : flag(ps->above),
            flag(ci && p->exhausted[PyLong_AsSsize_t(ci)]),
            Py_NewRef(shift),
            flag(c->one_sided),
            !r->has_idle || r->idle == 0 ? Py_NewRef(Py_None) : flag(PyList_GET_SIZE(matched) > 0),
            matched,
        };
        for (int i = 0; i < NOUT; i++)
            if (!values[i]) {
                for (int v = 0; v < NOUT; v++)
                    Py_XDECREF(values[v]);
                return -1;
            }
        PyObject *o = evidence(p, cls, values);
        if (!o || PyDict_SetItem(p->out, r->id, o) < 0) {
            Py_XDECREF(o);
            return -1;
        }
        Py_DECREF(o);
    }
    return 1;
}

static int same_names(PyObject *names)
{
    if (!PyTuple_Check(names) || PyTuple_GET_SIZE(names) != NOUT)
        return 0;
    for (int i = 0; i < NOUT; i++) {
        PyObject *n = PyTuple_GET_ITEM(names, i);
        if (!PyUnicode_CheckExact(n) || PyUnicode_Compare(n, PyTuple_GET_ITEM(OUT_NAMES, i)))
            return 0;
    }
    return 1;
}

#define ALLOC(field, count) (p.field = calloc((size_t)(count) + 1, sizeof *p.field))

/* cross_analyse(connections, rsts, tolerances, cls, names, constants) -> {rst id: cls}, or
 * None when an input is not what the readers give (facts/cross.py then runs). */
PyObject *cross_analyse(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *conns, *rsts, *tolerances, *cls, *names;
    Consts k;
    Pass p = {0};
    int status = -1;   /* 1 done, 0 fall back to Python, -1 error */
    if (!PyArg_ParseTuple(args, "O!O!O!O!O(nndddddd)", &PyList_Type, &conns, &PyList_Type,
                          &rsts, &PyTuple_Type, &tolerances, &PyType_Type, &cls, &names,
                          &k.cycle_min_resets, &k.reuses_for_exhaustion, &k.cycle_tolerance,
                          &k.cycle_min_period, &k.burst_window, &k.rate_window,
                          &k.exhaustion_ports, &k.reuse_window))
        return NULL;
    if (keys_ready() < 0)
        return NULL;
    Py_ssize_t n = PyList_GET_SIZE(conns), m = PyList_GET_SIZE(rsts), most = n > m ? n : m;
    Py_ssize_t ntol = PyTuple_GET_SIZE(tolerances), nfirst = 0, nstamps;
    if (!same_names(names))
        goto fallback;
    if (!ALLOC(conns, n) || !ALLOC(rsts, m) || !ALLOC(firsts, m) || !ALLOC(group_of, m)
        || !ALLOC(port_of, n) || !ALLOC(members, most) || !ALLOC(burst, m)
        || !ALLOC(scratch, most) || !ALLOC(stamps, m) || !ALLOC(syns, n) || !ALLOC(period, m)
        || !ALLOC(tol_seconds, ntol) || !ALLOC(tol_limit, ntol) || !ALLOC(has_period, m)
        || !ALLOC(keyed, most)) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t t = 0; t < ntol; t++) {
        PyObject *row = PyTuple_GET_ITEM(tolerances, t);
        if (!PyTuple_Check(row) || PyTuple_GET_SIZE(row) != 3
            || !number(PyTuple_GET_ITEM(row, 1), &p.tol_seconds[t])
            || !number(PyTuple_GET_ITEM(row, 2), &p.tol_limit[t]))
            goto fallback;
    }
    for (Py_ssize_t i = 0; i < n; i++)
        if (!parse_conn(PyList_GET_ITEM(conns, i), &p.conns[i]))
            goto fallback;
    if (!(p.conn_at = PyDict_New()) || !(p.first_at = PyDict_New()) || !(p.groups = PyDict_New())
        || !(p.port_at = PyDict_New()) || !(p.client_at = PyDict_New())
        || !(p.last_use = PyDict_New()) || !(p.shifted = PyDict_New())
        || !(p.sets = PyList_New(0)) || !(p.out = PyDict_New()))
        goto done;
    for (Py_ssize_t i = 0; i < n; i++) {   /* conns[c.id] = c: the last one wins */
        PyObject *at = PyLong_FromSsize_t(i);
        int bad = !at || PyDict_SetItem(p.conn_at, p.conns[i].id, at) < 0;
        Py_XDECREF(at);
        if (bad)
            goto done;
    }
    for (Py_ssize_t j = 0; j < m; j++) {   /* its connection field: mostly conns[c.id] itself */
        CR *r = &p.rsts[j];
        if (!parse_rst(PyList_GET_ITEM(rsts, j), r))
            goto fallback;
        PyObject *at = PyDict_GetItemWithError(p.conn_at, r->cid);
        Py_ssize_t i = at ? PyLong_AsSsize_t(at) : -1;
        if (i >= 0 && PyList_GET_ITEM(conns, i) == r->conn)
            r->c = p.conns[i];
        else if (PyErr_Occurred())
            goto done;
        else if (!parse_conn(r->conn, &r->c))
            goto fallback;
    }
    for (Py_ssize_t j = 0; j < m; j++) {   /* first_rst.setdefault(r.connection_id, r) */
        int fresh;
        Py_ssize_t f = index_of(p.first_at, p.rsts[j].cid, 0, &fresh);
        if (f == -2)
            goto done;
        if (f < 0) {
            PyObject *at = PyLong_FromSsize_t(j);
            int bad = !at || PyDict_SetItem(p.first_at, p.rsts[j].cid, at) < 0;
            Py_XDECREF(at);
            if (bad)
                goto done;
            p.firsts[nfirst++] = f = j;
        }
        p.rsts[j].first = f;
        p.burst[j] = -1;
    }
    if (cycles(&p, nfirst, &k) < 0 || port_stats(&p, n, &k) < 0 || exhaustion(&p, n, &k) < 0)
        goto done;
    for (Py_ssize_t f = 0; f < nfirst; f++)
        p.stamps[f] = p.rsts[p.firsts[f]].time;
    nstamps = nfirst;
    qsort(p.stamps, (size_t)nstamps, sizeof *p.stamps, cmp_double);
    if (!(p.template = PyDict_New()))
        goto done;
    for (int i = 0; i < NOUT; i++)
        if (PyDict_SetItem(p.template, PyTuple_GET_ITEM(OUT_NAMES, i), Py_None) < 0)
            goto done;
    status = per_rst(&p, m, ntol, tolerances, cls, nstamps, &k);
    goto done;
fallback:
    status = 0;
done:;
    PyObject *result = NULL;
    if (status < 0 && !PyErr_Occurred())
        PyErr_NoMemory();   /* a calloc in the passes failed */
    if (status > 0)
        result = Py_NewRef(p.out);
    else if (status == 0 && !PyErr_Occurred())
        result = Py_NewRef(Py_None);
    pass_free(&p);
    return result;
}

/* dual._undecremented: 1 / 0 when the most frequent TTL is / is not an initial one, -1 for no
 * packets, -2 when a key or count is not an int (the Python code then runs). The first of
 * equal counts wins, as max() does. */
static int undecremented(PyObject *ttls)
{
    Py_ssize_t pos = 0;
    PyObject *k, *v, *best = NULL, *most = NULL;
    while (PyDict_Next(ttls, &pos, &k, &v)) {
        if (!PyLong_CheckExact(k) || !PyLong_CheckExact(v))
            return -2;
        if (!most || PyObject_RichCompareBool(v, most, Py_GT) == 1) {   /* exact ints */
            best = k;
            most = v;
        }
    }
    if (!best)
        return -1;
    int overflow;
    long long t = PyLong_AsLongLongAndOverflow(best, &overflow);
    return !overflow && (t == 32 || t == 64 || t == 128 || t == 255);
}

/* capture_votes(connections) -> (client votes, server votes) as dual.capture_role counts
 * them, or None when a connection is not of the readers' types. */
PyObject *capture_votes(PyObject *self, PyObject *conns)
{
    (void)self;
    Py_ssize_t votes[2] = {0, 0};
    if (keys_ready() < 0)
        return NULL;
    if (!PyList_Check(conns))
        Py_RETURN_NONE;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(conns); i++) {
        PyObject *d = fields_of(PyList_GET_ITEM(conns, i));
        PyObject *c = d ? item(d, K_CTTLS) : NULL, *s = d ? item(d, K_STTLS) : NULL;
        if (!c || !s || !PyDict_CheckExact(c) || !PyDict_CheckExact(s))
            Py_RETURN_NONE;
        int client_local = undecremented(c), server_local = undecremented(s);
        if (client_local == -2 || server_local == -2)
            Py_RETURN_NONE;
        if (client_local == 1 && server_local == 0)
            votes[0]++;
        else if (server_local == 1 && client_local == 0)
            votes[1]++;
    }
    return Py_BuildValue("(nn)", votes[0], votes[1]);
}
