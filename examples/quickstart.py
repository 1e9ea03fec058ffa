"""Convene a council on the bundled local model and print the verdict (the README's example)."""

from council import Council

council = Council(["popper", "kuhn", "meadows"], protocol="quick")
result = council.convene("Should a city ban private cars from its centre?")

print(result.synthesis)
for turn in result.turns:
    print(f"{turn.stage:<10} {turn.seat:<8} {turn.model}  {turn.completion_tokens} tokens")
print("Run folder:", result.run_dir)
