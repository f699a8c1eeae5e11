"""`make bench` (`run.py`) and the escalation sweep (`escalation.py`)."""
