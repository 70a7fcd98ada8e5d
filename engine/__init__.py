"""Load and validate the knowledge base, compile it to durable-rules, run it, explain it.

Public API (used by analyze, ask and the TUI):

    kb = load_kb(path=None)          # None: $RSTSLEUTH_KB or the shipped knowledge/
    reasoner = Reasoner(kb)
    inference = reasoner.infer(evidence)   # evidence: flat {field: value}, see facts.fields
    inference.origin / .pattern / .ranked("subtype") / .how(conclusion_id)
    reasoner.why_not(evidence, conclusion_id)
    reasoner.what_if(evidence, changes)
"""
