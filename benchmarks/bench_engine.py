"""Engine throughput: reasoning over many RST evidence sets.

Two numbers (both printed, both in the same run):

* cached: 10 000 reset events made of ~20 distinct stories (evidence sets), reasoned with
  ``Reasoner.infer_many`` — identical sets reason once. Target: ≤ 1 s.
* distinct: every evidence set different (each forces its own durable session): sets/s.

Stories are the facts of the shipped KB's embedded rule cases (real rule inputs); with no
loadable KB a synthetic one is used and the output says so.

    python benchmarks/bench_engine.py [--events 10000] [--stories 20] [--distinct 2000] [--check]
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.kb import KnowledgeBase  # noqa: E402
from engine.kb_model import Rule  # noqa: E402
from engine.reasoner import Reasoner  # noqa: E402


def synthetic_kb() -> KnowledgeBase:
    def rule(i, when, conclude, cf):
        return Rule.model_validate({
            "id": f"bench.r{i}", "rev": 1, "status": "test", "title": {"en": "t", "zh": "t"},
            "rationale": {"en": "r", "zh": "r"}, "references": ["bench"], "when": when,
            "conclude": {"id": conclude, "cf": cf},
            "tests": [{"name": "a", "expect": "fires"}, {"name": "b", "expect": "does_not_fire"}]})
    rules = []
    for i in range(30):
        rules.append(rule(i, {"all": [{"field": "ttl", "op": ">=", "value": 200 + i},
                                      {"field": "idle_before_s", "op": ">", "value": i * 100}]},
                          f"finding.f{i % 6}", 0.5))
    for j in range(6):
        rules.append(rule(30 + j, {"concluded": f"finding.f{j}", "min_cf": 0.4},
                          "origin.middle_device", 0.6))
    rules.append(rule(40, {"not": {"concluded": "origin.middle_device"}}, "origin.endpoint", 0.4))
    return KnowledgeBase(path=Path("synthetic"), rules=rules)


def load() -> tuple[KnowledgeBase, str]:
    try:
        from engine.loader import load_kb
        return load_kb(), "shipped knowledge/"
    except Exception as exc:  # the bench must still measure the engine
        problem = str(exc)[:80]
    try:  # the shipped rules as read, before semantic validation
        from engine.loader import read_kb
        kb = read_kb()[0]
        if kb.rules:
            return kb, f"shipped knowledge/, unvalidated ({problem})"
    except Exception:
        pass
    return synthetic_kb(), f"synthetic (shipped KB unavailable: {problem})"


def stories(kb: KnowledgeBase, count: int, rng: random.Random) -> list[dict]:
    pool = [dict(case.facts) for rule in kb.rules for case in rule.tests if case.facts]
    if len(pool) < count:
        pool += [{"ttl": rng.randint(200, 255), "idle_before_s": rng.uniform(0, 4000)}
                 for _ in range(count - len(pool))]
    rng.shuffle(pool)
    return pool[:count]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--stories", type=int, default=20)
    parser.add_argument("--distinct", type=int, default=2_000)
    parser.add_argument("--check", action="store_true", help="exit 1 if the cached run > 1 s")
    args = parser.parse_args(argv)
    rng = random.Random(7)
    kb, which = load()
    started = time.perf_counter()
    reasoner = Reasoner(kb)
    compile_s = time.perf_counter() - started
    base = stories(kb, args.stories, rng)
    events = [dict(rng.choice(base)) for _ in range(args.events)]

    started = time.perf_counter()
    results = reasoner.infer_many(events)
    cached_s = time.perf_counter() - started
    distinct_sets = len({id(r) for r in results})

    distinct = [dict(rng.choice(base), idle_before_s=round(rng.uniform(0, 8000), 3),
                     ttl=rng.randint(1, 255)) for _ in range(args.distinct)]
    started = time.perf_counter()
    reasoner.infer_many(distinct)
    distinct_s = time.perf_counter() - started

    started = time.perf_counter()
    from engine.conditions import normalize_evidence
    for evidence in distinct:
        reasoner.fire_python(normalize_evidence(evidence))
    python_s = time.perf_counter() - started
    reasoner.close()

    report = {
        "kb": which, "rules": len(kb.rules), "durable_rules": len(reasoner.compiled.ruleset),
        "compile_ms": round(compile_s * 1000, 1),
        "cached": {"events": args.events, "distinct_sets": distinct_sets,
                   "seconds": round(cached_s, 3), "events_per_s": round(args.events / cached_s)},
        "distinct": {"sets": args.distinct, "seconds": round(distinct_s, 3),
                     "sets_per_s": round(args.distinct / distinct_s)},
        "python_evaluator_sets_per_s": round(args.distinct / python_s),
    }
    print(json.dumps(report, indent=2))
    if args.check and cached_s > 1.0:
        print(f"FAIL: {args.events} events took {cached_s:.2f} s (> 1 s)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
