/* Optional accelerator for trio_ws: WebSocket masking, frame building and
 * whole-frame parsing in C.
 *
 * apply_mask(data, key) -> bytes XORs data with the 4-byte key repeated
 * (RFC 6455 section 5.3), exactly as trio_ws._frames.py_mask does in pure
 * Python. build_frame(first, payload, key) -> bytes makes a frame in one
 * allocation, exactly as py_build_frame does. parse_whole(data, pos,
 * masked, limit, messages) -> int turns the whole one-frame messages at
 * data[pos:] into str and bytes, exactly as py_parse_whole does. The package
 * works without this module (a compiler is optional at install time); with
 * it, masking costs a memory copy instead of several Python-level passes,
 * and a small message is built or parsed without a Python-level step.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <limits.h>
#include <stdint.h>
#include <string.h>

/* out[i] = in[i] ^ k[i % 4] for i < n; out may be in. */
static void
xor_mask(const unsigned char *in, unsigned char *out, Py_ssize_t n,
         const unsigned char *k)
{
    Py_ssize_t i = 0;
    uint64_t k8;
    /* The key twice, in memory order, so the 8-byte steps (a multiple of
       4) keep byte i aligned with k[i % 4] on any endianness. */
    memcpy(&k8, k, 4);
    memcpy((unsigned char *)&k8 + 4, k, 4);
    for (; i + 8 <= n; i += 8) {
        uint64_t v;
        memcpy(&v, in + i, 8);
        v ^= k8;
        memcpy(out + i, &v, 8);
    }
    for (; i < n; i++) {
        out[i] = in[i] ^ k[i & 3];
    }
}

/* Get a masking key's buffer into *key: 0, or -1 with an error set (and
   nothing to release) unless it is 4 bytes long. */
static int
get_key(PyObject *obj, Py_buffer *key)
{
    if (PyObject_GetBuffer(obj, key, PyBUF_SIMPLE) < 0) {
        return -1;
    }
    if (key->len != 4) {
        PyBuffer_Release(key);
        PyErr_SetString(PyExc_ValueError, "the mask must be 4 bytes long");
        return -1;
    }
    return 0;
}

