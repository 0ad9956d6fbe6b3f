/*
 * ledger.records._merkle_native: OpenZeppelin StandardMerkleTree builds and proofs in C.
 *
 * Why native: bench/merkle_rate.py. The best CPython build (comprehensions and map over
 * safe-pysha3) reached 73% of its three-keccak limit at 100k records: the sort, the pair
 * comparisons and concatenations and the input checks took the rest, and they do not get cheaper
 * in Python. Here the leaf hashing, the sort and the internal nodes run in C with the GIL
 * released, over the Keccak team's KeccakP-1600 "opt64" permutation (native/xkcp: the XKCP files
 * CPython 3.6-3.11 and safe-pysha3 ship, unmodified, CC0): 88-92% of the three-keccak limit of
 * that same keccak, 1.5-1.6x the CPython limit (quiet machine, the README's figures table).
 * tests/ledger/records/test_merkle_native.py checks every function here against safe-pysha3,
 * eth-hash and a plain Python model of the format.
 *
 * The tree format is ledger/records/merkle.py's (OpenZeppelin's): leaves sorted ascending and
 * stored reversed at the end of a 2n - 1 node array, node i = keccak256(min || max) of nodes
 * 2i + 1 and 2i + 2. A record's leaf is keccak256(keccak256(salt || digest)). The node array is
 * one bytes object of 32 * (2n - 1) bytes, root first.
 *
 * The builders take only the exact shapes the service passes (lists or tuples of exact bytes of
 * 32 bytes); for anything else they return None and merkle.py checks, normalises or refuses the
 * input in Python, then calls them again. They raise nothing but MemoryError.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The XKCP permutation, compiled into this module (its symbols stay local to the module). */
#if !defined(__x86_64__) && !defined(__aarch64__) && !defined(_M_X64) && !defined(_M_ARM64)
#error "XKCP opt64 needs a little-endian 64-bit CPU (x86-64 or AArch64)"
#endif
typedef uint64_t UINT64;
typedef unsigned char UINT8;
#define KeccakP1600_AddBytes careledger_KeccakP1600_AddBytes
#define KeccakP1600_AddBytesInLane careledger_KeccakP1600_AddBytesInLane
#define KeccakP1600_AddLanes careledger_KeccakP1600_AddLanes
#define KeccakP1600_ExtractAndAddBytes careledger_KeccakP1600_ExtractAndAddBytes
#define KeccakP1600_ExtractAndAddBytesInLane careledger_KeccakP1600_ExtractAndAddBytesInLane
#define KeccakP1600_ExtractAndAddLanes careledger_KeccakP1600_ExtractAndAddLanes
#define KeccakP1600_ExtractBytes careledger_KeccakP1600_ExtractBytes
#define KeccakP1600_ExtractBytesInLane careledger_KeccakP1600_ExtractBytesInLane
#define KeccakP1600_ExtractLanes careledger_KeccakP1600_ExtractLanes
#define KeccakP1600_Initialize careledger_KeccakP1600_Initialize
#define KeccakP1600_OverwriteBytes careledger_KeccakP1600_OverwriteBytes
#define KeccakP1600_OverwriteBytesInLane careledger_KeccakP1600_OverwriteBytesInLane
#define KeccakP1600_OverwriteLanes careledger_KeccakP1600_OverwriteLanes
#define KeccakP1600_OverwriteWithZeroes careledger_KeccakP1600_OverwriteWithZeroes
#define KeccakP1600_Permute_12rounds careledger_KeccakP1600_Permute_12rounds
#define KeccakP1600_Permute_24rounds careledger_KeccakP1600_Permute_24rounds
#define KeccakF1600_FastLoop_Absorb careledger_KeccakF1600_FastLoop_Absorb
#include "xkcp/KeccakP-1600-SnP-opt64.h"
#include "xkcp/KeccakP-1600-opt64.c"

