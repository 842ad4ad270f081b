from os import PathLike
from typing import Any, Optional, Union

from typing_extensions import disjoint_base, final

from keeptrusts.types import (
    AdminCommand as AdminCommand,
    AuthenticateStatus as AuthenticateStatus,
    Decision as Decision,
    Diagnostic as Diagnostic,
    Granularity as Granularity,
    IssuedKey as IssuedKey,
    KeyInfo as KeyInfo,
    MarkerFormat as MarkerFormat,
    Principal as Principal,
    Record as Record,
    Resolution as Resolution,
    Role as Role,
    Section as Section,
    Usage as Usage,
    VerifyReport as VerifyReport,
)

class KeeptrustsError(Exception):
    code: str

class PackError(KeeptrustsError):
    errors: list[Diagnostic]
    warnings: list[Diagnostic]

class RequestError(KeeptrustsError): ...
class StoreError(KeeptrustsError): ...
class AdminError(KeeptrustsError): ...
class WalletError(KeeptrustsError): ...
class InvalidArgument(KeeptrustsError): ...

@disjoint_base
class Store:
    """Teams and keys, wallets, tickets, escalations and the audit chain; thread-safe."""
    @staticmethod
    def open(url: str) -> Store:
        """`memory`, `sqlite:PATH` or `postgres://user@host:port/db`."""
        ...
    def admin(
        self,
        actor: Optional[Principal],
        command: AdminCommand,
        now_ms: Optional[int] = None,
        request_id: Optional[str] = None,
        org: Optional[str] = None,
    ) -> Any:
        """Runs one administrative command (`{"op": "set_member", "team", "email", "role"}`, …) as
        `actor` (None: the host itself); every change is an event in `org`'s chain (default: the
        actor's org, else `default`). Raises AdminError with `.code`."""
        ...
    def create_team(
        self, actor: Optional[Principal], name: str, description: Optional[str] = None, now_ms: Optional[int] = None
    ) -> Record: ...
    def teams(self) -> list[Record]: ...
    def add_member(
        self, actor: Optional[Principal], team: str, user: str, role: Role, now_ms: Optional[int] = None
    ) -> Record: ...
    def members(self, team: Optional[str] = None) -> list[Record]: ...
    def create_key(
        self,
        actor: Optional[Principal],
        team: str,
        user: str,
        consumer_group: Optional[str] = None,
        now_ms: Optional[int] = None,
        label: Optional[str] = None,
        expires_at: Optional[int] = None,
    ) -> IssuedKey:
        """`{"secret": "kt_…", "key": {...}}`; the secret is shown only here."""
        ...
    def keys(self, team: Optional[str] = None, now_ms: Optional[int] = None) -> list[KeyInfo]:
        """Keys with their status (`active`, `revoked`, `expired`); never a secret or a hash."""
        ...
    def authenticate(self, secret: str, org: str = "default", now_ms: Optional[int] = None) -> Optional[Principal]: ...
    def authenticate_status(self, secret: str, org: str = "default", now_ms: Optional[int] = None) -> AuthenticateStatus:
        """`{"principal": {...}}`, or `{"refused": code, "message": …}` saying why not."""
        ...
    def allocate(self, actor: Optional[Principal], allocation: dict[str, Any], now_ms: Optional[int] = None) -> Record:
        """The seed's body: `{"team": "legal", "amount": "1000", "currency": "USD", "period": "monthly"}`."""
        ...
    def balances(self, viewer: Principal, now_ms: Optional[int] = None) -> list[Record]: ...
    def wallet(self, key: str, now_ms: Optional[int] = None) -> Optional[Record]: ...
    def expire(self, now_ms: Optional[int] = None) -> int: ...
    def complete(
        self,
        principal: Principal,
        decision: Decision,
        request_id: str,
        model: Optional[str] = None,
        target: Optional[str] = None,
        usage: Optional[Usage] = None,
        now_ms: Optional[int] = None,
    ) -> Record:
        """Settle (with `usage`) or release the decision's reservation and write its event."""
        ...
    def tickets(self, viewer: Principal) -> list[Record]: ...
    def resolve_ticket(
        self,
        reviewer: Principal,
        ticket_id: str,
        resolution: Resolution,
        charge_to: Optional[str] = None,
        now_ms: Optional[int] = None,
    ) -> Record: ...
    def escalations(self, viewer: Principal) -> list[Record]: ...
    def escalation(self, escalation_id: str) -> Optional[Record]: ...
    def resolve_escalation(
        self, reviewer: Principal, escalation_id: str, resolution: Resolution, now_ms: Optional[int] = None
    ) -> Record: ...
    def events(self, org: str = "default") -> list[Record]: ...
    def verify(self, org: str = "default") -> VerifyReport: ...
    def prune(self, org: str = "default", default_days: int = 365, now_ms: Optional[int] = None) -> int: ...
    def dashboard(
        self,
        viewer: Principal,
        section: Section,
        team: Optional[str] = None,
        filter: Optional[dict[str, Any]] = None,
        granularity: Optional[Granularity] = None,
        org: Optional[str] = None,
    ) -> Record: ...

