/* The classic-pcap record walk: exactly facts.capture.pcap / fastpcap.iter_pcap's chunking (so
 * the same warnings), frames decoded inline when they can be, else by facts.decode.decode; the
 * GIL is released while frames decode inline and while the file is read.
 *
 * track_pcap(fd, linktype, big_endian, unit, limit, chunk, decode, progress, size)
 *   -> (state, records_read, bytes_read, warning)
 *   warning: None, ("cut", have, need, frames, header) or ("corrupt", off, incl, rest, frames)
 */
#include "_ctrack.h"

/* read() until n bytes or the end of the file; -errno on failure. Runs without the GIL. */
Py_ssize_t read_full(int fd, uint8_t *buf, Py_ssize_t n)
{
    Py_ssize_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, buf + got, (size_t)(n - got));
        if (r < 0) {
            if (errno == EINTR)
                continue;   /* signals are checked with the progress calls */
            return -(Py_ssize_t)errno;
        }
        if (r == 0)
            break;
        got += r;
    }
    return got;
}

/* pcap.py's "buf = buf[pos:] + f.read(need)", same sizes, so the same warnings.
 * 0, or -errno. Runs without the GIL. */
int refill(int fd, uint8_t **buf, Py_ssize_t *cap, Py_ssize_t *blen, Py_ssize_t *pos,
                  long long *base, long long *fpos, Py_ssize_t need)
{
    Py_ssize_t tail = *blen - *pos;
    if (tail + need > *cap) {
        uint8_t *nb = PyMem_RawMalloc(tail + need);
        if (!nb)
            return -ENOMEM;
        memcpy(nb, *buf + *pos, tail);
        PyMem_RawFree(*buf);
        *buf = nb;
        *cap = tail + need;
    } else
        memmove(*buf, *buf + *pos, tail);
    Py_ssize_t got = read_full(fd, *buf + tail, need);
    if (got < 0)
        return (int)got;
    *fpos += got;
    *base += *pos;
    *pos = 0;
    *blen = tail + got;
    return 0;
}

static PyObject *progress_call(PyObject *progress, long long done, long long size)
{
    return PyObject_CallFunction(progress, "LL", done < size - 1 ? done : size - 1, size);
}

/* The GIL is released while frames decode inline and while the file is read; taken back for
 * the Python decoder, progress calls and anything that makes Python objects. */
#define GIL_OFF() do { if (!save) save = PyEval_SaveThread(); } while (0)
#define GIL_ON() do { if (save) { PyEval_RestoreThread(save); save = NULL; } } while (0)

/* A walk that stopped: the read's errno as OSError, else no memory (unless an error is set). */
void raise_read_error(int err)
{
    if (err) {
        errno = err;
        PyErr_SetFromErrno(PyExc_OSError);
    } else if (!PyErr_Occurred())
        PyErr_NoMemory();
}

