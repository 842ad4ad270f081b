from os import PathLike
from typing import Any, Literal, Optional, TypedDict, Union

Decision = dict[str, Any]
Diagnostic = dict[str, Any]

class KeeptrustsError(Exception):
    code: str

class PackError(KeeptrustsError):
    errors: list[Diagnostic]
    warnings: list[Diagnostic]

class RequestError(KeeptrustsError): ...
class StoreError(KeeptrustsError): ...
class AdminError(KeeptrustsError): ...
class InvalidArgument(KeeptrustsError): ...

class MemoryEscalations:
    def __init__(self) -> None: ...
    def resolve(
        self,
        reviewer: dict[str, Any],
        escalation_id: str,
        resolution: Literal["approve", "deny"],
        now_ms: int,
    ) -> dict[str, Any]: ...
    def get(self, escalation_id: str) -> Optional[dict[str, Any]]: ...
    def list(self, team: Optional[str] = None) -> list[dict[str, Any]]: ...

class Engine:
    @staticmethod
    def from_yaml(source: str) -> Engine: ...
    @staticmethod
    def from_file(path: Union[str, PathLike[str]]) -> Engine: ...
    @property
    def warnings(self) -> list[Diagnostic]: ...
    def named_teams(self) -> list[str]: ...
    def effective_chain(self, principal: dict[str, Any]) -> list[str]: ...
    def evaluate(
        self,
        principal: dict[str, Any],
        request: dict[str, Any],
        escalations: MemoryEscalations,
        context: Optional[dict[str, Any]] = None,
    ) -> Decision: ...
    def evaluate_output(
        self,
        principal: dict[str, Any],
        response: dict[str, Any],
        context: Optional[dict[str, Any]] = None,
    ) -> Decision: ...

def lint(source: str) -> dict[str, Any]: ...

class Span(TypedDict):
    start: int
    end: int
    type: str

def scan(text: str, entities: Optional[list[str]] = None) -> list[Span]:
    """Sensitive values in `text`: Python character offsets, sorted, without overlaps."""
    ...

def redact(
    text: str,
    format: Literal["label", "mask", "hash", "partial"] = "label",
    entities: Optional[list[str]] = None,
    hash_key: str = "",
) -> str:
    """`text` with every detected value replaced by a marker."""
    ...

__all__: list[str]