#define NODE 32        /* bytes in a leaf, a node, a salt and a digest */
#define RATE 136       /* keccak256's rate in bytes */

/* keccak256 of len bytes into out (32 bytes): Ethereum's padding, 0x01 ... 0x80. */
static void keccak256(const unsigned char *data, size_t len, unsigned char *out)
{
    uint64_t state[25];
    KeccakP1600_Initialize(state);
    while (len >= RATE) {
        KeccakP1600_AddBytes(state, data, 0, RATE);
        KeccakP1600_Permute_24rounds(state);
        data += RATE;
        len -= RATE;
    }
    KeccakP1600_AddBytes(state, data, 0, (unsigned int)len);
    KeccakP1600_AddByte(state, 0x01, (unsigned int)len);
    KeccakP1600_AddByte(state, 0x80, RATE - 1);
    KeccakP1600_Permute_24rounds(state);
    KeccakP1600_ExtractBytes(state, out, 0, NODE);
}

/* keccak256(first || second) of two 32-byte values into out: a node, or a record's commitment. */
static void keccak256_pair(const unsigned char *first, const unsigned char *second, unsigned char *out)
{
    uint64_t state[25];
    KeccakP1600_Initialize(state);
    KeccakP1600_AddLanes(state, first, NODE / 8);
    KeccakP1600_AddBytes(state, second, NODE, NODE);
    KeccakP1600_AddByte(state, 0x01, 2 * NODE);
    KeccakP1600_AddByte(state, 0x80, RATE - 1);
    KeccakP1600_Permute_24rounds(state);
    KeccakP1600_ExtractBytes(state, out, 0, NODE);
}

/* ---- sorting the leaves ----------------------------------------------------------------- */

typedef struct {
    unsigned char hash[NODE];
    size_t index;
} FullItem;

/* The order of the leaves in the node array, where they sit largest first: by hash descending,
 * then by position descending, so that equal leaves end up as a stable ascending sort (as
 * JavaScript's) places them, the copy given last at the smallest index. */
static int compare_placed(const void *a, const void *b)
{
    const FullItem *x = a, *y = b;
    int order = memcmp(y->hash, x->hash, NODE);
    if (order != 0) {
        return order;
    }
    return (x->index < y->index) - (x->index > y->index);
}

/* Sort one bucket in place: slots[0..count) (hashes, in the node array) and order[0..count) (the
 * position each came from) together, as compare_placed orders them. The bucket arrives with equal
 * hashes already by position descending (see place_leaves), so a stable sort by hash descending
 * is enough: insertion sort for the short buckets uniformly spread hashes make, qsort (whose ties
 * compare_placed breaks) for long ones (many duplicates, or leaves made to share a prefix), so no
 * input costs more than O(k log k). Returns 0, or -1 out of memory. */
static int sort_bucket(unsigned char *slots, size_t *order, size_t count)
{
    if (count <= 32) {
        for (size_t i = 1; i < count; i++) {
            unsigned char hash[NODE];
            memcpy(hash, slots + NODE * i, NODE);
            size_t index = order[i];
            size_t j = i;
            while (j > 0 && memcmp(slots + NODE * (j - 1), hash, NODE) < 0) {
                j--;
            }
            if (j < i) {
                memmove(slots + NODE * (j + 1), slots + NODE * j, NODE * (i - j));
                memmove(order + j + 1, order + j, sizeof(size_t) * (i - j));
                memcpy(slots + NODE * j, hash, NODE);
                order[j] = index;
            }
        }
        return 0;
    }
    FullItem *full = PyMem_RawMalloc(count * sizeof(FullItem));
    if (full == NULL) {
        return -1;
    }
    for (size_t i = 0; i < count; i++) {
        memcpy(full[i].hash, slots + NODE * i, NODE);
        full[i].index = order[i];
    }
    qsort(full, count, sizeof(FullItem), compare_placed);
    for (size_t i = 0; i < count; i++) {
        memcpy(slots + NODE * i, full[i].hash, NODE);
        order[i] = full[i].index;
    }
    PyMem_RawFree(full);
    return 0;
}

