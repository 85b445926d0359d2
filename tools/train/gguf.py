"""A small GGUF v3 writer and reader (F32, F16 and Q8_0 tensors).

Format (https://github.com/ggml-org/ggml/blob/master/docs/gguf.md), little endian:
  header   "GGUF", uint32 version, uint64 n_tensors, uint64 n_kv
  kv       string key, uint32 value type, value
  tensors  string name, uint32 n_dims, uint64 ne[n_dims] (ne[0] innermost),
           uint32 ggml type, uint64 offset from the start of the data section
  padding  to general.alignment (32), then the tensor data, each tensor aligned
A string is a uint64 length followed by UTF-8 bytes (no terminator). An array is
a uint32 element type, a uint64 count and the elements.

Q8_0 (ggml type 8) stores blocks of 32 values as an F16 scale d = amax / 127
followed by 32 int8 q = round(x / d), rounded half away from zero as roundf().
"""

import struct

import numpy as np

# GGUF value types.
UINT8, INT8, UINT16, INT16, UINT32, INT32, FLOAT32, BOOL, STRING, ARRAY, UINT64, INT64, FLOAT64 = range(13)
_SCALAR = {UINT8: "<B", INT8: "<b", UINT16: "<H", INT16: "<h", UINT32: "<I", INT32: "<i",
           FLOAT32: "<f", BOOL: "<?", UINT64: "<Q", INT64: "<q", FLOAT64: "<d"}

# ggml tensor types used here.
GGML_F32, GGML_F16, GGML_Q8_0 = 0, 1, 8
QK8_0 = 32
ALIGNMENT = 32


