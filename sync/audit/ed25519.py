"""Ed25519 signature verification (RFC 8032, section 5.1.7) in pure Python.

It exists so that the auditors' standalone script can check the office's signed anchors
with nothing but the Python standard library. It only verifies: signing is done in the
office with the ``cryptography`` package. The check is the cofactorless one,
[S]B = R + [k]A, made by comparing the two sides' encodings.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    # Points in extended coordinates (X, Y, Z, T): x = X/Z, y = Y/Z, x*y = T/Z.
    Point = tuple[int, int, int, int]

# The field, the curve -x^2 + y^2 = 1 + d x^2 y^2, and the order of its base point B.
P = 2**255 - 19
D = -121665 * pow(121666, P - 2, P) % P
L = 2**252 + 27742317777372353535851937790883648493
SQRT_M1 = pow(2, (P - 1) // 4, P)  # a square root of -1 mod p


def _inverse(x: int) -> int:
    return pow(x, P - 2, P)


def _recover_x(y: int, sign: int) -> int | None:
    """The x with x^2 = (y^2 - 1) / (d y^2 + 1) and x mod 2 = sign, or None."""
    x2 = (y * y - 1) * _inverse(D * y * y + 1) % P
    # p = 5 (mod 8): a candidate root is x2^((p+3)/8); it is off by a factor sqrt(-1) or wrong.
    x = pow(x2, (P + 3) // 8, P)
    if x * x % P != x2:
        x = x * SQRT_M1 % P
    if x * x % P != x2:
        return None
    if x == 0 and sign == 1:
        return None
    return P - x if x % 2 != sign else x


# The base point B: y = 4/5, x even.
_B_Y = 4 * _inverse(5) % P
_B_X = _recover_x(_B_Y, 0)
assert _B_X is not None  # for mypy: 4/5 is the y of a point
BASE = (_B_X, _B_Y, 1, _B_X * _B_Y % P)
IDENTITY = (0, 1, 1, 0)


def _add(p1: Point, p2: Point) -> Point:
    """P1 + P2 (Hisil-Wong-Carter-Dawson, a = -1); complete, so it also doubles."""
    x1, y1, z1, t1 = p1
    x2, y2, z2, t2 = p2
    a = (y1 - x1) * (y2 - x2) % P
    b = (y1 + x1) * (y2 + x2) % P
    c = 2 * D * t1 * t2 % P
    d = 2 * z1 * z2 % P
    e, f, g, h = b - a, d - c, d + c, b + a
    return (e * f % P, g * h % P, f * g % P, e * h % P)


def _multiply(n: int, point: Point) -> Point:
    """[n]point, by double-and-add from the top bit."""
    result = IDENTITY
    for bit in reversed(range(n.bit_length())):
        result = _add(result, result)
        if (n >> bit) & 1:
            result = _add(result, point)
    return result


def _encode(point: Point) -> bytes:
    """RFC 8032, 5.1.2: y in 255 bits, little-endian, and the low bit of x on top."""
    x, y, z, _ = point
    z_inv = _inverse(z)
    x, y = x * z_inv % P, y * z_inv % P
    return (y | (x & 1) << 255).to_bytes(32, "little")


def _decode(data: bytes) -> Point | None:
    """RFC 8032, 5.1.3: the point 32 bytes encode, or None (y >= p, or no such x)."""
    n = int.from_bytes(data, "little")
    y, sign = n & ((1 << 255) - 1), n >> 255
    if y >= P:
        return None
    x = _recover_x(y, sign)
    if x is None:
        return None
    return (x, y, 1, x * y % P)


def verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """True when `signature` (64 bytes) is a valid Ed25519 signature of `message` by
    `public_key` (32 bytes)."""
    if len(public_key) != 32 or len(signature) != 64:
        return False
    # Step 1: A and R decode to points, and S < L.
    a = _decode(public_key)
    r = _decode(signature[:32])
    s = int.from_bytes(signature[32:], "little")
    if a is None or r is None or s >= L:
        return False
    # Step 2: k = SHA-512(R || A || M), as an integer mod L.
    digest = hashlib.sha512(signature[:32] + public_key + message).digest()
    k = int.from_bytes(digest, "little") % L
    # Step 3: [S]B = R + [k]A, compared by encoding.
    return _encode(_multiply(s, BASE)) == _encode(_add(r, _multiply(k, a)))
