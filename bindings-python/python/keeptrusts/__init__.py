"""keeptrusts: team-based AI governance (policy packs, per-team targeting, rbac, redaction, escalations).

Every rule lives in the Rust core; this package converts types and maps errors.
"""

from keeptrusts._native import (
    AdminError,
    Engine,
    InvalidArgument,
    KeeptrustsError,
    MemoryEscalations,
    PackError,
    RequestError,
    StoreError,
    lint,
    redact,
    scan,
)

__all__ = [
    "AdminError",
    "Engine",
    "InvalidArgument",
    "KeeptrustsError",
    "MemoryEscalations",
    "PackError",
    "RequestError",
    "StoreError",
    "lint",
    "redact",
    "scan",
]