def quantize_q8_0(x):
    """Quantizes a float32 array whose last dimension is a multiple of 32 to Q8_0 bytes."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    assert x.shape[-1] % QK8_0 == 0, "Q8_0 needs rows that are a multiple of 32"
    blocks = x.reshape(-1, QK8_0)
    amax = np.abs(blocks).max(axis=1)
    d = (amax / np.float32(127.0)).astype(np.float32)
    inv = np.divide(np.float32(1.0), d, out=np.zeros_like(d), where=d != 0)
    scaled = blocks * inv[:, None]
    q = (np.sign(scaled) * np.floor(np.abs(scaled) + np.float32(0.5))).astype(np.int8)  # roundf
    out = np.empty(len(blocks), dtype=[("d", "<f2"), ("q", "i1", QK8_0)])
    out["d"] = d.astype(np.float16)
    out["q"] = q
    return out.tobytes()


def dequantize_q8_0(raw, n):
    """Returns the n float32 values stored in Q8_0 bytes."""
    blocks = np.frombuffer(raw, dtype=[("d", "<f2"), ("q", "i1", QK8_0)], count=n // QK8_0)
    return (blocks["d"].astype(np.float32)[:, None] * blocks["q"].astype(np.float32)).reshape(-1)


def _pack_string(s):
    b = s.encode("utf-8")
    return struct.pack("<Q", len(b)) + b


def _pack_value(vtype, value):
    if vtype == STRING:
        return _pack_string(value)
    return struct.pack(_SCALAR[vtype], value)


class GGUFWriter:
    """Collects metadata and tensors, then writes them in one go with write()."""

    def __init__(self):
        self.kv = []       # (key, type, value, element type for arrays)
        self.tensors = []  # (name, ne, ggml type, bytes)

    def add(self, key, vtype, value, elem_type=None):
        self.kv.append((key, vtype, value, elem_type))

    def add_string(self, key, value):
        self.add(key, STRING, value)

    def add_u32(self, key, value):
        self.add(key, UINT32, int(value))

    def add_f32(self, key, value):
        self.add(key, FLOAT32, float(value))

    def add_bool(self, key, value):
        self.add(key, BOOL, bool(value))

    def add_array(self, key, elem_type, values):
        self.add(key, ARRAY, list(values), elem_type)

    def add_tensor(self, name, array, ggml_type):
        """Adds a tensor given as a numpy array in PyTorch order (ne is the reverse of shape)."""
        a = np.ascontiguousarray(array, dtype=np.float32)
        if ggml_type == GGML_F32:
            raw = a.tobytes()
        elif ggml_type == GGML_F16:
            raw = a.astype(np.float16).tobytes()
        elif ggml_type == GGML_Q8_0:
            raw = quantize_q8_0(a)
        else:
            raise ValueError(f"unsupported ggml type {ggml_type}")
        self.tensors.append((name, list(reversed(a.shape)), ggml_type, raw))

    def write(self, path):
        out = bytearray()
        out += b"GGUF" + struct.pack("<IQQ", 3, len(self.tensors), len(self.kv))
        for key, vtype, value, elem_type in self.kv:
            out += _pack_string(key) + struct.pack("<I", vtype)
            if vtype == ARRAY:
                out += struct.pack("<IQ", elem_type, len(value))
                if elem_type in _SCALAR:  # numeric arrays in one block
                    out += np.asarray(value, dtype=_SCALAR[elem_type]).tobytes()
                else:
                    out += b"".join(_pack_value(elem_type, v) for v in value)
            else:
                out += _pack_value(vtype, value)
        offset = 0
        for name, ne, ggml_type, raw in self.tensors:
            out += _pack_string(name) + struct.pack("<I", len(ne))
            out += struct.pack(f"<{len(ne)}Q", *ne) + struct.pack("<IQ", ggml_type, offset)
            offset += (len(raw) + ALIGNMENT - 1) // ALIGNMENT * ALIGNMENT
        out += b"\0" * (-len(out) % ALIGNMENT)
        for _, _, _, raw in self.tensors:
            out += raw + b"\0" * (-len(raw) % ALIGNMENT)
        with open(path, "wb") as f:
            f.write(out)


def read_gguf(path):
    """Reads a GGUF file: returns (metadata dict, {name: float32 array in PyTorch order}, {name: type})."""
    data = open(path, "rb").read()
    pos = 0

    def take(fmt):
        nonlocal pos
        vals = struct.unpack_from(fmt, data, pos)
        pos += struct.calcsize(fmt)
        return vals if len(vals) > 1 else vals[0]

    def string():
        nonlocal pos
        n = take("<Q")
        s = data[pos:pos + n].decode("utf-8")
        pos += n
        return s

    def value(vtype):
        if vtype == STRING:
            return string()
        if vtype == ARRAY:
            et, n = take("<IQ")
            return [value(et) for _ in range(n)]
        return take(_SCALAR[vtype])

    magic, version, n_tensors, n_kv = take("<4sIQQ")
    assert magic == b"GGUF" and version in (2, 3), "not a GGUF v2/v3 file"
    meta = {}
    for _ in range(n_kv):
        key = string()
        meta[key] = value(take("<I"))
    infos = []
    for _ in range(n_tensors):
        name = string()
        ne = [take("<Q") for _ in range(take("<I"))]
        ggml_type, offset = take("<IQ")
        infos.append((name, ne, ggml_type, offset))
    align = meta.get("general.alignment", ALIGNMENT)
    base = (pos + align - 1) // align * align
    tensors, types = {}, {}
    for name, ne, ggml_type, offset in infos:
        n = int(np.prod(ne))
        start = base + offset
        if ggml_type == GGML_F32:
            a = np.frombuffer(data, np.float32, n, start)
        elif ggml_type == GGML_F16:
            a = np.frombuffer(data, np.float16, n, start).astype(np.float32)
        elif ggml_type == GGML_Q8_0:
            a = dequantize_q8_0(data[start:start + n // QK8_0 * 34], n)
        else:
            raise ValueError(f"{name}: unsupported ggml type {ggml_type}")
        tensors[name] = a.reshape(list(reversed(ne))).copy()
        types[name] = ggml_type
    return meta, tensors, types
