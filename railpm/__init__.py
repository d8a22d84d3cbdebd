"""railpm: predictive maintenance for railway rolling stock and heavy-equipment fleets."""

__version__ = "0.1.0"
