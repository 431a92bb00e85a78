"""The run's report: every stage's numbers on one self-contained page (page; templates/ its layout)."""

LAYER = 4  # docs/architecture.md §2: imports go to this layer and the ones below
