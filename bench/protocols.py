"""Protocols used only by the benchmarks."""

ROUNDS_4 = """\
name: bench-rounds
description: A blind round, three rounds of revision, and a synthesis.
stages:
  - {id: opening, kind: statement, prompt: "{{ question }}"}
  - id: rounds
    kind: loop
    rounds: 3
    stages:
      - {id: revise, kind: response, sees: [opening, revise], prompt: "Revise your answer."}
  - {id: verdict, kind: synthesis, sees: [revise], prompt: "Synthesise."}
"""

# The naive design most tools use: every seat reads the whole transcript every round.
BROADCAST_4 = """\
name: bench-broadcast
description: Four rounds in which every seat reads everything said so far.
stages:
  - {id: r1, kind: statement, prompt: "{{ question }}"}
  - {id: r2, kind: response, sees: [r1], prompt: "Revise your answer."}
  - {id: r3, kind: response, sees: [r1, r2], prompt: "Revise your answer."}
  - {id: r4, kind: response, sees: [r1, r2, r3], prompt: "Revise your answer."}
  - {id: verdict, kind: synthesis, sees: [r1, r2, r3, r4], prompt: "Synthesise."}
"""

# The same four rounds where each round reads only the round before (council's debate design).
LATEST_4 = """\
name: bench-latest
description: Four rounds in which every seat reads the latest round only.
stages:
  - {id: r1, kind: statement, prompt: "{{ question }}"}
  - {id: r2, kind: response, sees: [r1], prompt: "Revise your answer."}
  - {id: r3, kind: response, sees: [r2], prompt: "Revise your answer."}
  - {id: r4, kind: response, sees: [r3], prompt: "Revise your answer."}
  - {id: verdict, kind: synthesis, sees: [r4], prompt: "Synthesise."}
"""
