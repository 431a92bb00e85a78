"""Tools for the maintainers: documents generated from the code (edit_cost: docs/edit_cost.md)."""

LAYER = 4  # docs/architecture.md §2: imports go to this layer and the ones below