PyObject *track_pcap(PyObject *self, PyObject *args)
{
    (void)self;
    int fd, lt, big, err = 0;
    double unit;
    unsigned long long limit;
    Py_ssize_t chunk;
    long long size;
    PyObject *decode, *progress;
    if (!PyArg_ParseTuple(args, "iiidKnOOL", &fd, &lt, &big, &unit, &limit, &chunk, &decode,
                          &progress, &size))
        return NULL;
    if (!SEGC.cls)
        return PyErr_Format(PyExc_RuntimeError, "_ctrack.setup() was not called");
    Py_ssize_t l3, et;
    if (!inline_layout(lt, &l3, &et))
        return PyErr_Format(PyExc_ValueError, "link type %d has no inline layout", lt);
    if (chunk < 16)
        return PyErr_Format(PyExc_ValueError, "chunk too small");
    T t;
    PyThreadState *save = NULL;
    uint8_t *buf = NULL;
    Py_ssize_t cap = chunk, blen = 0, pos = 0;
    long long base = 24, fpos = 24;
    int64_t frame = 0, npk = 0;
    PyObject *warn = NULL, *tracker = NULL, *lt_obj = PyLong_FromLong(lt);
    if (!lt_obj)
        return NULL;
    if (t_init(&t) < 0 || !(buf = PyMem_RawMalloc(cap)))
        goto done;   /* no memory */
    GIL_OFF();
    if (lseek(fd, 24, SEEK_SET) < 0) {
        err = errno;
        goto done;
    }
    if ((blen = read_full(fd, buf, chunk)) < 0) {
        err = (int)-blen;
        goto done;
    }
    fpos += blen;
    for (;;) {
        if (pos + 16 > blen) {
            if ((err = -refill(fd, &buf, &cap, &blen, &pos, &base, &fpos, chunk)))
                goto done;
            if (blen < 16) {
                GIL_ON();
                if (blen)
                    warn = Py_BuildValue("(snnLO)", "cut", blen, (Py_ssize_t)16,
                                         (long long)frame, Py_True);
                break;
            }
        }
        const uint8_t *h = buf + pos;
        uint32_t sec = big ? be32(h) : le32(h), frac = big ? be32(h + 4) : le32(h + 4);
        uint32_t incl = big ? be32(h + 8) : le32(h + 8), orig = big ? be32(h + 12) : le32(h + 12);
        if (incl > limit) {
            struct stat st;
            long long rest = fstat(fd, &st) == 0 ? (long long)st.st_size - fpos : 0;
            GIL_ON();
            warn = Py_BuildValue("(sLkLL)", "corrupt", base + pos, (unsigned long)incl,
                                 (long long)(blen - pos) + rest, (long long)frame);
            break;
        }
        Py_ssize_t p = pos + 16, end = p + incl;
        if (end > blen) {
            Py_ssize_t need = 16 + (Py_ssize_t)incl;
            GIL_OFF();
            if ((err = -refill(fd, &buf, &cap, &blen, &pos, &base, &fpos,
                               need > chunk ? need : chunk)))
                goto done;
            p = 16;
            end = need;
            if (end > blen) {
                GIL_ON();
                warn = Py_BuildValue("(snnLO)", "cut", blen, need, (long long)frame, Py_False);
                break;
            }
        }
        frame++;
        pos = end;
        double ts = (double)sec + (double)frac * unit;
        Seg s;
        const uint8_t *pl;
        Py_ssize_t pllen;
        if (inline_decode(buf + p, incl, lt, l3, et, &s, &pl, &pllen)) {
            GIL_OFF();
            if (feed_inline(&t, &s, frame, ts, 0, pl, pllen) < 0)
                goto done;   /* no memory */
        } else {
            GIL_ON();
            PyObject *data = PyBytes_FromStringAndSize((const char *)buf + p, incl);
            PyObject *o = data ? PyObject_CallFunction(decode, "OOLdk", lt_obj, data,
                                                       (long long)frame, ts,
                                                       (unsigned long)orig) : NULL;
            Py_XDECREF(data);
            int r = feed_decoded(&t, o);
            if (r < 0)
                goto done;
            if (r == 0)
                continue;
        }
        if (++npk % PROGRESS_EVERY == 0) {
            GIL_ON();
            if (PyErr_CheckSignals() < 0)
                goto done;
            if (progress != Py_None) {
                PyObject *r = progress_call(progress, fpos, size);
                if (!r)
                    goto done;
                Py_DECREF(r);
            }
        }
    }
    GIL_ON();
    if (!warn && PyErr_Occurred())
        goto done;
    if (progress != Py_None) {
        PyObject *r = npk % PROGRESS_EVERY ? progress_call(progress, fpos, size) : none();
        if (!r)
            goto done;
        Py_DECREF(r);
        if (!(r = PyObject_CallFunction(progress, "LL", size, size)))
            goto done;
        Py_DECREF(r);
    }
    PyMem_RawFree(buf);
    buf = NULL;
    tracker = new_state(&t);   /* takes t's contents */
    if (!tracker)
        goto done;
    if (!warn)
        warn = none();
    PyObject *res = Py_BuildValue("(NLLN)", tracker, (long long)frame, fpos, warn);
    tracker = warn = NULL;
    t_free(&t);
    Py_DECREF(lt_obj);
    return res;
done:
    GIL_ON();
    raise_read_error(err);
    PyMem_RawFree(buf);
    t_free(&t);
    Py_XDECREF(warn);
    Py_XDECREF(tracker);
    Py_DECREF(lt_obj);
    return NULL;
}