@final
class MemoryStore(Store):
    def __new__(cls) -> MemoryStore: ...

@final
class SqliteStore(Store):
    def __new__(cls, path: Union[str, PathLike[str]]) -> SqliteStore: ...

@final
class PostgresStore(Store):
    def __new__(cls, url: str) -> PostgresStore: ...

@final
class Engine:
    @staticmethod
    def from_yaml(source: str) -> Engine: ...
    @staticmethod
    def from_file(path: Union[str, PathLike[str]]) -> Engine: ...
    @property
    def warnings(self) -> list[Diagnostic]: ...
    def named_teams(self) -> list[str]: ...
    def effective_chain(self, principal: Principal) -> list[str]: ...
    def evaluate(
        self,
        principal: Principal,
        request: dict[str, Any],
        store: Optional[Store] = None,
        context: Optional[dict[str, Any]] = None,
        budget: bool = True,
    ) -> Decision: ...
    def evaluate_output(
        self,
        principal: Principal,
        response: dict[str, Any],
        context: Optional[dict[str, Any]] = None,
    ) -> Decision: ...
    def begin(
        self,
        principal: Principal,
        request: dict[str, Any],
        store: Optional[Store] = None,
        context: Optional[dict[str, Any]] = None,
        budget: bool = True,
    ) -> Exchange: ...

@final
class Exchange:
    """One request's lifecycle: `next_call()` gives what to send; report what happened."""
    @property
    def refusal(self) -> Optional[dict[str, Any]]: ...
    @property
    def decision(self) -> Decision: ...
    def next_call(self) -> Optional[dict[str, Any]]: ...
    def failed(self) -> None: ...
    def exhausted(self, message: str) -> dict[str, Any]: ...
    def answer(self, response: dict[str, Any]) -> dict[str, Any]: ...
    def broken(self, message: str) -> dict[str, Any]: ...
    def push_chunk(self, chunk: dict[str, Any]) -> list[dict[str, Any]]: ...
    def finish_stream(self, end: str = "complete", message: str = "") -> dict[str, Any]: ...
    def abandon(self) -> Optional[dict[str, Any]]: ...

def lint(source: str) -> dict[str, Any]: ...
def error_envelope(status: int, code: str, message: str, request_id: str) -> dict[str, Any]: ...

@final
class Span:
    """A detected value: `text[span.start:span.end]`; reads like `{"start", "end", "type"}` too."""
    @property
    def start(self) -> int: ...
    @property
    def end(self) -> int: ...
    @property
    def type(self) -> str: ...
    def __getitem__(self, key: str, /) -> Union[int, str]: ...
    def keys(self) -> list[str]: ...
    def __len__(self) -> int: ...
    def __eq__(self, other: object, /) -> bool: ...

def scan(text: str, entities: Optional[list[str]] = None) -> list[Span]:
    """Sensitive values in `text`: Python character offsets, sorted, without overlaps."""
    ...

def redact(
    text: str,
    format: MarkerFormat = "label",
    entities: Optional[list[str]] = None,
    hash_key: str = "",
) -> str:
    """`text` with every detected value replaced by a marker."""
    ...

@final
class StreamRedactor:
    def __new__(
        cls, format: MarkerFormat = "label", entities: Optional[list[str]] = None, hash_key: str = ""
    ) -> StreamRedactor: ...
    def push(self, chunk: str) -> str: ...
    def finish(self) -> str: ...
    @property
    def redacted(self) -> bool: ...
