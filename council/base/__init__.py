"""The bottom layer: errors, secrets and their redaction, paths (the library, the runs home,
locks), the distribution's version and resources, and child processes that die with their
parent. Everything above imports from here; nothing here imports anything of council's above."""