/* Put count leaf hashes in the node array's leaf slots, slots[0..count) (nodes n - 1 to 2n - 2),
 * largest first, and set positions[i] to the tree index of leaf i. One counting pass buckets the
 * leaves by their first bits (about log2(count) bits, at most 16: keccak outputs spread evenly, so
 * buckets hold one or two), one pass moves each to its bucket, then each bucket is sorted by the
 * whole hash. Returns 0, or -1 out of memory. Runs without the GIL. */
static int place_leaves(const unsigned char *hashes, size_t count, unsigned char *slots, uint64_t *positions)
{
    unsigned int bits = 1;
    while (bits < 16 && ((size_t)1 << bits) < count) {
        bits++;
    }
    size_t buckets = (size_t)1 << bits;
    size_t *ends = PyMem_RawCalloc(buckets + 1, sizeof(size_t));
    size_t *next = PyMem_RawMalloc(buckets * sizeof(size_t));
    size_t *order = PyMem_RawMalloc(count * sizeof(size_t));
    if (ends == NULL || next == NULL || order == NULL) {
        PyMem_RawFree(ends);
        PyMem_RawFree(next);
        PyMem_RawFree(order);
        return -1;
    }
    /* Bucket b (from the largest prefix down) fills slots [ends[b], ends[b + 1]). */
    size_t top = buckets - 1;
    for (size_t i = 0; i < count; i++) {
        const unsigned char *hash = hashes + NODE * i;
        ends[top - ((((size_t)hash[0] << 8) | hash[1]) >> (16 - bits)) + 1]++;
    }
    for (size_t b = 0; b < buckets; b++) {
        ends[b + 1] += ends[b];
    }
    /* Each bucket filled from its end backwards: equal hashes arrive by position descending. */
    memcpy(next, ends + 1, buckets * sizeof(size_t));
    for (size_t i = 0; i < count; i++) {
        const unsigned char *hash = hashes + NODE * i;
        size_t slot = --next[top - ((((size_t)hash[0] << 8) | hash[1]) >> (16 - bits))];
        memcpy(slots + NODE * slot, hash, NODE);
        order[slot] = i;
    }
    PyMem_RawFree(next);
    int status = 0;
    for (size_t b = 0; b < buckets && status == 0; b++) {
        size_t size = ends[b + 1] - ends[b];
        if (size > 1) {
            status = sort_bucket(slots + NODE * ends[b], order + ends[b], size);
        }
    }
    PyMem_RawFree(ends);
    for (size_t slot = 0; status == 0 && slot < count; slot++) {
        positions[order[slot]] = (uint64_t)(count - 1 + slot);
    }
    PyMem_RawFree(order);
    return status;
}

/* ---- the tree ----------------------------------------------------------------------------- */

/* Build OpenZeppelin's node array over count leaf hashes into nodes (2n - 1 nodes of 32 bytes,
 * root first) and the tree index of each leaf, in the order given, into positions. Returns 0, or
 * -1 out of memory. Runs without the GIL. */
static int build_nodes(const unsigned char *leaves, size_t count, unsigned char *nodes, uint64_t *positions)
{
    if (place_leaves(leaves, count, nodes + NODE * (count - 1), positions) != 0) {
        return -1;
    }
    for (size_t i = count - 1; i-- > 0;) {
        const unsigned char *left = nodes + NODE * (2 * i + 1);
        const unsigned char *right = nodes + NODE * (2 * i + 2);
        if (memcmp(left, right, NODE) < 0) {
            keccak256_pair(left, right, nodes + NODE * i);
        } else {
            keccak256_pair(right, left, nodes + NODE * i);
        }
    }
    return 0;
}

/* Make the node array's and the positions' bytes objects (uninitialised): 1, or 0 with
 * MemoryError set (the one made, if any, is the caller's to release). */
