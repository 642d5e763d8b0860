"""Parse cpu, memory and disk quantities once, into exact integers.

CPU is kept in millicores and memory in bytes so that two spellings of the same amount
("0.5" and "500m", "1Gi" and "1024Mi") compare equal and adapters never re-parse strings.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from stackhop.errors import QuantityError

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {"": 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18}
_MEM_RE = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]*)\s*$")
_BINARY_POWER = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50}
_DECIMAL_POWER = {"k": 3, "M": 6, "G": 9, "T": 12, "P": 15}
_AMBIGUOUS = {"kb", "mb", "gb", "tb", "pb", "kib", "mib", "gib", "tib", "pib", "b"}


_MAX = 2**63 - 1  # Kubernetes quantities, and every backend's request fields, are 64-bit


def parse_cpu(value: str | int | float, *, where: str) -> int:
    """Return millicores for "2", "0.5", "500m", 2 or 0.5."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise QuantityError(f"{where}: cpu {value!r} is not a quantity; write cores like '2' or '0.5', or millicores like '500m'.")
    text = str(value).strip()
    try:
        if text.endswith("m"):
            milli = Decimal(text[:-1])
        else:
            milli = Decimal(text) * 1000
        if not milli.is_finite():
            raise InvalidOperation
    except InvalidOperation:
        raise QuantityError(
            f"{where}: cpu {value!r} is not a quantity; write cores like '2' or '0.5', or millicores like '500m'."
        ) from None
    if milli <= 0 or milli != milli.to_integral_value():
        raise QuantityError(
            f"{where}: cpu {value!r} must be a positive whole number of millicores (at least '1m'); "
            "write e.g. '0.5' or '500m'."
        )
    if milli > _MAX:
        raise QuantityError(f"{where}: cpu {value!r} is more than a 64-bit quantity holds; write the cores a node has.")
    return int(milli)


def parse_bytes(value: str | int, *, where: str, what: str = "memory") -> int:
    """Return bytes for Kubernetes-style quantities ("4Gi", "512Mi", "4G", "1073741824")."""
    if isinstance(value, bool):
        raise QuantityError(f"{where}: {what} {value!r} is not a quantity; write e.g. '4Gi'.")
    if isinstance(value, int):
        if value <= 0:
            raise QuantityError(f"{where}: {what} must be positive, got {value}.")
        if value > _MAX:
            raise QuantityError(f"{where}: {what} {value} bytes is more than a 64-bit quantity holds; write what a node has.")
        return value
    match = _MEM_RE.match(str(value))
    if not match:
        raise QuantityError(f"{where}: {what} {value!r} is not a quantity; write e.g. '4Gi' or '512Mi'.")
    number, unit = match.groups()
    prefix = unit[:1].upper().replace("K", "k")
    if unit.lower() in _AMBIGUOUS and prefix in {"k", "M", "G", "T", "P"}:
        binary = prefix.upper() + "i"
        raise QuantityError(
            f"{where}: {what} {value!r} is ambiguous; write '{number}{binary}' "
            f"({number} × 2^{_BINARY_POWER[binary]} bytes) or '{number}{prefix}' ({number} × 10^{_DECIMAL_POWER[prefix]} bytes)."
        )
    if unit not in _BINARY and unit not in _DECIMAL:
        raise QuantityError(
            f"{where}: {what} {value!r} has an unknown unit {unit!r}; use Ki, Mi, Gi, Ti (binary) or k, M, G, T (decimal)."
        )
    factor = _BINARY.get(unit) or _DECIMAL[unit]
    amount = Decimal(number) * factor
    if amount <= 0 or amount != amount.to_integral_value():
        raise QuantityError(f"{where}: {what} {value!r} must be a positive whole number of bytes.")
    if amount > _MAX:
        raise QuantityError(f"{where}: {what} {value!r} is more than a 64-bit quantity holds; write what a node has.")
    return int(amount)


def format_cpu(millicores: int) -> str:
    """Kubernetes spelling: whole cores as "2", otherwise "500m"."""
    return str(millicores // 1000) if millicores % 1000 == 0 else f"{millicores}m"


def format_bytes(amount: int) -> str:
    """Kubernetes spelling: the largest binary unit that divides exactly, else plain bytes."""
    for unit in ("Ei", "Pi", "Ti", "Gi", "Mi", "Ki"):
        if amount % _BINARY[unit] == 0:
            return f"{amount // _BINARY[unit]}{unit}"
    return str(amount)
