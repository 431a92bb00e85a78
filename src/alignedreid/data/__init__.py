"""Dataset preparation: Market-1501 parsing and validation, safe zip extraction, synthetic data."""