static int new_outputs(size_t count, PyObject **nodes, PyObject **positions)
{
    *nodes = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(NODE * (2 * count - 1)));
    *positions = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(sizeof(uint64_t) * count));
    return *nodes != NULL && *positions != NULL;
}

/* Whether value is exact bytes of 32 bytes (not a subclass, not another buffer). */
static int is_node(PyObject *value)
{
    return PyBytes_CheckExact(value) && PyBytes_GET_SIZE(value) == NODE;
}

PyDoc_STRVAR(leaves_tree_doc,
"leaves_tree(leaves, /) -> tuple[bytes, bytes] | None\n"
"\n"
"From a non-empty tuple of exact 32-byte bytes leaf hashes: OpenZeppelin's node array as one\n"
"bytes object (2n - 1 nodes of 32 bytes, root first) and each leaf's tree index, in the order\n"
"given, as n native-endian uint64. None for anything else.");

static PyObject *leaves_tree(PyObject *module, PyObject *leaves)
{
    if (!PyTuple_CheckExact(leaves) || PyTuple_GET_SIZE(leaves) == 0) {
        Py_RETURN_NONE;
    }
    size_t count = (size_t)PyTuple_GET_SIZE(leaves);
    for (size_t i = 0; i < count; i++) {
        if (!is_node(PyTuple_GET_ITEM(leaves, (Py_ssize_t)i))) {
            Py_RETURN_NONE;
        }
    }
    PyObject *nodes = NULL, *positions = NULL, *answer = NULL;
    unsigned char *hashes = PyMem_RawMalloc(NODE * count);
    if (hashes == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    if (!new_outputs(count, &nodes, &positions)) {
        goto done;
    }
    for (size_t i = 0; i < count; i++) {
        memcpy(hashes + NODE * i, PyBytes_AS_STRING(PyTuple_GET_ITEM(leaves, (Py_ssize_t)i)), NODE);
    }
    int status;
    unsigned char *node_bytes = (unsigned char *)PyBytes_AS_STRING(nodes);
    uint64_t *position_values = (uint64_t *)PyBytes_AS_STRING(positions);
    Py_BEGIN_ALLOW_THREADS
    status = build_nodes(hashes, count, node_bytes, position_values);
    Py_END_ALLOW_THREADS
    if (status != 0) {
        PyErr_NoMemory();
        goto done;
    }
    answer = PyTuple_Pack(2, nodes, positions);
done:
    Py_XDECREF(nodes);
    Py_XDECREF(positions);
    PyMem_RawFree(hashes);
    return answer;
}

PyDoc_STRVAR(records_tree_doc,
"records_tree(records, /) -> tuple[bytes, bytes, tuple[bytes, ...], tuple[bytes, ...], tuple[bytes, ...]] | None\n"
"\n"
"From a non-empty list or tuple of (salt, digest) pairs (each a tuple or list of two exact\n"
"32-byte bytes): the node array and the tree indices as leaves_tree gives them, the leaf hashes\n"
"keccak256(keccak256(salt || digest)) in the order given, the salts and the digests. None for\n"
"anything else.");

static PyObject *records_tree(PyObject *module, PyObject *records)
{
    if (!(PyList_CheckExact(records) || PyTuple_CheckExact(records))) {
        Py_RETURN_NONE;
    }
    PyObject *held = PySequence_Fast(records, "records");
    if (held == NULL) {
        return NULL;
    }
    size_t count = (size_t)PySequence_Fast_GET_SIZE(held);
    PyObject **items = PySequence_Fast_ITEMS(held);
    PyObject *salts = NULL, *digests = NULL, *leaves = NULL, *nodes = NULL, *positions = NULL, *answer = NULL;
    unsigned char *hashes = NULL;
    if (count == 0) {
        goto not_handled;
    }
    salts = PyTuple_New((Py_ssize_t)count);
    digests = PyTuple_New((Py_ssize_t)count);
    hashes = PyMem_RawMalloc(NODE * count);
    if (salts == NULL || digests == NULL || hashes == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    for (size_t i = 0; i < count; i++) {
        PyObject *record = items[i];
        PyObject *salt, *digest;
        if (PyTuple_CheckExact(record) && PyTuple_GET_SIZE(record) == 2) {
            salt = PyTuple_GET_ITEM(record, 0);
            digest = PyTuple_GET_ITEM(record, 1);
        } else if (PyList_CheckExact(record) && PyList_GET_SIZE(record) == 2) {
            salt = PyList_GET_ITEM(record, 0);
            digest = PyList_GET_ITEM(record, 1);
        } else {
            goto not_handled;
        }
        if (!is_node(salt) || !is_node(digest)) {
            goto not_handled;
        }
        Py_INCREF(salt);
        PyTuple_SET_ITEM(salts, (Py_ssize_t)i, salt);
        Py_INCREF(digest);
        PyTuple_SET_ITEM(digests, (Py_ssize_t)i, digest);
    }
    if (!new_outputs(count, &nodes, &positions)) {
        goto done;
    }
    int status;
    unsigned char *node_bytes = (unsigned char *)PyBytes_AS_STRING(nodes);
    uint64_t *position_values = (uint64_t *)PyBytes_AS_STRING(positions);
    PyObject **salt_items = ((PyTupleObject *)salts)->ob_item;
    PyObject **digest_items = ((PyTupleObject *)digests)->ob_item;
    /* The salts and digests are immutable bytes the tuples keep alive: read without the GIL. */
    Py_BEGIN_ALLOW_THREADS
    unsigned char commitment[NODE];
    for (size_t i = 0; i < count; i++) {
        keccak256_pair((const unsigned char *)PyBytes_AS_STRING(salt_items[i]),
                       (const unsigned char *)PyBytes_AS_STRING(digest_items[i]), commitment);
        keccak256(commitment, NODE, hashes + NODE * i);
    }
    status = build_nodes(hashes, count, node_bytes, position_values);
    Py_END_ALLOW_THREADS
    if (status != 0) {
        PyErr_NoMemory();
        goto done;
    }
    leaves = PyTuple_New((Py_ssize_t)count);
    if (leaves == NULL) {
        goto done;
    }
    for (size_t i = 0; i < count; i++) {
        PyObject *leaf = PyBytes_FromStringAndSize((const char *)hashes + NODE * i, NODE);
        if (leaf == NULL) {
            goto done;
        }
        PyTuple_SET_ITEM(leaves, (Py_ssize_t)i, leaf);
    }
    answer = PyTuple_Pack(5, nodes, positions, leaves, salts, digests);
    goto done;
not_handled:
    answer = Py_None;
    Py_INCREF(answer);
done:
    Py_XDECREF(nodes);
    Py_XDECREF(positions);
    Py_XDECREF(leaves);
    Py_XDECREF(salts);
    Py_XDECREF(digests);
    PyMem_RawFree(hashes);
    Py_DECREF(held);
    return answer;
}

PyDoc_STRVAR(proof_doc,
"proof(nodes, tree_index, /) -> list[bytes]\n"
"\n"
"The siblings from the node at tree_index up to the root, in a node array as leaves_tree\n"
"gives it: OpenZeppelin's getProof. IndexError for an index outside the array.");

static PyObject *proof(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2 || !PyBytes_CheckExact(args[0])) {
        PyErr_SetString(PyExc_TypeError, "proof(nodes, tree_index) takes a bytes node array and an index");
        return NULL;
    }
    Py_ssize_t index = PyLong_AsSsize_t(args[1]);
    if (index == -1 && PyErr_Occurred()) {
        return NULL;
    }
    const char *nodes = PyBytes_AS_STRING(args[0]);
    Py_ssize_t count = PyBytes_GET_SIZE(args[0]) / NODE;
    if (index < 0 || index >= count) {
        PyErr_SetString(PyExc_IndexError, "tree index outside the node array");
        return NULL;
    }
    Py_ssize_t depth = 0;
    for (Py_ssize_t i = index; i > 0; i = (i - 1) >> 1) {
        depth++;
    }
    PyObject *siblings = PyList_New(depth);
    if (siblings == NULL) {
        return NULL;
    }
    Py_ssize_t step = 0;
    for (Py_ssize_t i = index; i > 0; i = (i - 1) >> 1) {
        Py_ssize_t sibling = (i & 1) ? i + 1 : i - 1;
        PyObject *node = PyBytes_FromStringAndSize(nodes + NODE * sibling, NODE);
        if (node == NULL) {
            Py_DECREF(siblings);
            return NULL;
        }
        PyList_SET_ITEM(siblings, step++, node);
    }
    return siblings;
}

/* ---- keccak alone: for the tests and the benchmark's limit -------------------------------- */

PyDoc_STRVAR(keccak256_doc,
"keccak256(data, /) -> bytes\n"
"\n"
"Ethereum's keccak256 of any bytes-like object, over the same permutation the builders use.");

static PyObject *keccak256_py(PyObject *module, PyObject *data)
{
    Py_buffer view;
    if (PyObject_GetBuffer(data, &view, PyBUF_SIMPLE) != 0) {
        return NULL;
    }
    unsigned char out[NODE];
    keccak256(view.buf, (size_t)view.len, out);
    PyBuffer_Release(&view);
    return PyBytes_FromStringAndSize((const char *)out, NODE);
}

PyDoc_STRVAR(keccak_each_doc,
"keccak_each(data, width, /) -> bytes\n"
"\n"
"The keccak256 of every width-byte slice of data, concatenated: the bare cost of hashing\n"
"(one call into the permutation per slice, no Python object per hash), the limit\n"
"bench/merkle_rate.py measures the builders against.");

static PyObject *keccak_each(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "keccak_each(data, width) takes two arguments");
        return NULL;
    }
    Py_ssize_t width = PyLong_AsSsize_t(args[1]);
    if (width == -1 && PyErr_Occurred()) {
        return NULL;
    }
    Py_buffer view;
    if (PyObject_GetBuffer(args[0], &view, PyBUF_SIMPLE) != 0) {
        return NULL;
    }
    if (width <= 0 || view.len % width != 0) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError, "data must be a whole number of width-byte slices");
        return NULL;
    }
    size_t count = (size_t)(view.len / width);
    PyObject *out = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(NODE * count));
    if (out != NULL) {
        unsigned char *target = (unsigned char *)PyBytes_AS_STRING(out);
        const unsigned char *source = view.buf;
        Py_BEGIN_ALLOW_THREADS
        for (size_t i = 0; i < count; i++) {
            keccak256(source + (size_t)width * i, (size_t)width, target + NODE * i);
        }
        Py_END_ALLOW_THREADS
    }
    PyBuffer_Release(&view);
    return out;
}

static PyMethodDef methods[] = {
    {"leaves_tree", leaves_tree, METH_O, leaves_tree_doc},
    {"records_tree", records_tree, METH_O, records_tree_doc},
    {"proof", (PyCFunction)(void (*)(void))proof, METH_FASTCALL, proof_doc},
    {"keccak256", keccak256_py, METH_O, keccak256_doc},
    {"keccak_each", (PyCFunction)(void (*)(void))keccak_each, METH_FASTCALL, keccak_each_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    "ledger.records._merkle_native",
    "OpenZeppelin StandardMerkleTree builds and keccak256 in C (see native/merkle_native.c).",
    0,
    methods,
    NULL,
    NULL,
    NULL,
    NULL,
};

PyMODINIT_FUNC PyInit__merkle_native(void)
{
    return PyModuleDef_Init(&module_def);
}
