"""Type hints of the privseg extension module."""

from typing import Any, Dict, List, Optional

class Policy:
    """A validated policy."""

    @staticmethod
    def from_json(text: str) -> "Policy": ...
    @staticmethod
    def from_file(path: str) -> "Policy": ...
    @property
    def version(self) -> str: ...
    @property
    def k_threshold(self) -> int: ...

class Segment:
    """A segment validated against an engine's policy."""

    @property
    def name(self) -> str: ...
    @property
    def purpose(self) -> str: ...
    @property
    def text(self) -> str: ...

class CountResult:
    """A k-threshold count: ``value`` exact, or None below ``fewer_than``."""

    @property
    def value(self) -> Optional[int]: ...
    @property
    def fewer_than(self) -> Optional[int]: ...

class Engine:
    """One policy, its subjects and the audit log, run on behalf of an actor."""

    def __init__(self, policy: Policy, actor_id: str, roles: List[str], now: Optional[str] = None) -> None: ...
    @staticmethod
    def load(
        policy: Policy,
        actor_id: str,
        roles: List[str],
        subjects_csv: Optional[str] = None,
        events_jsonl: Optional[str] = None,
        now: Optional[str] = None,
    ) -> "Engine": ...
    @staticmethod
    def create(
        dir: str,
        policy: Policy,
        actor_id: str,
        roles: List[str],
        kek: bytes,
        audit_key: bytes,
        subjects_csv: Optional[str] = None,
        events_jsonl: Optional[str] = None,
        now: Optional[str] = None,
    ) -> "Engine": ...
    @staticmethod
    def open(
        dir: str,
        policy: Policy,
        actor_id: str,
        roles: List[str],
        kek: bytes,
        audit_key: bytes,
        subjects_csv: Optional[str] = None,
        events_jsonl: Optional[str] = None,
        now: Optional[str] = None,
    ) -> "Engine": ...
    @property
    def is_durable(self) -> bool: ...
    def checkpoint(self) -> None: ...
    def erase(self, id: str) -> None: ...
    def purge(self) -> Dict[str, int]: ...
    def ropa(self, format: str = "json") -> str: ...
    def compliance_report(self, within_days: int = 30, format: str = "json") -> str: ...
    def set_actor(self, actor_id: str, roles: List[str]) -> None: ...
    @property
    def actor_id(self) -> str: ...
    def set_now(self, now: str) -> None: ...
    @property
    def now(self) -> str: ...
    @property
    def subject_count(self) -> int: ...
    @property
    def audit_len(self) -> int: ...
    def add_subject(self, id: str, jurisdiction: str, birth_date: Optional[str] = None) -> None: ...
    def set_attribute(self, id: str, attr: str, value: bool | int | str, verified_at: str) -> None: ...
    def record(self, event: Dict[str, Any]) -> None: ...
    def record_json(self, event: str) -> None: ...
    def compile(self, text: str) -> Segment: ...
    def evaluate(self, segment: Segment, reference: Optional[str] = None) -> List[str]: ...
    def count(self, segment: Segment, reference: Optional[str] = None) -> CountResult: ...
    def dp_count(
        self,
        segment: Segment,
        epsilon: Optional[str] = None,
        reference: Optional[str] = None,
        seed: Optional[int] = None,
    ) -> int: ...
    def explain(self, segment: Segment, id: str, reference: Optional[str] = None) -> Dict[str, Any]: ...
    def export(
        self,
        segment: Segment,
        recipient: str,
        fields: List[str],
        key: bytes,
        format: str = "jsonl",
        key_version: int = 1,
        reference: Optional[str] = None,
    ) -> str: ...
    def partial(
        self,
        segment: Segment,
        shard: int,
        shards: int,
        kind: str = "count",
        recipient: Optional[str] = None,
        fields: Optional[List[str]] = None,
        reference: Optional[str] = None,
    ) -> str: ...
    def release_count(self, segment: Segment, partials: List[str]) -> CountResult: ...
    def release_dp_count(
        self, segment: Segment, partials: List[str], epsilon: Optional[str] = None, seed: Optional[int] = None
    ) -> int: ...
    def release_members(self, segment: Segment, partials: List[str]) -> List[str]: ...
    def release_export(
        self,
        segment: Segment,
        partials: List[str],
        recipient: str,
        fields: List[str],
        key: bytes,
        format: str = "jsonl",
        key_version: int = 1,
    ) -> str: ...

def shard_of(id: str, shards: int) -> int: ...