static PyObject *
apply_mask(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    Py_buffer data, key;
    PyObject *result = NULL;

    (void)module;
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "apply_mask() takes exactly 2 arguments");
        return NULL;
    }
    if (PyObject_GetBuffer(args[0], &data, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    if (get_key(args[1], &key) < 0) {
        PyBuffer_Release(&data);
        return NULL;
    }
    result = PyBytes_FromStringAndSize(NULL, data.len);
    if (result != NULL) {
        xor_mask((const unsigned char *)data.buf,
                 (unsigned char *)PyBytes_AS_STRING(result), data.len,
                 (const unsigned char *)key.buf);
    }
    PyBuffer_Release(&key);
    PyBuffer_Release(&data);
    return result;
}

static PyObject *
build_frame(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    Py_buffer payload, key;
    PyObject *result = NULL;
    long first;
    int masked;
    Py_ssize_t header;
    unsigned char *out;
    unsigned long long n;
    int i;

    (void)module;
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "build_frame() takes exactly 3 arguments");
        return NULL;
    }
    first = PyLong_AsLong(args[0]);
    if (first == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (first < 0 || first > 255) {
        PyErr_SetString(PyExc_ValueError, "the first byte must be in range(256)");
        return NULL;
    }
    masked = args[2] != Py_None;
    if (PyObject_GetBuffer(args[1], &payload, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    if (masked && get_key(args[2], &key) < 0) {
        PyBuffer_Release(&payload);
        return NULL;
    }
    n = (unsigned long long)payload.len;
    header = 2 + (n > 0xFFFF ? 8 : n > 125 ? 2 : 0) + (masked ? 4 : 0);
    result = PyBytes_FromStringAndSize(NULL, header + payload.len);
    if (result == NULL) {
        goto done;
    }
    out = (unsigned char *)PyBytes_AS_STRING(result);
    out[0] = (unsigned char)first;
    if (n <= 125) {
        out[1] = (unsigned char)n;
        out += 2;
    } else if (n <= 0xFFFF) {
        out[1] = 126;
        out[2] = (unsigned char)(n >> 8);
        out[3] = (unsigned char)n;
        out += 4;
    } else {
        out[1] = 127;
        for (i = 0; i < 8; i++) {
            out[2 + i] = (unsigned char)(n >> (56 - 8 * i));
        }
        out += 10;
    }
    if (masked) {
        PyBytes_AS_STRING(result)[1] |= (char)0x80;
        memcpy(out, key.buf, 4);
        xor_mask((const unsigned char *)payload.buf, out + 4, payload.len,
                 (const unsigned char *)key.buf);
    } else if (payload.len) {
        memcpy(out, payload.buf, payload.len);
    }
done:
    if (masked) {
        PyBuffer_Release(&key);
    }
    PyBuffer_Release(&payload);
    return result;
}

/* One message from a frame's payload, or NULL with no error set when it is
   text and not valid UTF-8 (the caller stops there), or NULL with an error. */
static PyObject *
make_message(const unsigned char *payload, Py_ssize_t n, const unsigned char *key,
             int text)
{
    PyObject *bytes = NULL, *message;

    if (key != NULL) {
        bytes = PyBytes_FromStringAndSize(NULL, n);
        if (bytes == NULL) {
            return NULL;
        }
        xor_mask(payload, (unsigned char *)PyBytes_AS_STRING(bytes), n, key);
        if (!text) {
            return bytes;
        }
        payload = (const unsigned char *)PyBytes_AS_STRING(bytes);
    } else if (!text) {
        return PyBytes_FromStringAndSize((const char *)payload, n);
    }
    message = PyUnicode_DecodeUTF8((const char *)payload, n, NULL);
    Py_XDECREF(bytes);
    if (message == NULL && PyErr_ExceptionMatches(PyExc_UnicodeDecodeError)) {
        PyErr_Clear(); /* wsproto reports where, and how */
    }
    return message;
}

static PyObject *
parse_whole(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    const unsigned char *data;
    Py_ssize_t end, pos;
    int masked, overflow;
    long long limit;
    PyObject *messages;

    (void)module;
    if (nargs != 5) {
        PyErr_SetString(PyExc_TypeError, "parse_whole() takes exactly 5 arguments");
        return NULL;
    }
    if (!PyBytes_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "parse_whole() needs bytes");
        return NULL;
    }
    data = (const unsigned char *)PyBytes_AS_STRING(args[0]);
    end = PyBytes_GET_SIZE(args[0]);
    pos = PyLong_AsSsize_t(args[1]);
    if (pos == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (pos < 0 || pos > end) {
        PyErr_SetString(PyExc_ValueError, "parse_whole() position out of range");
        return NULL;
    }
    masked = PyObject_IsTrue(args[2]);
    if (masked < 0) {
        return NULL;
    }
    limit = PyLong_AsLongLongAndOverflow(args[3], &overflow);
    if (limit == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (overflow > 0) {
        limit = LLONG_MAX; /* no frame is longer: 2**63 - 1 at most */
    } else if (overflow < 0) {
        limit = -1;
    }
    messages = args[4];
    if (!PyList_Check(messages)) {
        PyErr_SetString(PyExc_TypeError, "parse_whole() needs a list");
        return NULL;
    }

    while (end - pos >= 2) {
        unsigned char first = data[pos], second = data[pos + 1];
        Py_ssize_t start = pos + 2, room;
        unsigned long long length = second & 0x7F;
        const unsigned char *key = NULL;
        PyObject *message;
        int i;

        /* 0x81 and 0x82: FIN, no reserved bit, text or binary. */
        if ((first != 0x81 && first != 0x82) || (second & 0x80) != (masked ? 0x80 : 0)) {
            break;
        }
        if (length == 126) {
            if (end - start < 2) {
                break;
            }
            length = ((unsigned long long)data[start] << 8) | data[start + 1];
            if (length <= 125) {
                break; /* not minimal: an error */
            }
            start += 2;
        } else if (length == 127) {
            if (end - start < 8) {
                break;
            }
            length = 0;
            for (i = 0; i < 8; i++) {
                length = (length << 8) | data[start + i];
            }
            if (length <= 0xFFFF || length >> 63) {
                break;
            }
            start += 8;
        }
        if (limit < 0 || length > (unsigned long long)limit) {
            break;
        }
        if (masked) {
            if (end - start < 4) {
                break;
            }
            key = data + start;
            start += 4;
        }
        room = end - start;
        if (length > (unsigned long long)room) {
            break;
        }
        message = make_message(data + start, (Py_ssize_t)length, key, first == 0x81);
        if (message == NULL) {
            if (PyErr_Occurred()) {
                return NULL;
            }
            break;
        }
        if (PyList_Append(messages, message) < 0) {
            Py_DECREF(message);
            return NULL;
        }
        Py_DECREF(message);
        pos = start + (Py_ssize_t)length;
    }
    return PyLong_FromSsize_t(pos);
}

static PyMethodDef speedups_methods[] = {
    {"apply_mask", (PyCFunction)(void (*)(void))apply_mask, METH_FASTCALL,
     "apply_mask(data, key, /)\n--\n\n"
     "XOR data with the 4-byte key repeated (RFC 6455 5.3); return bytes."},
    {"build_frame", (PyCFunction)(void (*)(void))build_frame, METH_FASTCALL,
     "build_frame(first, payload, key, /)\n--\n\n"
     "A frame: first byte first, then payload, masked with key unless None."},
    {"parse_whole", (PyCFunction)(void (*)(void))parse_whole, METH_FASTCALL,
     "parse_whole(data, pos, masked, limit, messages, /)\n--\n\n"
     "Append the whole one-frame messages at data[pos:] to messages;\n"
     "return where parsing stopped."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef speedups_module = {
    PyModuleDef_HEAD_INIT,
    "trio_ws._speedups",
    "Optional C accelerator for trio_ws (masking, frame building, parsing).",
    0,
    speedups_methods,
    NULL,
    NULL,
    NULL,
    NULL,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    return PyModuleDef_Init(&speedups_module);
}
