/* The tracker's storage: a 40-byte-key open-addressing map (4-tuples, fragment ids, addresses)
 * and the state T, whose connections and RST records live in blocks mapped apart, so that
 * freeing them while Python objects or facts are built lowers the peak. */
#include "_ctrack.h"

int map_init(Map *m, size_t cap)
{
    m->keys = PyMem_RawMalloc(cap * sizeof(Key));
    m->vals = PyMem_RawMalloc(cap * sizeof(int32_t));
    if (!m->keys || !m->vals)
        return -1;
    memset(m->vals, 0xff, cap * sizeof(int32_t));
    m->cap = cap;
    m->n = 0;
    return 0;
}

void map_free(Map *m)
{
    PyMem_RawFree(m->keys);
    PyMem_RawFree(m->vals);
    m->keys = NULL;
    m->vals = NULL;
}

int map_put(Map *m, const Key *k, int32_t v)
{
    size_t i = map_find(m, k);
    if (m->vals[i] >= 0) {
        m->vals[i] = v;
        return 0;
    }
    m->keys[i] = *k;
    m->vals[i] = v;
    if (++m->n * 2 > m->cap) {
        Map g;
        if (map_init(&g, m->cap * 2) < 0) {
            map_free(&g);
            return -1;
        }
        for (size_t j = 0; j < m->cap; j++)
            if (m->vals[j] >= 0) {
                size_t s = map_find(&g, &m->keys[j]);
                g.keys[s] = m->keys[j];
                g.vals[s] = m->vals[j];
            }
        g.n = m->n;
        map_free(m);
        *m = g;
    }
    return 1;
}

int t_init(T *t)
{
    memset(t, 0, sizeof(T));
    t->flog = PyMem_RawMalloc(MAX_FRAG * sizeof(Key));
    if (!t->flog || map_init(&t->table, 1 << 12) < 0 || map_init(&t->frags, 1 << 6) < 0)
        return -1;
    return 0;
}

void free_conn_block(T *t, int64_t k)
{
    Conn *blk = t->cb[k];
    if (!blk)
        return;
    int64_t n = t->nconn - k * BLOCK < BLOCK ? t->nconn - k * BLOCK : BLOCK;
    for (int64_t i = 0; i < n; i++) {
        PyMem_RawFree(blk[i].watch);
        PyMem_RawFree(blk[i].half[0].other);
        PyMem_RawFree(blk[i].half[1].other);
    }
    munmap(blk, BLOCK * sizeof(Conn));
    t->cb[k] = NULL;
}

void free_rec_block(T *t, int64_t k)
{
    Rec *blk = t->rb[k];
    if (!blk)
        return;
    int64_t n = t->nrec - k * BLOCK < BLOCK ? t->nrec - k * BLOCK : BLOCK;
    for (int64_t i = 0; i < n; i++) {
        Py_XDECREF(blk[i].payload);
        PyMem_RawFree(blk[i].raw);
    }
    munmap(blk, BLOCK * sizeof(Rec));
    t->rb[k] = NULL;
}

void t_free(T *t)
{
    for (int64_t k = 0; k < t->ncb; k++)
        free_conn_block(t, k);
    for (int64_t k = 0; k < t->nrb; k++)
        free_rec_block(t, k);
    PyMem_RawFree(t->cb);
    PyMem_RawFree(t->rb);
    PyMem_RawFree(t->flog);
    map_free(&t->table);
    map_free(&t->frags);
    memset(t, 0, sizeof(T));
}

/* Room for one more element in a blocked array of n elements (nb blocks so far; zeroed);
 * NULL when out of memory. */
void *grow_blocks(void ***blocks, int64_t *nb, int64_t n, size_t size)
{
    if (n / BLOCK == *nb) {
        void **b = PyMem_RawRealloc(*blocks, (size_t)(*nb + 1) * sizeof(void *));
        if (!b)
            return NULL;
        *blocks = b;
        void *m = mmap(NULL, BLOCK * size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                       -1, 0);
        if (m == MAP_FAILED)
            return NULL;
        b[(*nb)++] = m;
    }
    return (char *)(*blocks)[n / BLOCK] + (size_t)(n % BLOCK) * size;
}
