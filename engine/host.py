"""A safe host for durable-rules 2.0.28: every known hazard guarded in one place.

* No timer threads: :class:`QuietHost` replaces ``Host._run`` (the default starts two
  ``threading.Timer`` loops; deleting state while they run crashed). Actions run inside
  ``assert_fact`` anyway, so nothing needs dispatching.
* Live sessions: durable allows 1024 per ruleset (the next raises MemoryError and leaks).
  Each reasoning gets its own session id, deleted in a ``finally``; a guard refuses to open
  more than :data:`MAX_LIVE_SESSIONS` at once.
* Actions: an exception inside an action is swallowed by durable into the session state.
  Every action is wrapped; the exception is recorded and re-raised after the assert as an
  :class:`EngineError` naming the rule; the state is also checked for an ``exception`` key
  before the session is deleted.
* Dropped facts: a fact no pattern matches raises MessageNotHandled and is not stored. The
  session catches it and keeps the fact in ``dropped`` (normal for evidence that matches
  nothing; the reasoner reports dropped conclusion facts in its trace).
* Deleting a session whose facts were all dropped (MessageNotHandled) segfaults, measured
  here on 2.0.28. Every session therefore first asserts an anchor fact that a built-in
  no-op rule always takes, so each session owns at least one stored fact.
* Dedup: identical facts are merged by a 32-bit hash, so every fact gets a unique ``uid``.
* Facts, not events: ``post`` consumes an event at the first match; we only ``assert_fact``,
  one fact at a time (``assert_facts`` batches are unsafe).
* One thread at a time: durable's C state is not thread-safe, and a TUI may reason from
  worker threads; a session holds the host's lock from start to delete.
* Names: a ruleset name can be registered once per process; each :class:`RulesetHost` gets
  a unique name and can be unloaded with :meth:`RulesetHost.close`.
"""
from __future__ import annotations

import copy
import itertools
import os
import threading
from contextlib import contextmanager
from typing import Any, Callable, Iterator

from durable import engine as durable_engine
from durable.engine import Host, MessageNotHandledException, MessageObservedException

MAX_LIVE_SESSIONS = 1000  # durable's hard limit is 1024 per ruleset
ANCHOR_RULE = "__anchor"
ANCHOR_FACT = {"t": "__anchor"}
_RULESET_NUMBERS = itertools.count(1)

OnMatch = Callable[[str, dict[str, dict]], None]


class EngineError(RuntimeError):
    """The inference engine itself failed (a bug, not a user mistake)."""


class QuietHost(Host):
    """durable's Host without its dispatch/timer threads: single-threaded and synchronous."""

    def _run(self) -> None:
        self._d_timer = None
        self._t_timer = None


class Session:
    """One reasoning: a durable session id, its facts, its matches and its failures."""

    def __init__(self, owner: "RulesetHost", sid: str, on_match: OnMatch):
        self.owner = owner
        self.sid = sid
        self.on_match = on_match
        self.errors: list[tuple[str, BaseException]] = []
        self.dropped: list[dict[str, Any]] = []
        self._uids = itertools.count(1)

    def assert_fact(self, fact: dict[str, Any]) -> bool:
        """Assert one fact (a copy with ``sid`` and a unique ``uid``); False if no pattern
        took it (it was dropped)."""
        fact = dict(fact, sid=self.sid, uid=next(self._uids))
        try:
            self.owner.host.assert_fact(self.owner.name, fact)
            return True
        except MessageNotHandledException:
            self.dropped.append(fact)
            return False
        except MessageObservedException:  # unreachable with unique uids; never silently lose
            raise EngineError(f"durable-rules deduplicated a fact with a unique id: {fact}") from None
        finally:
            self.raise_errors()

    def raise_errors(self) -> None:
        if self.errors:
            rule, exc = self.errors[0]
            raise EngineError(f"action of rule {self.owner.label(rule)} failed: "
                              f"{type(exc).__name__}: {exc}") from exc

    def facts(self) -> list[dict[str, Any]]:
        return self.owner.host.get_facts(self.owner.name, self.sid)

    def state(self) -> dict[str, Any]:
        return self.owner.host.get_state(self.owner.name, self.sid)


class RulesetHost:
    """One compiled ruleset registered under a unique name in its own :class:`QuietHost`.

    ``definition`` is the durable ruleset without actions; every rule gets the same wrapped
    action, which hands ``(durable rule name, {alias: fact})`` to the session's ``on_match``.
    ``labels`` maps durable rule names to what error messages should call them."""

    def __init__(self, definition: dict[str, dict], labels: dict[str, str] | None = None,
                 prefix: str = "rstsleuth"):
        self.name = f"{prefix}_{os.getpid()}_{next(_RULESET_NUMBERS)}"
        self.labels = labels or {}
        self.host = QuietHost()
        self._sessions: dict[str, Session] = {}
        self._sids = itertools.count(1)
        self._orphan_errors: list[tuple[str, BaseException]] = []
        self._lock = threading.RLock()
        ruleset = copy.deepcopy(definition)  # durable mutates it in place
        for rule_name, body in ruleset.items():
            body["run"] = self._action(rule_name)
        ruleset[ANCHOR_RULE] = {"all": [{"a": dict(ANCHOR_FACT)}], "run": self._action(ANCHOR_RULE)}
        self.host.set_rulesets({self.name: ruleset})
        self.closed = False

    def label(self, rule_name: str) -> str:
        return self.labels.get(rule_name, rule_name)

    def _action(self, rule_name: str) -> Callable:
        def run(c) -> None:
            session = None
            try:
                session = self._sessions[str(c.s.sid)]
                if rule_name != ANCHOR_RULE:
                    session.on_match(rule_name, dict(c._m))
            except BaseException as exc:  # durable would swallow it into the state
                (session.errors if session else self._orphan_errors).append((rule_name, exc))
        return run

    @property
    def live_sessions(self) -> int:
        return len(self._sessions)

    @contextmanager
    def session(self, on_match: OnMatch) -> Iterator[Session]:
        with self._lock:
            yield from self._session(on_match)

    def _session(self, on_match: OnMatch) -> Iterator[Session]:
        if self.closed:
            raise EngineError(f"ruleset {self.name} was unloaded")
        if len(self._sessions) >= MAX_LIVE_SESSIONS:
            raise EngineError(f"too many live durable sessions ({len(self._sessions)}); "
                              f"durable allows 1024 per ruleset")
        sid = str(next(self._sids))
        session = Session(self, sid, on_match)
        self._sessions[sid] = session
        try:
            if not session.assert_fact(ANCHOR_FACT):
                raise EngineError("durable-rules dropped the session anchor fact")
            yield session
            state = session.state()
            if state.get("exception"):
                raise EngineError(f"durable recorded an action failure: {state['exception']}")
            if self._orphan_errors:
                rule, exc = self._orphan_errors.pop(0)
                raise EngineError(f"action of rule {self.label(rule)} failed: {exc!r}")
        finally:
            del self._sessions[sid]
            try:
                self.host.delete_state(self.name, sid)
            except Exception:  # the anchor never got in: durable holds no state to free
                pass

    def close(self) -> None:
        """Unload the ruleset (durable has no public unload: drop it from the host's
        directory and free it in the extension)."""
        with self._lock:
            self._close()

    def _close(self) -> None:
        if self.closed:
            return
        ruleset = self.host._ruleset_directory.pop(self.name, None)
        if ruleset is not None:
            self.host._ruleset_list.remove(ruleset)
            durable_engine.durable_rules_engine.delete_ruleset(ruleset._handle)
        self.closed = True
